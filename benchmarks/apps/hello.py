"""microweb hello world: ``python3 -m microweb run benchmarks/apps/hello.py``."""
from __future__ import annotations

from microweb import App, Request

app = App()


@app.route("/")
def index(request: Request) -> str:
    return "Hello, World!"
