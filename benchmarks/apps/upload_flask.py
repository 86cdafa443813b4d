"""gunicorn + Flask's side of benchmarks/upload_bench.py (Werkzeug spools form files to disk)."""
from flask import Flask, request

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 2 << 30


@app.route("/raw", methods=["POST", "PUT"])
def raw():
    stream, size = request.stream, 0
    while True:
        piece = stream.read(1 << 20)
        if not piece:
            return {"size": size}
        size += len(piece)


@app.post("/form")
def form():
    upload = request.files["f"]
    upload.stream.seek(0, 2)
    return {"size": upload.stream.tell()}


@app.get("/ping")
def ping():
    return "pong"
