"""``--threads N``: handlers in a pool, socket I/O in the reactor, responses in request order."""
from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from microweb import App, Request, Response
from microweb.server.reactor import Server

from conftest import recv_until_closed
from hardening_util import ResponseReader


def make_app(static: Path) -> App:
    app = App(static_folder=str(static), template_folder=None)

    @app.get("/sleep")
    def sleep(request: Any) -> str:
        time.sleep(float(request.args.get("s", "1")))
        return "slept " + request.args.get("s", "1")

    @app.get("/fast")
    def fast(request: Any) -> str:
        return "fast"

    @app.get("/echo/<int:n>")
    def echo(request: Any, n: int) -> str:
        return f"n={n}"

    @app.get("/boom")
    def boom(request: Any) -> str:
        raise RuntimeError("boom")

    @app.get("/stream")
    def stream(request: Any) -> Response:
        return Response(iter([b"a" * 1000, b"b" * 1000]))

    return app


def test_a_sleeping_handler_does_not_delay_other_clients(live_server: Any, tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_bytes(b"static bytes\n")
    server = live_server(make_app(tmp_path), threads=4)
    slow_result: list[float] = []

    def slow() -> None:
        start = time.monotonic()
        r = httpx.get(server.url + "/sleep?s=1", timeout=5)
        assert r.text == "slept 1"
        slow_result.append(time.monotonic() - start)

    slow_thread = threading.Thread(target=slow)
    slow_thread.start()
    time.sleep(0.1)  # the handler is now asleep in the pool
    with httpx.Client(base_url=server.url, timeout=5) as client:
        for path, body in (("/file.txt", "static bytes\n"), ("/fast", "fast"), ("/echo/7", "n=7")):
            start = time.monotonic()
            r = client.get(path)
            elapsed = time.monotonic() - start
            assert r.status_code == 200 and r.text == body
            assert elapsed < 0.25, f"{path} took {elapsed:.3f}s while another handler slept"
    slow_thread.join(5)
    assert slow_result and 0.95 <= slow_result[0] < 2.0


def test_inline_default_sleeping_handler_blocks_others(live_server: Any, tmp_path: Path) -> None:
    """The control: without --threads, the reactor runs the handler (the README says when to choose)."""
    server = live_server(make_app(tmp_path))
    assert "_respond" not in vars(server.server)  # the inline path is the class's own method, untouched
    t = threading.Thread(target=lambda: httpx.get(server.url + "/sleep?s=0.5", timeout=5))
    t.start()
    time.sleep(0.1)
    start = time.monotonic()
    assert httpx.get(server.url + "/fast", timeout=5).text == "fast"
    assert time.monotonic() - start > 0.25
    t.join(5)


def test_pipelined_responses_stay_in_request_order(live_server: Any, tmp_path: Path) -> None:
    server = live_server(make_app(tmp_path), threads=4)
    paths = ["/sleep?s=0.3", "/fast", "/sleep?s=0.1", "/echo/1", "/fast", "/echo/2"]
    expected = [b"slept 0.3", b"fast", b"slept 0.1", b"n=1", b"fast", b"n=2"]
    with server.connect() as sock:
        sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths))
        reader = ResponseReader(sock)
        bodies = [reader.next()[2] for _ in paths]  # type: ignore[index]
    assert bodies == expected


def test_pipeline_cap_applies_backpressure_without_losing_requests(live_server: Any, tmp_path: Path) -> None:
    server = live_server(make_app(tmp_path), threads=2, max_pipelined=3)
    n = 200
    with server.connect(timeout=10) as sock:
        sock.sendall(b"".join(b"GET /echo/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n)))
        reader = ResponseReader(sock, timeout=10)
        bodies = [reader.next()[2] for _ in range(n)]  # type: ignore[index]
    assert bodies == [b"n=%d" % i for i in range(n)]


def test_many_clients_finishing_at_once_are_all_woken_for(live_server: Any, tmp_path: Path) -> None:
    # The pool's threads wake the loop with one byte until it is read; a result left while the
    # loop reads that byte must still be delivered (a lost wake-up would leave it until the next
    # unrelated event: here, forever for a client waiting on it).
    server = live_server(make_app(tmp_path), threads=4)
    clients, rounds = 24, 150
    failures: list[str] = []

    def client(k: int) -> None:
        try:
            with server.connect(timeout=5) as sock:
                reader = ResponseReader(sock, timeout=5)
                for i in range(rounds):
                    sock.sendall(b"GET /echo/%d HTTP/1.1\r\nHost: x\r\n\r\n" % (k * rounds + i))
                    body = reader.next()[2]  # type: ignore[index]
                    if body != b"n=%d" % (k * rounds + i):
                        failures.append(f"client {k}: {body!r}")
                        return
        except OSError as exc:
            failures.append(f"client {k}: {exc!r}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []


def test_half_close_after_request_still_answered(live_server: Any, tmp_path: Path) -> None:
    server = live_server(make_app(tmp_path), threads=2)
    with server.connect() as sock:
        sock.sendall(b"GET /sleep?s=0.2 HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = recv_until_closed(sock)
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.index(b"slept 0.2") < data.index(b"fast")


def test_errors_and_streams_in_the_pool(live_server: Any, tmp_path: Path) -> None:
    server = live_server(make_app(tmp_path), threads=2)
    with httpx.Client(base_url=server.url, timeout=5) as client:
        assert client.get("/boom").status_code == 500
        r = client.get("/stream")
        assert r.text == "a" * 1000 + "b" * 1000
        assert client.get("/fast").text == "fast"


def test_raw_handler_exception_and_wrong_type_in_pool(live_server: Any) -> None:
    calls = {"n": 0}

    def handle(request: Any) -> Any:
        calls["n"] += 1
        if request.path == "/raise":
            raise ValueError("nope")
        if request.path == "/wrong":
            return "a str is not bytes"
        return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    server = live_server(handle, threads=2)
    for path in ("/raise", "/wrong"):
        with server.connect() as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert recv_until_closed(sock).startswith(b"HTTP/1.1 500 ")
    with server.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ResponseReader(sock).next()[2] == b"ok"  # type: ignore[index]


def test_graceful_stop_waits_for_a_handler_in_the_pool(tmp_path: Path) -> None:
    server = Server(make_app(tmp_path).handle, host="127.0.0.1", port=0, threads=2, request_class=Request)
    port = server.address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.started.wait(5)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /sleep?s=0.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.1)
        server.stop()
        data = recv_until_closed(sock)
    thread.join(5)
    assert not thread.is_alive()
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"slept 0.5")


def test_100_continue_waits_for_the_responses_before_it(live_server: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path)

    @app.post("/upload")
    def upload(request: Any) -> str:
        return "got " + request.body.decode()

    server = live_server(app, threads=2)
    with server.connect() as sock:
        sock.sendall(b"GET /sleep?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /upload HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        reader = ResponseReader(sock)
        first = reader.next()
        assert first is not None and first[2] == b"slept 0.3"
        interim = reader.next()  # "HTTP/1.1 100 Continue" comes only now, after the first response
        assert interim is not None and interim[0] == 100
        sock.sendall(b"hello")
        second = reader.next()
        assert second is not None and second[2] == b"got hello"
