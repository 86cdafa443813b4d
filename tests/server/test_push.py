"""Server push: ``PushStream`` (``http/bodies.py``) in memory, ``PushStreams`` (``server/push.py``) against a
fake server, and one event stream served live."""
from __future__ import annotations

import gc
import socket
import threading
import time
from typing import Any


from microweb import App, Request
from microweb.http.bodies import PushStream
from microweb.http.encode import LAST_CHUNK, encode_chunk
from microweb.push import EventStreamResponse, format_event
from microweb.server.push import EVENT_READ, PushStreams

from conftest import LiveServer

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


class Waker:
    """A waker that records the streams it was called for, and from which thread."""

    def __init__(self) -> None:
        self.calls: list[tuple[PushStream, int]] = []
        self.called = threading.Event()

    def __call__(self, stream: PushStream) -> None:
        self.calls.append((stream, threading.get_ident()))
        self.called.set()


# -- PushStream on its own --------------------------------------------------------


def test_push_from_another_thread_calls_the_attached_waker() -> None:
    stream = PushStream(HEAD, True, chunked=True)
    waker = Waker()
    stream.attach(object(), waker)
    assert stream.attached
    thread = threading.Thread(target=stream.push, args=(b"hello",))
    thread.start()
    thread.join(5)
    assert waker.called.wait(5)
    assert len(waker.calls) == 1
    woken, ident = waker.calls[0]
    assert woken is stream
    assert ident != threading.get_ident()
    assert stream.take() == encode_chunk(b"hello")


def test_push_before_attach_queues_without_waking() -> None:
    stream = PushStream(HEAD, True, chunked=False)
    assert not stream.attached
    assert stream.push(b"early") is True
    waker = Waker()
    stream.attach(object(), waker)
    assert waker.calls == []
    assert stream.take() == b"early"


def test_chunked_stream_frames_each_push_as_a_chunk() -> None:
    stream = PushStream(HEAD, True, chunked=True)
    assert stream.push(b"abc")
    assert stream.push("é")  # str: UTF-8
    assert stream.push(b"x" * 300)
    assert stream.take() == b"3\r\nabc\r\n"
    assert stream.take() == b"2\r\n\xc3\xa9\r\n"
    assert stream.take() == b"12c\r\n" + b"x" * 300 + b"\r\n"
    assert stream.take() is None


def test_unchunked_stream_queues_raw_bytes() -> None:
    stream = PushStream(HEAD, False, chunked=False)
    stream.push(b"abc")
    stream.push("déf")
    assert stream.take() == b"abc"
    assert stream.take() == "déf".encode("utf-8")
    assert stream.take() is None


def test_an_empty_push_queues_nothing_and_does_not_wake() -> None:
    stream = PushStream(HEAD, True, chunked=True)
    waker = Waker()
    stream.attach(object(), waker)
    assert stream.push(b"") is True
    assert stream.push("") is True
    assert stream.take() is None
    assert waker.calls == []


def test_end_after_queued_pieces_keeps_them_and_wakes() -> None:
    stream = PushStream(HEAD, True, chunked=True)
    waker = Waker()
    stream.attach(object(), waker)
    stream.push(b"one")
    stream.push(b"two")
    stream.end()
    assert stream.ended
    assert len(waker.calls) == 3  # two pushes and the end
    assert stream.take() == encode_chunk(b"one")
    assert stream.take() == encode_chunk(b"two")
    assert stream.take() is None
    stream.end()  # a second end is a no-op
    assert len(waker.calls) == 3


def test_push_returns_false_after_end() -> None:
    stream = PushStream(HEAD, True, chunked=True)
    waker = Waker()
    stream.attach(object(), waker)
    stream.end()
    calls = len(waker.calls)
    assert stream.push(b"late") is False
    assert stream.take() is None
    assert len(waker.calls) == calls


def test_push_returns_false_after_close() -> None:
    stream = PushStream(HEAD, True, chunked=True)
    stream.attach(object(), Waker())
    stream.close()
    assert stream.push(b"late") is False
    assert stream.take() is None


def test_close_detaches_the_waker() -> None:
    stream = PushStream(HEAD, True, chunked=True)
    waker = Waker()
    stream.attach(object(), waker)
    stream.close()
    assert not stream.attached
    assert stream.conn is None
    assert stream.waker is None
    stream.end()
    stream.push(b"x")
    assert waker.calls == []


def test_pull_style_gives_queued_pieces_then_none() -> None:
    # No server attached (a WSGI server, the test client): pulling gives what is queued, then the end.
    stream = PushStream(HEAD, True, chunked=True)
    stream.push(b"a")
    stream.push(b"bb")
    assert stream.next_piece() == encode_chunk(b"a")
    assert not stream.ended
    assert stream.next_piece() == encode_chunk(b"bb")
    assert stream.next_piece() is None
    assert stream.ended
    assert stream.push(b"after") is False
    assert stream.next_piece() is None


