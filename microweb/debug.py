"""``--debug``: tracebacks on the 500 page, templates reloaded, and the browser reloading itself.

Never on unless asked for (``microweb run --debug``, or ``enable_debug(app)``).
Live reload: every HTML response gets a small script that opens an
``EventSource`` on ``/__microweb__/livereload``. That endpoint is a server-sent
events stream the reactor holds open at no cost while idle (see push.py). A
watcher thread polls the app's template and static folders; when a file there
changes it pushes ``reload`` to every open stream and the pages reload. Each
stream starts with the server's boot id, so a page also reloads when a
``--reload`` restart brings up a new server (the ``EventSource`` reconnects).
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from typing import Any

from .http.bodies import PushStream
from .push import EventStreamResponse, format_event
from .requests import Request
from .server.reload import snapshot
from .responses import FileResponse, Response

__all__ = ["enable_debug", "LiveReload", "LIVERELOAD_PATH"]

log = logging.getLogger("microweb")

LIVERELOAD_PATH = "/__microweb__/livereload"
SCRIPT = (
    "<script>/* microweb --debug live reload */(function(){var boot=null;"
    "var es=new EventSource(%r);"
    "es.addEventListener('hello',function(e){if(boot!==null&&boot!==e.data){location.reload();}boot=e.data;});"
    "es.addEventListener('reload',function(){location.reload();});})();</script>"
) % LIVERELOAD_PATH
SCRIPT_BYTES = SCRIPT.encode("utf-8")
MAX_WATCHED = 5000
HEARTBEAT = 20.0  # seconds between keep-alive comments on an idle stream


def enable_debug(app: Any, live_reload: bool = True, interval: float = 0.3) -> LiveReload | None:
    """Turn on debug mode for ``app``: 500 pages show the traceback, templates are re-read on change,
    and (``live_reload``) browsers showing its pages reload when a template or static file changes."""
    app.debug = True  # the App's setter also turns on template auto-reload
    if not live_reload:
        return None
    reloader = LiveReload([app.template_folder, app.static_folder], interval)
    app.add_route(LIVERELOAD_PATH, reloader.endpoint, ["GET"], name="__microweb_livereload")
    app.after_request(reloader.inject)
    app.live_reload = reloader
    return reloader


class LiveReload:
    """The open live-reload streams, and the thread that watches the folders while any is open."""

    def __init__(self, folders: list[str | None], interval: float = 0.3) -> None:
        self.folders = [f for f in folders if f and os.path.isdir(f)]
        self.interval = interval
        self.boot_id = uuid.uuid4().hex[:12]
        self.streams: list[PushStream] = []
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- the endpoint and the injected script ----------------------------------

    def endpoint(self, request: Request) -> EventStreamResponse:
        return EventStreamResponse(self._opened)

    def _opened(self, stream: PushStream) -> None:
        stream.push(format_event(self.boot_id, event="hello", retry=1000))
        with self.lock:
            self.streams.append(stream)
            if self._thread is None and self.folders:
                self._thread = threading.Thread(target=self._watch, name="microweb-livereload", daemon=True)
                self._thread.start()

    def inject(self, request: Request, response: Response) -> Response:
        """An after-request hook: put the live-reload script into HTML pages."""
        if response.status in (204, 206, 304) or response.status < 200 or "text/html" not in (
                response.content_type or response.headers.get("content-type", "")):
            return response  # 304s and ranges pass untouched; error pages get the script too
        if "content-encoding" in response.headers:  # a precompressed .gz/.br file: leave its bytes alone
            return response
        body = response.body
        if isinstance(response, FileResponse):
            try:
                with open(response.path, "rb") as f:
                    body = f.read()
            except OSError:
                return response
            replacement = Response(body, response.status, response.header_items(), response.content_type)
            replacement.headers.pop("Last-Modified")
            response = replacement
        if not isinstance(body, (bytes, bytearray)) or not body:
            return response
        index = body.rfind(b"</body>")
        response.body = bytes(body[:index]) + SCRIPT_BYTES + bytes(body[index:]) if index >= 0 \
            else bytes(body) + SCRIPT_BYTES
        response.headers.pop("ETag")  # the body is not the file's any more
        return response

    # -- watching ------------------------------------------------------------------

    def broadcast(self, payload: bytes) -> int:
        """Push ``payload`` to every open stream; returns how many took it."""
        with self.lock:
            self.streams = [s for s in self.streams if not s.ended]
            streams = list(self.streams)
        return sum(1 for s in streams if s.push(payload))

    def stop(self) -> None:
        self._stop.set()

    def snapshot(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for folder in self.folders:
            found.update(snapshot(folder, suffix="", skip_dirs=frozenset(), limit=MAX_WATCHED - len(found)))
            if len(found) >= MAX_WATCHED:
                break
        return found

    def _watch(self) -> None:
        files = self.snapshot()
        last_beat = time.monotonic()
        while not self._stop.wait(self.interval):
            with self.lock:
                self.streams = [s for s in self.streams if not s.ended]
                if not self.streams:  # nobody is listening: stop polling until a page connects again
                    self._thread = None
                    return
            current = self.snapshot()
            if current != files:
                changed = sorted(p for p in files.keys() | current.keys() if files.get(p) != current.get(p))
                files = current
                n = self.broadcast(format_event("reload", event="reload"))
                log.info("%s changed: reloading %d page(s)", os.path.basename(changed[0]), n)
            elif time.monotonic() - last_beat >= HEARTBEAT:
                last_beat = time.monotonic()
                self.broadcast(format_event(comment="keep-alive"))
