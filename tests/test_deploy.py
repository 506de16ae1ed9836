"""deploy/: N app processes behind nginx with sticky sessions (issue 25), and the hosted install's requirements.

The cluster test runs the launcher as an operator does (``python deploy/serve.py 2``: two Streamlit processes on
loopback ports, nginx in the foreground in a folder of its own, no root), drives sessions through nginx with
bench/_wsclient.py, checks every session answered, that a browser's page request and websocket land on the same
process and that sessions spread over both, then stops it with SIGTERM and checks nothing is left running.
It is slow-marked (two servers starting: 25-60 s on a 2-core machine). Skipped with the reason where there is no
nginx (scripts/test.sh installs Debian's).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from deploy.serve import find_nginx, free_port, http_ok, render_config  # noqa: E402

NGINX = find_nginx()
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx not found: install Debian's nginx (apt-get install "
                                                       "nginx; scripts/test.sh does it) to test deploy/")


# ---- the config ---------------------------------------------------------------------------------------------------

def test_config_names_every_process_and_upgrades_the_websocket(tmp_path):
    conf = render_config([8601, 8602, 8603], "127.0.0.1:8080", tmp_path)
    servers = re.findall(r"^\s*server 127\.0\.0\.1:(\d+)", conf, flags=re.M)
    assert servers == ["8601", "8602", "8603"]
    assert "@@" not in conf.replace("double at-signs", "")
    assert "ip_hash" not in conf.split("upstream rnnlab", 1)[1].split("}", 1)[0]  # loopback/NAT: one process only
    assert re.search(r"hash \$rnnlab_sticky consistent;", conf)
    stream = conf.split("location /_stcore/stream", 1)[1].split("}", 1)[0]
    assert "proxy_set_header Upgrade $http_upgrade" in stream and "Connection $connection_upgrade" in stream
    assert "location = /_stcore/health" in conf
    for key in ("pid", "error_log", "access_log", "client_body_temp_path", "proxy_temp_path"):
        path = re.search(rf"^\s*{key}\s+(\S+)", conf, flags=re.M).group(1)
        assert path.startswith(str(tmp_path)), (key, path)  # nothing written outside the prefix: no root needed


def test_config_needs_a_process(tmp_path):
    with pytest.raises(ValueError):
        render_config([], "8080", tmp_path)


@needs_nginx
def test_nginx_accepts_the_config(tmp_path):
    """`nginx -t` on the rendered config, as the launcher would run it (prefix folder, no root paths)."""
    (tmp_path / "tmp").mkdir()
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_config([free_port(), free_port()], f"127.0.0.1:{free_port()}", tmp_path))
    r = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr


# ---- two processes behind nginx -----------------------------------------------------------------------------------

def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _sessions(base: str, browsers: int, plain: int) -> list[dict]:
    """``browsers`` sessions that first GET / and carry the cookie nginx set (as a browser does), ``plain`` ones
    without any cookie; each runs Home, then the Plugins page, at once."""
    from bench._wsclient import Session
    from bench.scale_out import BrowserSession, first_visit

    async def one(k: int) -> dict:
        cookie, page_upstream = (await asyncio.to_thread(first_visit, base)) if k < browsers else (None, None)
        async with BrowserSession(base, cookie, timeout=180) as s:
            home = await s.open("/")
            plugins = await s.open("/plugins")
            return {"cookie": cookie, "page": page_upstream, "ws": s.upstream, "titles": (home.title, plugins.title),
                    "problems": home.problems() + plugins.problems()}

    assert issubclass(BrowserSession, Session)
    return await asyncio.gather(*(one(k) for k in range(browsers + plain)))


@pytest.mark.slow
@needs_nginx
def test_two_processes_behind_nginx_spread_sticky_sessions(tmp_path):
    port = free_port()
    prefix = tmp_path / "nginx"
    log = open(tmp_path / "serve.out", "w")  # noqa: SIM115
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "deploy/serve.py", "2", "--port", str(port), "--prefix", str(prefix)],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    base = f"http://127.0.0.1:{port}"
    try:
        while not re.search(r"on ports (\d+), (\d+)", (tmp_path / "serve.out").read_text()):
            assert proc.poll() is None, (tmp_path / "serve.out").read_text()
            assert time.monotonic() - t0 < 300, "the launcher did not come up in 300 s"
            time.sleep(0.2)
        apps = [int(p) for p in re.search(r"on ports (\d+), (\d+)", (tmp_path / "serve.out").read_text()).groups()]
        assert http_ok(base + "/_stcore/health")
        assert not any(_accepts_from_outside(p) for p in apps)  # the processes listen on loopback only

        got = asyncio.run(_sessions(base, browsers=10, plain=6))
        problems = [(g["cookie"], g["problems"]) for g in got if g["problems"]]
        assert not problems, problems
        assert all(g["titles"][0] and g["titles"][1] for g in got), [g["titles"] for g in got]  # every one answered
        upstreams = {f"127.0.0.1:{p}" for p in apps}
        assert {g["ws"] for g in got} <= upstreams
        for g in got[:10]:  # a browser's page and its websocket reach the same process
            assert g["cookie"] and g["page"] == g["ws"], g
        assert {g["ws"] for g in got} == upstreams, [g["ws"] for g in got]  # 16 sessions: both processes used

        # nginx's own log agrees: each websocket (written when it closed) names the process that held it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            ws_lines = [ln for ln in (prefix / "access.log").read_text().splitlines() if "/_stcore/stream" in ln]
            if len(ws_lines) >= len(got):
                break
            time.sleep(0.2)
        logged = {re.search(r"upstream=(\S+)", ln).group(1) for ln in ws_lines}
        assert len(ws_lines) == len(got) and logged == upstreams, ws_lines
        assert all(" 101 " in ln for ln in ws_lines)  # every one upgraded
        nginx_pid = int((prefix / "nginx.pid").read_text())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        finally:
            log.close()
    out = (tmp_path / "serve.out").read_text()
    assert rc == 0, out
    assert "stopped (SIGTERM)" in out
    assert not _alive(nginx_pid)
    assert not any(_accepts(p) for p in apps + [port]), "something still listens after the launcher stopped"
    print(f"deploy test took {time.monotonic() - t0:.0f} s")


def _accepts_from_outside(port: int) -> bool:
    """Whether the port answers on this host's first non-loopback address (False where there is none)."""
    try:
        addr = socket.gethostbyname(socket.gethostname())
    except OSError:
        return False
    if addr.startswith("127."):
        return False
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((addr, port)) == 0


# ---- the hosted install: CPU-only wheels --------------------------------------------------------------------------

def _requirements(path: Path) -> tuple[dict, list[str]]:
    """({package name: specifier}, option lines) of a requirements file."""
    from packaging.requirements import Requirement

    reqs, options = {}, []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        r = Requirement(line)
        reqs[r.name.lower().replace("_", "-")] = str(r.specifier)
    return reqs, options


def test_cloud_requirements_pin_what_requirements_txt_pins_with_cpu_wheels():
    root, root_opts = _requirements(REPO / "requirements.txt")
    cloud, cloud_opts = _requirements(REPO / "deploy" / "cloud" / "requirements.txt")
    assert not root_opts  # the local/GPU install stays plain PyPI
    assert cloud_opts == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    assert set(cloud) == set(root)
    for name, spec in root.items():
        if name in ("torch", "torchvision"):
            assert spec.startswith("==") and cloud[name] == spec + "+cpu", (name, spec, cloud[name])
        else:
            assert cloud[name] == spec, name


def test_cloud_entry_file_runs_the_app():
    """Community Cloud's entry file for the CPU install runs the same router: Home draws without an exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "deploy" / "cloud" / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title and "RNN Lab" in at.title[0].value
