"""Serve RNN Lab from N Streamlit processes behind nginx (sticky sessions), in the foreground.

    python deploy/serve.py 2                      # 2 processes on loopback, nginx on http://127.0.0.1:8080
    python deploy/serve.py 4 --port 80 --address 0.0.0.0
    python deploy/serve.py 2 --print-config       # only print the nginx config it would run
    bash deploy/serve.sh 2                        # the same, with the repository's .venv

A Streamlit server runs every session's script in threads of one Python process (one GIL), so one process uses
about one core. Several processes behind a load balancer use several; each browser's websocket must stay on the
process that holds its session, which the config does with a cookie (deploy/nginx.conf.template says why not
ip_hash). The app processes listen on loopback only; nginx is the only way in.

Everything nginx needs is in a folder of its own (``--prefix``, default a fresh temporary folder): the rendered
config, pid, logs and temp files, so it runs without root (``nginx -p DIR -c DIR/nginx.conf``). Ctrl-C (or SIGTERM)
stops nginx and every app process; if any of them dies, the others are stopped too and the exit code says so.

Used by tests/test_deploy.py and bench/scale_out.py through ``Cluster``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"
NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def find_nginx() -> str | None:
    """Debian's nginx (or any nginx on PATH); None when there is none."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in NGINX_CANDIDATES if os.access(p, os.X_OK)), None)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def render_config(app_ports: list[int], listen: str, prefix: str | Path, workers: int = 1,
                  template: Path = TEMPLATE) -> str:
    """The nginx config for these app ports (on 127.0.0.1), listening on ``listen`` ("127.0.0.1:8080" or "8080")."""
    if not app_ports:
        raise ValueError("at least one app process is needed")
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=2 fail_timeout=10s;" for p in app_ports)
    text = template.read_text()
    for key, value in {"SERVERS": servers, "LISTEN": listen, "PREFIX": str(prefix), "WORKERS": str(workers)}.items():
        text = text.replace(f"@@{key}@@", value)
    left = re.findall(r"@@[A-Z_]+@@", text)
    if left:
        raise ValueError(f"the template has fields this launcher does not fill: {sorted(set(left))}")
    return text


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status == 200 and r.read().strip() == b"ok"
    except OSError:
        return False


