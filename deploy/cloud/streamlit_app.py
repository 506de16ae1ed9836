"""Entry file for the hosted install with CPU-only PyTorch (Streamlit Community Cloud: "Main file path" =
deploy/cloud/streamlit_app.py). Community Cloud then installs deploy/cloud/requirements.txt -- the dependency file
next to the entry file -- instead of the root one; it still runs from the repository's root, so .streamlit/config.toml
applies. This file only runs the repository's router, unchanged."""

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `streamlit run` puts this file's folder on sys.path, not the repository's root
    sys.path.insert(0, str(ROOT))
runpy.run_path(str(ROOT / "streamlit_app.py"), run_name="__main__")
