"""The Flask app that benchmarks/wsgi_bench.py serves on microweb, waitress and gunicorn."""
from __future__ import annotations

from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def hello() -> str:
    return "Hello, World!"


@app.route("/json/<int:item_id>")
def item(item_id: int):  # type: ignore[no-untyped-def]
    return jsonify(id=item_id, name="widget", tags=["a", "b"])
