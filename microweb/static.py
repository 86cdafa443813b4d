"""The static-folder fallback (first cut: safe path resolution, index files, FileResponse)."""
from __future__ import annotations

import os

from .requests import Request
from .responses import FileResponse, Response


class StaticFiles:
    def __init__(self, folder: str, url_prefix: str = "") -> None:
        self.folder = os.path.realpath(folder)
        self.url_prefix = url_prefix

    def response(self, request: Request) -> Response | None:
        path = request.path
        if self.url_prefix:
            if not path.startswith(self.url_prefix + "/"):
                return None
            path = path[len(self.url_prefix):]
        parts = [p for p in path.split("/") if p]
        if any(p.startswith(".") or "\\" in p or "\x00" in p for p in parts):
            return None
        full = os.path.realpath(os.path.join(self.folder, *parts))
        if os.path.commonpath([full, self.folder]) != self.folder:
            return None
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
        if not os.path.isfile(full):
            return None
        return FileResponse(full)
