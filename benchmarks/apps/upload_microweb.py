"""microweb's side of benchmarks/upload_bench.py: read a raw body or a multipart file to the end."""
from microweb import App

app = App(static_folder=None, template_folder=None)


@app.route("/raw", methods=["POST", "PUT"], max_body_size="2G")
def raw(request):
    stream, size = request.stream, 0
    while True:
        piece = stream.read(1 << 20)
        if not piece:
            return {"size": size}
        size += len(piece)


@app.post("/form", max_body_size="2G")
def form(request):
    return {"size": request.files["f"].size}


@app.get("/ping")
def ping(request):
    return "pong"
