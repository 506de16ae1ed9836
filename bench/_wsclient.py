"""A Streamlit session without a browser: one websocket speaking the app's own protobuf protocol.

A browser tab costs a core of its own to lay out the page and draw the charts; fifty of them on the same two cores
as the server measure the browsers, not the server. This client does what the browser's script-runner part does and
nothing else: connect to ``/_stcore/stream``, ask for a rerun (a page by its script hash, a button by its widget
id), read the ForwardMsgs until the run finishes, and keep what a test needs to know -- the buttons on the page
(label -> widget id), the page title, exception elements and the app's guarded-crash messages.

Used by bench/latency.py (concurrency), bench/soak.py and tests/test_server.py. Nothing is rendered, so a
measured latency is the server's: websocket in -> script run -> last delta out.

    async with Session("http://127.0.0.1:8501") as s:
        r = await s.open("/sentiment")          # a rerun of that page
        r = await s.click(r.buttons[0])         # a demo button
        print(r.seconds, r.title, r.faults)
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bench._common import CRASH_TEXT  # core.ui's guards: a bug behind each


@dataclass
class Run:
    """What one rerun produced."""

    seconds: float  # rerun asked -> script_finished received
    status: str  # FINISHED_SUCCESSFULLY, ... or "timeout"
    title: str = ""  # the first heading of the main area
    buttons: list[tuple[str, str]] = field(default_factory=list)  # (label, widget id), main area, in page order
    faults: list[str] = field(default_factory=list)  # exception elements, guarded-crash messages
    elements: int = 0  # elements received
    bytes: int = 0  # ForwardMsg bytes received

    def problems(self) -> list[str]:
        """What a user would call an error in this run: none when the script finished and showed no fault."""
        bad = [] if self.status in ("FINISHED_SUCCESSFULLY", "timeout") else [f"script {self.status}"]
        return bad + self.faults  # a timeout's fault already says "no answer in N s"


class SessionError(RuntimeError):
    pass


class Session:
    """One Streamlit session over one websocket. Methods are coroutines; one rerun at a time per session."""

    def __init__(self, base: str, timeout: float = 120.0):
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.pages: dict[str, str] = {}  # url path ("/sentiment", "/" for the default) -> page script hash
        self.page_hash = ""
        self._ws = None
        self._query = ""

    async def __aenter__(self) -> Session:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> None:
        import websockets

        url = "ws" + self.base[len("http"):] + "/_stcore/stream"
        self._ws = await asyncio.wait_for(
            websockets.connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=self.timeout,
                               ping_interval=None), self.timeout)

    async def close(self) -> None:
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.close(), 10)
            except Exception:  # noqa: BLE001 -- closing a dead socket: nothing left to do
                pass
            self._ws = None

    # ---- reruns ------------------------------------------------------------------------------------------------
    async def open(self, path: str = "/", query: str = "") -> Run:
        """Run the page at ``path`` (as a click in the sidebar: same session)."""
        self._query = query
        if path in ("", "/"):
            return await self._rerun(page_hash=self.pages.get("/", ""), page_name="")
        if not self.pages:  # the first run tells us the pages
            await self._rerun(page_hash="", page_name="")
        name = path.strip("/")
        if path not in self.pages:
            raise SessionError(f"no page {path}; pages: {sorted(self.pages)}")
        return await self._rerun(page_hash=self.pages[path], page_name=name)

    async def click(self, widget_id: str) -> Run:
        """Press the button with this widget id on the current page."""
        return await self._rerun(page_hash=self.page_hash, page_name="", trigger=widget_id)

    async def _rerun(self, page_hash: str, page_name: str, trigger: str | None = None) -> Run:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        if self._ws is None:
            raise SessionError("not connected")
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self._query
        cs.page_script_hash = page_hash
        cs.page_name = page_name
        if trigger:
            w = cs.widget_states.widgets.add()
            w.id = trigger
            w.trigger_value = True
        t0 = time.perf_counter()
        await self._ws.send(msg.SerializeToString())
        try:
            return await asyncio.wait_for(self._read_run(t0), self.timeout)
        except asyncio.TimeoutError:
            return Run(time.perf_counter() - t0, "timeout", faults=[f"no answer in {self.timeout:.0f} s"])

    async def _read_run(self, t0: float) -> Run:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        run = Run(0.0, "")
        started = False
        while True:
            data = await self._ws.recv()
            run.bytes += len(data)
            fm = ForwardMsg()
            fm.ParseFromString(data)
            kind = fm.WhichOneof("type")
            if kind == "new_session":
                started = True
                run = Run(0.0, "", bytes=run.bytes)  # a rerun asked mid-run restarts: keep only this run's
                if fm.new_session.page_script_hash:
                    self.page_hash = fm.new_session.page_script_hash
            elif kind == "navigation":
                for p in fm.navigation.app_pages:
                    path = "/" + p.url_pathname if p.url_pathname else "/"
                    self.pages[path] = p.page_script_hash
                    if p.is_default:
                        self.pages.setdefault("/", p.page_script_hash)
                if fm.navigation.page_script_hash:
                    self.page_hash = fm.navigation.page_script_hash
            elif kind == "delta":
                self._read_delta(fm, run)
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(fm.script_finished)
                if status == "FINISHED_EARLY_FOR_RERUN" or not started:
                    continue  # an older run cut short; ours follows
                run.seconds, run.status = time.perf_counter() - t0, status
                return run

    @staticmethod
    def _read_delta(fm, run: Run) -> None:
        d = fm.delta
        if d.WhichOneof("type") != "new_element":
            return
        el = d.new_element
        run.elements += 1
        kind = el.WhichOneof("type")
        main = len(fm.metadata.delta_path) and fm.metadata.delta_path[0] == 0  # 0 = main area, 1 = sidebar
        if kind == "heading" and main and not run.title:
            run.title = el.heading.body
        elif kind == "button" and main:
            run.buttons.append((el.button.label, el.button.id))
        elif kind == "exception":
            run.faults.append(f"exception element: {el.exception.type}: {el.exception.message[:120]}")
        elif kind == "alert" and any(t in el.alert.body for t in CRASH_TEXT):
            run.faults.append(f"guarded crash: {el.alert.body[:160]}")
