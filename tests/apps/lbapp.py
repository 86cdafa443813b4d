"""The app behind nginx in tests/test_nginx.py: says which process answered and who it thinks called."""
from __future__ import annotations

import os
from typing import Any

from microweb import App, Request

app = App(template_folder=None, static_folder=None)


@app.route("/")
def index(request: Request) -> dict[str, Any]:
    return {"pid": os.getpid(), "client": request.remote_addr, "scheme": request.scheme, "host": request.host,
            "external": request.url_for("index", _external=True)}