def test_pull_style_on_an_empty_stream_ends_at_once() -> None:
    stream = PushStream(HEAD, False, chunked=False)
    assert stream.next_piece() is None
    assert stream.ended


def test_pushes_from_many_threads_are_all_queued() -> None:
    stream = PushStream(HEAD, True, chunked=False)
    waker = Waker()
    stream.attach(object(), waker)

    def pusher(n: int) -> None:
        for i in range(200):
            assert stream.push(f"{n}:{i};")

    threads = [threading.Thread(target=pusher, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    pieces = []
    while (piece := stream.take()) is not None:
        pieces.append(piece)
    assert len(pieces) == 8 * 200
    assert len(waker.calls) == 8 * 200
    assert sorted(pieces) == sorted(f"{n}:{i};".encode() for n in range(8) for i in range(200))


# -- PushStreams against a fake server ----------------------------------------------


class FakeConn:
    def __init__(self) -> None:
        self.closed = False
        self.peer_eof = False
        self.outbox: list[Any] = []
        self.deadline = 0.0


class FakeServer:
    """The parts of ``Server`` that ``PushStreams`` calls, recording the calls."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.keepalive_timeout = 75.0
        self.sent: list[bytes] = []
        self.events: list[tuple[FakeConn, int]] = []
        self.ended: list[tuple[FakeConn, bool]] = []
        self.closed: list[FakeConn] = []
        self.flushed: list[FakeConn] = []
        self.wakes = 0
        self.accept_all = True

    def send_piece(self, conn: FakeConn, piece: bytes) -> bool | None:
        self.sent.append(piece)
        return self.accept_all

    def end_stream(self, conn: FakeConn, chunked: bool) -> None:
        self.ended.append((conn, chunked))

    def close_connection(self, conn: FakeConn) -> None:
        conn.closed = True
        self.closed.append(conn)

    def set_events(self, conn: FakeConn, events: int) -> None:
        self.events.append((conn, events))

    def wake(self) -> None:
        self.wakes += 1

    def flush(self, conn: FakeConn) -> None:
        self.flushed.append(conn)


def test_send_attaches_sends_what_is_queued_then_parks() -> None:
    server = FakeServer()
    push = PushStreams(server)
    conn = FakeConn()
    stream = PushStream(HEAD, True, chunked=True)
    conn.outbox.append(stream)
    stream.push(b"one")
    stream.push(b"two")
    assert push.send(conn, stream) is None  # parked
    assert stream.attached and stream.conn is conn
    assert stream in push.streams
    assert server.sent == [encode_chunk(b"one"), encode_chunk(b"two")]
    assert server.events == [(conn, EVENT_READ)]  # read interest only
    assert conn.deadline == server.now + server.keepalive_timeout
    assert server.ended == [] and server.closed == []


def test_a_push_while_parked_wakes_the_server_and_flush_ready_flushes_that_connection() -> None:
    server = FakeServer()
    push = PushStreams(server)
    conn = FakeConn()
    stream = PushStream(HEAD, True, chunked=True)
    conn.outbox.append(stream)
    push.send(conn, stream)
    thread = threading.Thread(target=stream.push, args=(b"news",))
    thread.start()
    thread.join(5)
    assert server.wakes == 1
    assert list(push.ready) == [stream]
    push.flush_ready()
    assert server.flushed == [conn]
    assert not push.ready
    assert push.send(conn, stream) is None
    assert server.sent == [encode_chunk(b"news")]


def test_flush_ready_skips_closed_connections_and_streams_not_at_the_front() -> None:
    server = FakeServer()
    push = PushStreams(server)
    behind, closed = FakeConn(), FakeConn()
    s1, s2 = PushStream(HEAD, True, True), PushStream(HEAD, True, True)
    behind.outbox.extend([b"unsent rest", s1])
    closed.outbox.append(s2)
    push.send(behind, s1)
    push.send(closed, s2)
    closed.closed = True
    s1.push(b"a")
    s2.push(b"b")
    push.flush_ready()
    assert server.flushed == []
    assert not push.ready


def test_ending_a_parked_stream_ends_it_after_its_queue() -> None:
    server = FakeServer()
    push = PushStreams(server)
    conn = FakeConn()
    stream = PushStream(HEAD, True, chunked=True)
    conn.outbox.append(stream)
    push.send(conn, stream)
    stream.push(b"last")
    stream.end()
    assert server.wakes == 2
    assert push.send(conn, stream) is True
    assert server.sent == [encode_chunk(b"last")]
    assert server.ended == [(conn, True)]
    assert stream not in push.streams
    assert stream.waker is None  # closed: detached
    assert stream.push(b"more") is False


def test_send_stops_when_the_socket_takes_only_part() -> None:
    server = FakeServer()
    server.accept_all = False
    push = PushStreams(server)
    conn = FakeConn()
    stream = PushStream(HEAD, True, chunked=False)
    stream.push(b"a")
    stream.push(b"b")
    assert push.send(conn, stream) is False
    assert server.sent == [b"a"]  # the rest waits for the socket
    assert server.events == []
    assert stream.take() == b"b"


def test_a_parked_stream_whose_client_left_closes_the_connection() -> None:
    server = FakeServer()
    push = PushStreams(server)
    conn = FakeConn()
    conn.peer_eof = True
    stream = PushStream(HEAD, True, chunked=True)
    assert push.send(conn, stream) is None
    assert server.closed == [conn]
    assert server.events == []


def test_end_all_ends_every_stream() -> None:
    server = FakeServer()
    push = PushStreams(server)
    streams = [PushStream(HEAD, True, True) for _ in range(3)]
    for stream in streams:
        conn = FakeConn()
        conn.outbox.append(stream)
        push.send(conn, stream)
    push.end_all()
    assert all(stream.ended for stream in streams)
    assert len(push.ready) == 3 and set(map(id, push.ready)) == set(map(id, streams))
    assert server.wakes == 3


def test_streams_are_held_weakly() -> None:
    server = FakeServer()
    push = PushStreams(server)
    conn = FakeConn()
    stream = PushStream(HEAD, True, True)
    push.send(conn, stream)
    assert len(push.streams) == 1
    stream.close()
    del stream
    gc.collect()
    assert len(push.streams) == 0


# -- live --------------------------------------------------------------------------


def read_until(sock: socket.socket, buffer: bytearray, marker: bytes, timeout: float = 5.0) -> bytes:
    """Read into ``buffer`` until ``marker`` is in it; return and drop everything up to and with it."""
    deadline = time.monotonic() + timeout
    while marker not in buffer:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {marker!r} in {bytes(buffer)!r}")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError(f"closed before {marker!r}; got {bytes(buffer)!r}")
        buffer += data
    end = buffer.index(marker) + len(marker)
    taken = bytes(buffer[:end])
    del buffer[:end]
    return taken


def read_chunk(sock: socket.socket, buffer: bytearray) -> bytes:
    size_line = read_until(sock, buffer, b"\r\n")
    size = int(size_line[:-2], 16)
    deadline = time.monotonic() + 5
    while len(buffer) < size + 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"chunk of {size} bytes incomplete: {bytes(buffer)!r}")
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed in a chunk")
        buffer += data
    data = bytes(buffer[:size])
    assert buffer[size:size + 2] == b"\r\n"
    del buffer[:size + 2]
    return data


def test_event_stream_served_live() -> None:
    app = App(template_folder=None, static_folder=None)
    opened: list[PushStream] = []
    ready = threading.Event()

    def on_open(stream: PushStream) -> None:
        opened.append(stream)
        ready.set()

    @app.get("/events")
    def events(request: Request) -> EventStreamResponse:
        return EventStreamResponse(on_open)

    server = LiveServer(app.handle)
    try:
        sock = socket.create_connection((server.host, server.port), timeout=5)
        sock.settimeout(5)
        with sock:
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: test\r\n\r\n")
            buffer = bytearray()
            head = read_until(sock, buffer, b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            lowered = head.lower()
            assert b"content-type: text/event-stream" in lowered
            assert b"transfer-encoding: chunked" in lowered
            assert b"content-length" not in lowered
            assert ready.wait(5)
            stream = opened[0]
            assert buffer == b""  # nothing pushed yet

            first, second = format_event("one", event="tick", id="1"), format_event("two", id="2")
            results: list[bool] = []

            def pusher() -> None:
                time.sleep(0.1)
                results.append(stream.push(first))
                time.sleep(0.2)
                results.append(stream.push(second))

            thread = threading.Thread(target=pusher, daemon=True)
            started = time.monotonic()
            thread.start()
            assert read_chunk(sock, buffer) == first
            assert read_chunk(sock, buffer) == second
            assert time.monotonic() - started >= 0.25  # sent when pushed, not before
            thread.join(5)
            assert results == [True, True]

            stream.end()
            tail = read_until(sock, buffer, LAST_CHUNK)
            assert tail == LAST_CHUNK
            assert stream.push(b"after the end") is False

            # The connection stays usable (keep-alive) after the stream ended.
            sock.sendall(b"GET /events HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            head2 = read_until(sock, buffer, b"\r\n\r\n")
            assert head2.startswith(b"HTTP/1.1 200 ")
    finally:
        for stream in opened:
            stream.end()
        server.stop()
