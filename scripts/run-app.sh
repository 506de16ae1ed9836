#!/usr/bin/env bash
# Installs the app's requirements into .venv (once) and starts RNN Lab on http://localhost:8501
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -r requirements.txt
[ -d examples/rnnlab-names ] && "$VENV/bin/python" -m pip install -q ./examples/rnnlab-names
exec "$VENV/bin/streamlit" run streamlit_app.py "$@"
