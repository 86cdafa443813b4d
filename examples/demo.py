"""The demo site: the repo's static/ and templates/ folders behind one route.

    python3 -m microweb run examples/demo.py --port 8000

The folders are found from this file, so the command works from any directory.
"""
from __future__ import annotations

import os

from microweb import App

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

app = App(template_folder=os.path.join(ROOT, "templates"), static_folder=os.path.join(ROOT, "static"))


@app.get("/api/hello")
def hello(request):  # type: ignore[no-untyped-def]
    """A route next to the files: routes win over the static folder."""
    return {"hello": "world"}
