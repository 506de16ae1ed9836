#!/usr/bin/env bash
# Installs everything a fresh machine needs and runs the whole test suite.
#   VENV=path   where to build the virtual environment (default .venv)
#   PYTEST_ARGS extra pytest arguments (default: -m "not slow")
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="${PYTHON:-python3}"

# Debian's Chromium for the browser tests (Playwright drives it; we never download a browser of our own), and
# Debian's nginx for tests/test_deploy.py (which runs an nginx of its own from a temp folder, on loopback ports), and
# the Debian packages the app itself uses (packages.txt, as Streamlit Community Cloud installs them: FluidSynth).
APT=""
[ -x /usr/bin/chromium ] || APT="$APT chromium"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || APT="$APT nginx"
while read -r pkg; do
  case "$pkg" in ''|'#'*) continue ;; esac
  dpkg -s "$pkg" >/dev/null 2>&1 || APT="$APT $pkg"
done < packages.txt
if [ -n "$APT" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $APT >/dev/null
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r requirements-dev.txt
# The example third-party plugin, installed the way a user installs one (non-editable): proves entry points.
"$VENV/bin/python" -m pip install -q ./examples/rnnlab-names

"$VENV/bin/ruff" check core tasks tests bench deploy examples streamlit_app.py
set +e
"$VENV/bin/python" -m pytest ${PYTEST_ARGS:--m "not slow"}
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi
exit "$rc"
