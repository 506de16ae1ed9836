#!/usr/bin/env bash
# Serve RNN Lab from N Streamlit processes behind nginx, in the foreground; Ctrl-C stops them all.
#   bash deploy/serve.sh 2                    # nginx on http://127.0.0.1:8080, 2 app processes on loopback ports
#   bash deploy/serve.sh 4 --port 80 --address 0.0.0.0
# Needs Debian's nginx (apt-get install nginx) and the app's environment (bash scripts/run-app.sh installs it into
# .venv). Everything else is in deploy/serve.py (python deploy/serve.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
exec "$PY" deploy/serve.py "$@"
