"""An app for the large-upload tests and benchmarks/upload_bench.py, run as its own process.

``python tests/apps/uploads_app.py [threads]`` serves on a free loopback port, prints
``PORT <n>`` and serves until SIGTERM. Every figure it reports is measured here, in
the server process: the sha256 of what the handler read, its peak RSS, its open
descriptors, and what is left in the spool directory.
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile

from microweb import App
from microweb.server.reactor import Server

app = App(static_folder=None, template_folder=None)
SAVE_DIR = os.environ.get("UPLOADS_SAVE_DIR") or tempfile.mkdtemp(prefix="uploads-saved-")
server: Server | None = None


def _status(name: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _digest(stream) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    h = hashlib.sha256()
    size = 0
    while True:
        piece = stream.read(1 << 20)
        if not piece:
            return h.hexdigest(), size
        h.update(piece)
        size += len(piece)


@app.post("/raw", max_body_size="2G")
def raw(request):  # type: ignore[no-untyped-def]
    digest, size = _digest(request.stream)
    return {"sha256": digest, "size": size, "spooled": request.body_file is not None}


@app.put("/raw", max_body_size="2G")
def raw_put(request):  # type: ignore[no-untyped-def]
    return raw(request)


@app.post("/form", max_body_size="2G")
def form(request):  # type: ignore[no-untyped-def]
    upload = request.files["f"]
    digest, size = _digest(upload.stream)
    target = os.path.join(SAVE_DIR, "saved.bin")
    spooled = upload._spooled  # the upload's own temporary file (None when it stayed in memory)
    inode = os.fstat(spooled.file.fileno()).st_ino if spooled is not None else None
    saved = upload.save(target)
    same_inode = os.stat(target).st_ino == inode  # save() renamed the temporary file into place
    os.unlink(target)
    return {"sha256": digest, "size": size, "saved": saved, "moved": same_inode, "field": request.form.get("x")}


@app.post("/small")
def small(request):  # type: ignore[no-untyped-def]
    return {"size": len(request.body)}


@app.get("/ping")
def ping(request):  # type: ignore[no-untyped-def]
    return "pong"


@app.get("/state")
def state(request):  # type: ignore[no-untyped-def]
    spooler = server.spooler if server is not None else getattr(app, "_wsgi_spooler", None)  # under WSGI
    directory = spooler._directory if spooler is not None else None
    return {"rss": _status("VmRSS"), "hwm": _status("VmHWM"), "fds": len(os.listdir("/proc/self/fd")),
            "spool": sorted(os.listdir(directory)) if directory and os.path.isdir(directory) else [],
            "spool_dir": directory}


@app.post("/reset-peak")
def reset_peak(request):  # type: ignore[no-untyped-def]
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return {"hwm": _status("VmHWM"), "rss": _status("VmRSS")}


if __name__ == "__main__":
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = Server(app.handle, host="127.0.0.1", port=0, request_class=app.request_class, threads=threads,
                    body_timeout=60)
    print("PORT", server.address[1], flush=True)
    server.serve_forever()
