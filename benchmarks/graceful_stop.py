"""Graceful stop under load: SIGTERM to ``microweb run`` while wrk and checking clients run.

wrk hammers ``/`` while a few Python clients fetch ``/big`` (8 MiB) and ``/stream``
(8 MiB chunked) in keep-alive loops, reading slowly (about 1 s per response) so that
responses are in flight, partly still in the server's outbox, when SIGTERM arrives. Each checked response is classed as complete, truncated
(some bytes, then the connection closed: must never happen), or unanswered (the
connection closed before any byte of a response: the request raced the stop on an idle
keep-alive connection, or was never read); connections refused after the listener
closed are counted apart. The server must exit 0 within the grace period.

    flock /tmp/microweb-bench.lock python3 benchmarks/graceful_stop.py [--workers 0] [--threads 0]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APP = """
from microweb import App, Response
app = App(static_folder=None, template_folder=None)
BIG = b"b" * (8 << 20)

@app.get("/")
def index(request):
    return "Hello, World!"

@app.get("/big")
def big(request):
    return Response(BIG, content_type="application/octet-stream")

@app.get("/stream")
def stream(request):
    return Response((b"s" * 65536 for _ in range(128)), content_type="application/octet-stream")
"""


class Checker:
    """Keep-alive clients that classify every response they wait for."""

    def __init__(self, port: int, clients: int) -> None:
        self.port = port
        self.counts = {"complete": 0, "truncated": 0, "unanswered": 0, "refused": 0}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.in_flight = 0  # responses begun (head read) and not finished
        self.in_flight_at_stop = 0
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(clients)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def join(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def _run(self, i: int) -> None:
        path = "/big" if i % 2 == 0 else "/stream"
        time.sleep(i * 0.13)  # staggered, so the stop finds responses at every stage
        sock: socket.socket | None = None
        while not self.stop.is_set():
            if sock is None:
                try:
                    sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
                except OSError:
                    self._count("refused")
                    return  # the listener is gone
            try:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            except OSError:
                self._count("unanswered")
                sock.close()
                sock = None
                continue
            outcome, keep = self._read(sock)
            self._count(outcome)
            if not keep:
                sock.close()
                sock = None
        if sock is not None:
            sock.close()

    def _read(self, sock: socket.socket) -> tuple[str, bool]:
        """Read one response slowly; (outcome, connection still usable)."""
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                data = sock.recv(16384)
                if not data:
                    return ("truncated" if buf else "unanswered"), False
                buf += data
            head, _, body = buf.partition(b"\r\n\r\n")
            close = b"connection: close" in head.lower()
            with self.lock:
                self.in_flight += 1
            try:
                return self._read_body(sock, head, body, close)
            finally:
                with self.lock:
                    self.in_flight -= 1
        except OSError:
            return ("truncated" if buf else "unanswered"), False

    def _read_body(self, sock: socket.socket, head: bytes, first: bytes, close: bool) -> tuple[str, bool]:
        body = bytearray(first)
        try:
            m = re.search(rb"(?i)content-length: *(\d+)", head)
            if m:
                need = int(m.group(1))
                while len(body) < need:
                    time.sleep(0.002)  # a slow reader: responses stay in flight
                    data = sock.recv(16384)
                    if not data:
                        return "truncated", False
                    body += data
                return "complete", not close
            while not body.endswith(b"0\r\n\r\n"):  # chunked
                time.sleep(0.002)
                data = sock.recv(16384)
                if not data:
                    return "truncated", False
                body += data
            return "complete", not close
        except OSError:
            return "truncated", False


def run(seconds_before_stop: float = 3.0, wrk_seconds: int = 8, connections: int = 64, clients: int = 8,
        extra: list[str] | None = None, graceful_timeout: float = 30.0) -> dict[str, Any]:
    folder = tempfile.mkdtemp(prefix="graceful-")
    with open(os.path.join(folder, "gapp.py"), "w") as f:
        f.write(APP)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    cmd = [sys.executable, "-m", "microweb", "run", "gapp.py", "--port", str(port),
           "--graceful-timeout", str(graceful_timeout), *(extra or [])]
    taskset = shutil.which("taskset")
    proc = subprocess.Popen(["taskset", "-c", "1", *cmd] if taskset else cmd, cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    result: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start")
                time.sleep(0.05)
        wrk = None
        if shutil.which("wrk"):
            wrk_cmd = ["wrk", "-t2", f"-c{connections}", f"-d{wrk_seconds}s", f"http://127.0.0.1:{port}/"]
            wrk = subprocess.Popen(["taskset", "-c", "0", *wrk_cmd] if taskset else wrk_cmd,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        checker = Checker(port, clients)
        checker.start()
        time.sleep(seconds_before_stop)
        stop_at = time.monotonic()
        with checker.lock:
            checker.in_flight_at_stop = checker.in_flight
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(graceful_timeout + 10)
        except subprocess.TimeoutExpired:
            proc.kill()
        result["exit_status"] = proc.returncode
        result["stop_seconds"] = time.monotonic() - stop_at
        checker.join()
        result["checked"] = dict(checker.counts)
        result["in_flight_at_stop"] = checker.in_flight_at_stop
        if wrk is not None:
            out, _ = wrk.communicate(wrk_seconds + 30)
            result["wrk"] = out
            m = re.search(r"(\d+) requests in", out)
            result["wrk_requests"] = int(m.group(1)) if m else None
            m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
            result["wrk_socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                                   map(int, m.groups()))) if m else {}
            m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            result["wrk_non2xx"] = int(m.group(1)) if m else 0
        _, err = proc.communicate(timeout=5)
        result["tracebacks"] = err.count("Traceback")
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(folder, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    extra = []
    if args.workers:
        extra += ["--workers", str(args.workers)]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    r = run(connections=args.connections, extra=extra)
    print(f"exit status {r['exit_status']} {r['stop_seconds']:.2f} s after SIGTERM; tracebacks: {r['tracebacks']}")
    print(f"checked responses (/big, /stream, 8 MiB each): {r['checked']}; "
          f"in flight at SIGTERM: {r['in_flight_at_stop']}")
    if "wrk" in r:
        print(f"wrk: {r['wrk_requests']} requests, socket errors {r['wrk_socket_errors']}, "
              f"non-2xx {r['wrk_non2xx']}")


if __name__ == "__main__":
    main()
