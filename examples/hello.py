"""Hello, World: ``microweb run examples/hello.py``."""
from __future__ import annotations

from microweb import App, Request

app = App()


@app.route("/")
def index(request: Request) -> str:
    return "Hello, World!"


@app.get("/hello/<name>")
def hello(request: Request, name: str) -> dict[str, str]:
    return {"greeting": f"Hello, {name}!"}


if __name__ == "__main__":
    app.run()
