"""uvicorn + Starlette's side of benchmarks/upload_bench.py: ``request.stream()`` and ``request.form()``."""
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def raw(request: Request) -> JSONResponse:
    size = 0
    async for piece in request.stream():
        size += len(piece)
    return JSONResponse({"size": size})


async def form(request: Request) -> JSONResponse:
    async with request.form(max_part_size=2 << 30) as data:
        upload = data["f"]
        upload.file.seek(0, 2)
        return JSONResponse({"size": upload.file.tell()})


async def ping(request: Request) -> PlainTextResponse:
    return PlainTextResponse("pong")


app = Starlette(routes=[Route("/raw", raw, methods=["POST", "PUT"]), Route("/form", form, methods=["POST"]),
                        Route("/ping", ping)])