def wait_until(check, procs: list[subprocess.Popen], timeout: float, what: str) -> float:
    """Poll ``check()`` until True; raise if one of ``procs`` exits or ``timeout`` passes. Returns seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: a process exited with code {p.returncode} (see its log)")
        if check():
            return time.monotonic() - t0
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")


class Cluster:
    """N app processes on loopback plus nginx in front; a context manager that always stops what it started.

    ``apps``: the app processes' ports; ``url``: nginx's address; ``prefix``: nginx's folder (config, logs)."""

    def __init__(self, n: int, port: int | None = None, address: str = "127.0.0.1", prefix: str | Path | None = None,
                 env: dict | None = None, app_args: list[str] | None = None, nice: int = 0, workers: int = 1,
                 python: str = sys.executable, nginx: str | None = None):
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n, self.address, self.env, self.nice, self.workers = n, address, dict(env or {}), nice, workers
        self.port = port or free_port(address if address != "0.0.0.0" else "127.0.0.1")
        self.app_args, self.python = list(app_args or []), python
        self.nginx = nginx or find_nginx()
        self._own_prefix = prefix is None
        self.prefix = Path(prefix or tempfile.mkdtemp(prefix="rnnlab-nginx-")).resolve()
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.apps: list[int] = []
        self.procs: list[subprocess.Popen] = []  # app processes, in the order of self.apps
        self.nginx_proc: subprocess.Popen | None = None
        self._logs: list = []

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.address in ("0.0.0.0", "") else self.address
        return f"http://{host}:{self.port}"

    def app_url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.apps[i]}"

    def app_log(self, i: int) -> Path:
        return self.prefix / f"app-{i}.log"

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def _popen(self, cmd: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
        if self.nice:
            cmd = ["nice", "-n", str(self.nice)] + cmd
        f = open(log, "w")  # noqa: SIM115 -- closed in stop()
        self._logs.append(f)
        return subprocess.Popen(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # Ctrl-C in a terminal reaches us; we stop them in order

    def start(self, timeout: float = 300.0) -> Cluster:
        if self.nginx is None:
            raise FileNotFoundError("nginx not found (Debian: apt-get install nginx)")
        os.chmod(self.prefix, 0o755)  # started as root, nginx's workers run as nobody and must reach tmp/
        (self.prefix / "tmp").mkdir(exist_ok=True)
        secret = secrets.token_hex(16)  # one cookie secret for every process: a cookie one signs, all accept
        # (an environment variable: Streamlit refuses this option on the command line)
        env = dict(os.environ, PYTHONUNBUFFERED="1", STREAMLIT_SERVER_COOKIE_SECRET=secret, **self.env)
        try:
            for i in range(self.n):
                port = free_port()
                self.apps.append(port)
                cmd = [self.python, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
                       "--server.fileWatcherType", "none", "--server.port", str(port), "--server.address", "127.0.0.1",
                       "--browser.gatherUsageStats", "false", *self.app_args]
                self.procs.append(self._popen(cmd, self.app_log(i), env))
            for i in range(self.n):
                wait_until(lambda i=i: http_ok(self.app_url(i) + "/_stcore/health"), self.procs, timeout,
                           f"app process {i} (port {self.apps[i]})")
            conf = self.prefix / "nginx.conf"
            conf.write_text(render_config(self.apps, f"{self.address}:{self.port}", self.prefix, self.workers))
            self.nginx_proc = self._popen([self.nginx, "-p", str(self.prefix), "-c", str(conf),
                                           "-e", str(self.prefix / "error.log")], self.prefix / "nginx.out")
            wait_until(lambda: http_ok(self.url + "/_stcore/health"), self.procs + [self.nginx_proc], 30, "nginx")
        except BaseException:
            self.stop()
            raise
        return self

    def pids(self) -> list[int]:
        """The app processes' pids (under ``nice`` the Popen pid is nice's, which execs into Python)."""
        return [p.pid for p in self.procs]

    def dead(self) -> list[str]:
        out = [f"app {i} (port {self.apps[i]}) exited {p.returncode}" for i, p in enumerate(self.procs)
               if p.poll() is not None]
        if self.nginx_proc is not None and self.nginx_proc.poll() is not None:
            out.append(f"nginx exited {self.nginx_proc.returncode}")
        return out

    def stop(self) -> None:
        """nginx first (graceful: SIGQUIT lets open requests finish), then every app process (SIGTERM, then kill)."""
        if self.nginx_proc is not None:
            _stop(self.nginx_proc, signal.SIGQUIT, 10)
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            _stop(p, signal.SIGTERM, 15)
        for f in self._logs:
            with contextlib.suppress(Exception):
                f.close()
        self._logs = []

    def cleanup(self) -> None:
        """Remove the prefix folder if this Cluster made it."""
        if self._own_prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _stop(p: subprocess.Popen, sig: int, wait: float) -> None:
    if p.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            p.send_signal(sig)
    try:
        p.wait(wait)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("n", type=int, help="how many app processes (about one core each)")
    ap.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080)")
    ap.add_argument("--address", default="127.0.0.1", help="nginx's address (0.0.0.0: every interface)")
    ap.add_argument("--prefix", help="nginx's folder: config, pid, logs, temp files (default: a new temp folder)")
    ap.add_argument("--workers", type=int, default=1, help="nginx worker processes (1 is plenty for a few hundred)")
    ap.add_argument("--print-config", action="store_true", help="print the nginx config for N app ports and exit")
    ap.epilog = "Options after -- go to every `streamlit run` (e.g. -- --server.maxUploadSize 50)."
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    if args.print_config:
        ports = [8601 + i for i in range(args.n)]
        print(render_config(ports, f"{args.address}:{args.port}", args.prefix or "/var/lib/rnnlab-nginx", args.workers))
        return 0
    cluster = Cluster(args.n, port=args.port, address=args.address, prefix=args.prefix, app_args=extra,
                      workers=args.workers)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: stopping.append("SIGINT"))
    try:
        cluster.start()
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"could not start: {exc}; logs in {cluster.prefix}", file=sys.stderr)
        return 1
    print(f"RNN Lab on {cluster.url} -- {args.n} process(es) on ports {', '.join(map(str, cluster.apps))}; "
          f"config and logs in {cluster.prefix}. Ctrl-C stops everything.", flush=True)
    rc = 0
    try:
        while not stopping:
            dead = cluster.dead()
            if dead:
                print("stopping: " + "; ".join(dead), file=sys.stderr)
                rc = 1
                break
            time.sleep(0.5)
    finally:
        cluster.stop()
    print("stopped" + (f" ({stopping[0]})" if stopping else ""), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
