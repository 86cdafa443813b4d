"""The app the shared behaviour suite (tests/test_wsgi.py) runs natively, through WSGI and on gunicorn."""
from __future__ import annotations

import os
from typing import Any, Iterator

from microweb import App, FileResponse, Request, Response, abort, redirect

HERE = os.path.dirname(os.path.abspath(__file__))

app = App(template_folder=os.path.join(HERE, "behaviour_templates"),
          static_folder=os.path.join(HERE, "behaviour_static"))


@app.route("/")
def index(request: Request) -> str:
    return "<p>Hello</p>"


@app.get("/items/<int:item_id>")
def item(request: Request, item_id: int) -> dict[str, Any]:
    return {"id": item_id, "q": request.args.get("q")}


@app.post("/echo")
def echo(request: Request) -> Response:
    return Response(request.body, 201, {"X-Length": str(len(request.body))},
                    content_type=request.content_type or "application/octet-stream")


@app.route("/whoami")
def whoami(request: Request) -> dict[str, Any]:
    return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host,
            "method": request.method, "path": request.path, "query": request.query_string,
            "agent": request.headers.get("user-agent"), "cookies": request.cookies}


@app.route("/stream")
def stream(request: Request) -> Iterator[str]:
    for i in range(5):
        yield f"piece {i}\n"


@app.route("/boom")
def boom(request: Request) -> str:
    raise RuntimeError("kaboom")


@app.route("/teapot")
def teapot(request: Request) -> tuple[str, int, dict[str, str]]:
    return "short and stout", 418, {"X-Kind": "teapot"}


@app.route("/gone")
def gone(request: Request) -> str:
    abort(410, "It went away")


@app.route("/go")
def go(request: Request) -> Response:
    return redirect("/items/7")


@app.route("/cookie")
def cookie(request: Request) -> Response:
    response = Response("set")
    response.set_cookie("flavour", "oat", httponly=True)
    return response


@app.route("/download")
def download(request: Request) -> FileResponse:
    return FileResponse(os.path.join(HERE, "behaviour_static", "blob.bin"), download_name="blob.bin")


@app.route("/empty", methods=["DELETE"])
def empty(request: Request) -> Response:
    return Response(b"", 204)


@app.route("/unicode/<name>")
def unicode_name(request: Request, name: str) -> dict[str, str]:
    return {"name": name}
