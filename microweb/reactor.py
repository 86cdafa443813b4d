"""The reactor: the only module that touches sockets and the selector.

Theory of operation
-------------------
One thread runs ``Server.serve_forever``: a loop around one
``selectors.DefaultSelector`` (epoll on Linux). Registered are the listening
socket (key data ``None``), a wake-up socket that signal handlers and
``stop()`` write to (key data ``_WAKE``), and every client connection (key data:
its ``Connection``, so dispatch needs no lookup).

Reading: one ``recv`` per readable event. The bytes go to the connection's
sans-IO ``RequestParser``, which returns every request they complete. Each is
passed to the application callable (``handle(request) -> bytes | BodySource``),
and all the responses to one read are joined and leave in one ``send``.

Writing is optimistic: we send at once, and only what the kernel does not take
goes to the connection's ``outbox`` (a short list of bytes and body sources), with
``EVENT_WRITE`` registered until the outbox drains. A ``BodySource`` is either a
stream (an iterator pulled a few pieces at a time, so one endless stream cannot
starve the others) or a file region sent with ``os.sendfile`` in bounded steps.
While the outbox holds more than ``high_water`` bytes the connection is not read,
so a client that pipelines without reading cannot make us buffer without bound.

Timers: each connection has one deadline on a one-second ``TimerWheel``: the
keep-alive idle timeout while it waits for a request, the head timeout from the
first byte of a request head, the body timeout between body reads, and the write
timeout while output is pending. The loop wakes at least once a second to expire
deadlines and refresh the cached ``Date`` header.

Errors: a ``ProtocolError`` from the parser is answered with its status and the
connection closed; EOF, reset and broken pipe close only that connection, quietly;
an exception from the application is logged and answered with 500.

Stopping: SIGINT/SIGTERM (or ``stop()``) close the listener, close idle
connections, let every response already begun finish (new requests on busy
connections are answered with ``Connection: close``), and return when no
connection is left or the grace period ends.
"""
from __future__ import annotations

import errno
import gc
import logging
import os
import selectors
import signal
import socket
import threading
import time
import weakref
from collections import deque
from typing import Any, Callable, Iterable

from . import http11
from .http11 import Limits, ProtocolError, RequestParser
from .requests import Request
from .responses import BodySource, FileBody, StreamBody
from .push import PushStream
from .timers import TimerWheel

__all__ = ["Server", "Connection"]

log = logging.getLogger("microweb")

Handler = Callable[[Request], "bytes | BodySource"]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE
RECV_SIZE = 65536
STOP_LINGER = 0.25  # seconds idle connections stay open after a stop begins
STOP_POLL = 0.05  # the loop's longest sleep while stopping
ACCEPT_BACKOFF = 0.5  # seconds without polling the listener after EMFILE
SENDFILE_STEP = 1 << 20  # bytes per sendfile call before giving other connections a turn
STREAM_STEP = 16  # stream pieces per turn
_WAKE = object()
_LISTENER = None


class Connection:
    """The state the reactor keeps for one client socket."""

    __slots__ = (
        "sock", "fd", "parser", "outbox", "pending_bytes", "deadline", "timer_slot", "closed",
        "close_after", "reading", "events", "receiving", "peer_eof", "requests_served",
        "body_started", "body_received", "queue", "busy", "pending_error", "deferred",
    )

    def __init__(self, sock: socket.socket, parser: RequestParser) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.parser = parser
        self.outbox: list[Any] = []  # a list, not a deque: smaller, and it rarely holds more than two
        self.pending_bytes = 0  # bytes in the outbox (not counting body sources)
        self.deadline = 0.0
        self.timer_slot = 0
        self.closed = False
        self.close_after = False  # close once the outbox drains
        self.reading = True
        self.events = EVENT_READ
        self.receiving = 0  # 0: between requests; 1: part of a head has arrived; 2: reading a body
        self.peer_eof = False
        self.requests_served = 0
        # Hardening state: the body's minimum-rate clock, and (with --threads only) the
        # requests waiting for the pool, whether one is in the pool, and a parser error
        # to answer once the queue is done.
        self.body_started = 0.0
        self.body_received = 0
        self.queue: deque[Request] | None = None
        self.busy = False
        self.pending_error: ProtocolError | None = None
        # Pipelined requests not answered yet because the outbox is over high_water.
        self.deferred: list[Request] | None = None


class Server:
    """An HTTP/1.1 server driving ``handle`` from one selectors loop."""

    scheme = "http"  # what requests on this server's connections say (TLSServer: https)

    def __init__(
        self,
        handle: Handler,
        host: str = "127.0.0.1",
        port: int = 8000,
        *,
        sock: socket.socket | None = None,
        backlog: int = 1024,
        keepalive_timeout: float = 75.0,
        head_timeout: float = 10.0,
        body_timeout: float = 30.0,
        write_timeout: float = 30.0,
        graceful_timeout: float = 30.0,
        high_water: int = 1 << 20,
        limits: Limits | None = None,
        min_body_rate: int = 1024,
        max_connections: int | None = None,
        max_requests_per_connection: int = 10000,
        max_pipelined: int = 128,
        threads: int = 0,
        max_request_line: int | None = None,
        max_header_size: int | None = None,
        max_header_count: int | None = None,
        max_body_size: int | None = None,
        forwarded_allow_ips: str | Iterable[str] | None = "127.0.0.1",
    ) -> None:
        self.handle = handle
        self.keepalive_timeout = keepalive_timeout
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.write_timeout = write_timeout
        self.graceful_timeout = graceful_timeout
        self.high_water = high_water
        self.limits = _limits_with(limits or Limits(), max_request_line, max_header_size, max_header_count,
                                   max_body_size)
        self.min_body_rate = min_body_rate
        self.max_connections = max_connections if max_connections is not None else default_max_connections()
        self.max_requests_per_connection = max_requests_per_connection
        self.max_pipelined = max(1, max_pipelined)
        # The request index (0-based) from which a response says Connection: close: the
        # last one a connection may serve, or every one once a stop has begun.
        self._keep_alive_cutoff = max_requests_per_connection - 1 if max_requests_per_connection > 0 else 1 << 62
        # 0: accepting; 1: paused at the connection cap; 2: paused after EMFILE until _accept_resume_at.
        self._accept_paused = 0
        self._accept_resume_at = 0.0
        # Called once per accepted connection: peers trusted as proxies get a parser that
        # applies X-Forwarded-*/Forwarded (see forwarded.py); everyone else the plain one.
        self.make_parser: Callable[[Limits, str], RequestParser] = RequestParser
        if forwarded_allow_ips:
            from .forwarded import TrustedProxies, parser_factory

            trusted = TrustedProxies(forwarded_allow_ips)
            if trusted:
                self.make_parser = parser_factory(trusted, self.scheme)
        if sock is None:
            sock = create_listener(host, port, backlog)
        sock.setblocking(False)
        self.listener = sock
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, Connection] = {}
        self.now = time.monotonic()
        self.timers = TimerWheel(self.now)
        self._stopping = False
        self._stop_deadline = 0.0
        self._linger_until = 0.0
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self.listener, EVENT_READ, _LISTENER)
        self.selector.register(self._wake_r, EVENT_READ, _WAKE)
        self.started = threading.Event()
        # Server push (push.py): streams woken from other threads wait here for the loop.
        self._push_ready: deque[PushStream] = deque()
        self._push_streams: weakref.WeakSet[PushStream] = weakref.WeakSet()
        self.pool: Any = None
        if threads > 0:
            from .threads import HandlerPool

            self.pool = HandlerPool(handle, threads, self._wake)
            self._respond = self._respond_threaded  # type: ignore[method-assign]  # the one switch, made once

    @property
    def address(self) -> tuple[str, int]:
        addr = self.listener.getsockname()
        return addr[0], addr[1]

    @property
    def url(self) -> str:
        host, port = self.address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @classmethod
    def create(cls, handle: Handler, host: str = "127.0.0.1", port: int = 8000, *,
               ssl_context: Any = None, **options: Any) -> Server:
        """A ``Server``, or a ``TLSServer`` when ``ssl_context`` is given."""
        if ssl_context is not None:
            return TLSServer(handle, host, port, ssl_context=ssl_context, **options)
        return cls(handle, host, port, **options)

    # -- control --------------------------------------------------------------

    def _wake(self) -> None:
        """Make the loop's ``select`` return (thread-safe)."""
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the socket is full: a wake-up is already pending

    def stop(self) -> None:
        """Begin a graceful stop (thread-safe, signal-safe)."""
        self._stopping = True
        self._keep_alive_cutoff = -1
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _install_signal_handlers(self) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        previous: list[tuple[int, Any]] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous.append((signum, signal.signal(signum, lambda *_: self.stop())))
        return previous

    # -- the loop -------------------------------------------------------------

    def serve_forever(self) -> None:
        previous = self._install_signal_handlers()
        select = self.selector.select
        on_readable = self._on_readable
        flush = self._flush
        monotonic = time.monotonic
        next_tick = int(self.now) + 1
        # Objects made at start-up live as long as the server: keep them out of every
        # future garbage collection, so a full collection costs less (and p99 with it).
        gc.collect()
        gc.freeze()
        self.started.set()
        try:
            while True:
                timeout = next_tick - self.now
                if self._stopping:
                    if self._drain_step():
                        break
                    timeout = min(timeout, STOP_POLL)
                events = select(timeout if timeout > 0 else 0)
                self.now = now = monotonic()
                for key, mask in events:
                    conn = key.data
                    if conn is None:
                        self._accept()
                    elif conn is _WAKE:
                        self._drain_wakeups()
                        if self.pool is not None:
                            self._deliver()
                    else:
                        try:
                            if mask & EVENT_READ:
                                on_readable(conn)
                            if mask & EVENT_WRITE and not conn.closed:
                                flush(conn)
                        except Exception:
                            # A bug in our own code must cost one connection, never the server.
                            log.exception("internal error on a connection; closing it")
                            self._close(conn)
                if now >= next_tick:
                    next_tick = int(now) + 1
                    http11.refresh_date()
                    try:
                        self.timers.expire(now, self._on_timeout)
                    except Exception:
                        log.exception("internal error while expiring timeouts")
                    if self._accept_paused == 2 and now >= self._accept_resume_at:
                        self._resume_accepting()
        finally:
            for signum, handler in previous:
                signal.signal(signum, handler)
            self._shutdown()

    def _drain_step(self) -> bool:
        """One step of a graceful stop; True when the loop may end."""
        if self._stop_deadline == 0.0:
            self._stop_deadline = self.now + self.graceful_timeout
            for stream in list(self._push_streams):
                stream.end()  # a push stream would otherwise hold its connection to the deadline
            self._linger_until = self.now + STOP_LINGER
            # Requests that reached us before the stop are answered: accept what waits in
            # the backlog; idle connections stay open for STOP_LINGER, so a request already
            # on its way (a load generator sends the next one at once) is answered, with
            # Connection: close, rather than reset.
            if self._accept_paused != 1:
                self._accept_paused = 0
                self._accept()
            try:
                self.selector.unregister(self.listener)
            except (KeyError, ValueError):
                pass
            self.listener.close()
        elif self.now >= self._linger_until:
            # Close what is idle now; a response still being sent finishes first, and its
            # connection closes at the first step it is found idle.
            for conn in list(self.connections.values()):
                if (not conn.outbox and not conn.receiving and not conn.busy and not conn.queue
                        and conn.deferred is None):
                    self._close(conn)
        if not self.connections:
            return True
        return self.now >= self._stop_deadline

    def _shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
        for conn in list(self.connections.values()):
            self._close(conn)
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):
            pass
        self.listener.close()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        if self._push_ready:
            self._flush_pushed()

    # -- accepting ------------------------------------------------------------

    def _accept(self) -> None:
        if self._accept_paused:
            return  # a stale event from the batch that paused accepting
        listener = self.listener
        register = self.selector.register
        limits = self.limits
        deadline = self.now + self.keepalive_timeout
        for _ in range(256):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors or memory: the listener stays readable, so polling it
                    # now would spin. Stop watching it for a moment; served connections go on.
                    log.warning("accept failed (%s); not accepting for %.1f s", exc.strerror, ACCEPT_BACKOFF)
                    self._pause_accepting(2)
                    self._accept_resume_at = self.now + ACCEPT_BACKOFF
                return
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            remote = addr[0] if isinstance(addr, tuple) else ""
            conn = Connection(sock, self.make_parser(limits, remote))
            register(sock, EVENT_READ, conn)
            self.connections[conn.fd] = conn
            self.timers.set_deadline(conn, deadline)
            if len(self.connections) >= self.max_connections:
                # At the cap: new connections wait in the listen backlog until one closes.
                self._pause_accepting(1)
                return

    def _pause_accepting(self, why: int) -> None:
        self._accept_paused = why
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):
            pass

    def _resume_accepting(self) -> None:
        if self._stopping:
            return
        self._accept_paused = 0
        try:
            self.selector.register(self.listener, EVENT_READ, _LISTENER)
        except (KeyError, ValueError, OSError):
            pass

    # -- reading --------------------------------------------------------------

    def _on_readable(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(conn)
            return
        parser = conn.parser
        if not data:
            self._on_peer_eof(conn)
            return
        requests = parser.receive(data)
        if requests or parser.error is not None:
            self._respond(conn, requests)
            if conn.closed:
                return
        if parser.interim and conn.deferred is None and not conn.busy:
            # The 100 Continue is for the request still waiting for its body, so it goes
            # after the responses to the requests this read completed before it.
            self._write(conn, parser.interim)
            parser.interim = b""
        if parser.has_partial_input:
            if parser.state != http11.HEAD:
                self._body_progress(conn, len(data))
            elif not conn.receiving:
                conn.receiving = 1
                self.timers.set_deadline(conn, self.now + self.head_timeout)
        else:
            conn.receiving = 0
            if not conn.outbox:
                conn.deadline = self.now + self.keepalive_timeout

    def _body_progress(self, conn: Connection, received: int) -> None:
        """Re-arm the deadline of a connection sending a body.

        No read may be more than ``body_timeout`` after the previous one, and after a
        first ``body_timeout`` of grace the body must average ``min_body_rate`` bytes/s:
        a client trickling one byte now and then cannot hold a connection for long.
        """
        now = self.now
        if conn.receiving != 2:
            conn.receiving = 2
            conn.body_started = now
            conn.body_received = 0
        conn.body_received += received
        deadline = now + self.body_timeout
        if self.min_body_rate > 0:
            by_rate = conn.body_started + self.body_timeout + conn.body_received / self.min_body_rate
            if by_rate < deadline:
                deadline = by_rate if by_rate > now else now
        self.timers.set_deadline(conn, deadline)

    def _on_peer_eof(self, conn: Connection) -> None:
        """The client closed its sending side: finish what is owed, then close."""
        conn.peer_eof = True
        conn.parser.receive(b"")
        if conn.busy or conn.queue:
            # --threads: answer what was received, then close (SHUT_WR still gets its response).
            # Not polled meanwhile: a socket at EOF is always readable.
            self._unwatch(conn)
        elif conn.outbox:
            conn.close_after = True
            self._set_events(conn, EVENT_WRITE)
        else:
            self._close(conn)

    def _respond(self, conn: Connection, requests: list[Request]) -> None:
        """Answer the requests one read completed; their responses leave in one ``send``.

        One 64 KiB read can hold a thousand small pipelined requests; answered all at
        once, each with a large body, they would all be built in memory together. So
        once more than ``high_water`` bytes of responses are ready they are sent, and if
        the socket leaves more than ``high_water`` queued, the remaining requests wait in
        ``conn.deferred`` (the connection is not read) until the outbox drains.
        """
        handle = self.handle
        out: list[bytes] = []
        out_size = 0
        for index, request in enumerate(requests):
            if conn.requests_served >= self._keep_alive_cutoff:
                request.keep_alive = False
            try:
                result = handle(request)
            except Exception:
                log.exception("unhandled error in the application for %s %s", request.method, request.path)
                result = _internal_error(request)
            conn.requests_served += 1
            if type(result) is bytes:
                out.append(result)
                out_size += len(result)
            else:
                if not isinstance(result, BodySource):
                    result = _wrong_result(request, result)
                    out.append(result)
                    conn.close_after = True
                    break
                out.append(result.head)
                self._write(conn, b"".join(out))
                out = []
                out_size = 0
                self._queue_source(conn, result)
            if not request.keep_alive:
                conn.close_after = True
                break
            if out_size > self.high_water and index + 1 < len(requests):
                self._write(conn, b"".join(out))
                out = []
                out_size = 0
                if conn.closed:
                    return
                if conn.pending_bytes > self.high_water:
                    conn.deferred = requests[index + 1:]
                    self._set_events(conn, EVENT_WRITE)
                    return
        else:
            error = conn.parser.error
            if error is not None:
                out.append(error_response(error))
                conn.close_after = True
        if out:
            self._write(conn, out[0] if len(out) == 1 else b"".join(out))
        if conn.close_after and not conn.outbox and not conn.closed:
            self._close(conn)

    def _respond_deferred(self, conn: Connection) -> None:
        """The outbox drained: answer the pipelined requests held back, then any 100 Continue."""
        requests, conn.deferred = conn.deferred, None
        assert requests is not None
        self._respond(conn, requests)
        if conn.closed or conn.deferred is not None:
            return
        parser = conn.parser
        if parser.interim:
            self._write(conn, parser.interim)
            parser.interim = b""

    # -- the thread pool (--threads N) ------------------------------------------
    #
    # Handlers run in the pool; the reactor keeps all socket I/O. A connection has at
    # most one request in the pool (``busy``), so its responses leave in request order;
    # the rest wait in ``conn.queue``, and past ``max_pipelined`` of them the connection
    # is not read until the queue shrinks. Results come back through ``pool.done`` and
    # a byte on the wake-up socket.

    def _respond_threaded(self, conn: Connection, requests: list[Request]) -> None:
        queue = conn.queue
        if queue is None:
            queue = conn.queue = deque()
        queue.extend(requests)
        error = conn.parser.error
        if error is not None:
            conn.pending_error = error
        if len(queue) >= self.max_pipelined and conn.reading:
            if conn.events & EVENT_WRITE:
                self._set_events(conn, EVENT_WRITE)
            else:
                self._unwatch(conn)
        if not conn.busy:
            self._submit_next(conn)

    def _submit_next(self, conn: Connection) -> None:
        """Hand the connection's next request to the pool, or finish the connection."""
        queue = conn.queue
        if queue:
            request = queue.popleft()
            if conn.requests_served >= self._keep_alive_cutoff:
                request.keep_alive = False
            conn.busy = True
            self.pool.submit(conn, request)
            if not conn.reading and not conn.peer_eof and len(queue) < self.max_pipelined:
                self._watch(conn, conn.events | EVENT_READ)
            return
        if conn.pending_error is not None:
            error, conn.pending_error = conn.pending_error, None
            conn.close_after = True
            self._write(conn, error_response(error))
        elif conn.peer_eof:
            conn.close_after = True
        else:
            interim = conn.parser.interim
            if interim:  # held back by _on_readable while earlier requests were in the pool
                conn.parser.interim = b""
                self._write(conn, interim)
            return
        if not conn.outbox and not conn.closed:
            self._close(conn)

    def _deliver(self) -> None:
        """Write the results the pool has finished, in the order they finished."""
        done = self.pool.done
        while done:
            conn, request, result = done.popleft()
            conn.busy = False
            if conn.closed:
                if isinstance(result, BodySource):
                    result.close()
                continue
            conn.requests_served += 1
            if type(result) is bytes:
                self._write(conn, result)
            elif isinstance(result, BodySource):
                self._write(conn, result.head)
                self._queue_source(conn, result)
            else:
                self._write(conn, _wrong_result(request, result))
                request.keep_alive = False
            if conn.closed:
                continue
            if not request.keep_alive:
                conn.close_after = True
                conn.queue = None
                conn.pending_error = None
                if not conn.outbox:
                    self._close(conn)
                continue
            self._submit_next(conn)

    def _unwatch(self, conn: Connection) -> None:
        """Stop polling a connection (it waits for the pool)."""
        self._set_events(conn, 0)

    def _watch(self, conn: Connection, events: int) -> None:
        """Poll for ``events``, never for reading once the peer has closed its side."""
        self._set_events(conn, events & ~EVENT_READ if conn.peer_eof else events)

    # -- writing --------------------------------------------------------------

    def _write(self, conn: Connection, data: bytes) -> None:
        """Send ``data`` now if nothing is queued before it, and queue what is left."""
        if conn.outbox:
            conn.outbox.append(data)
            conn.pending_bytes += len(data)
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return
        if sent < len(data):
            rest = memoryview(data)[sent:]
            conn.outbox.append(rest)
            conn.pending_bytes += len(rest)
            self._start_write_wait(conn)

    def _queue_source(self, conn: Connection, source: BodySource) -> None:
        if conn.closed:
            source.close()
            return
        conn.outbox.append(source)
        if not source.keep_alive:
            conn.close_after = True
        self._flush(conn)

    def _start_write_wait(self, conn: Connection) -> None:
        self.timers.set_deadline(conn, self.now + self.write_timeout)
        events = EVENT_WRITE
        if conn.reading and conn.pending_bytes < self.high_water and not conn.peer_eof:
            events |= EVENT_READ
        self._set_events(conn, events)

    def _flush(self, conn: Connection) -> None:
        """Send from the outbox until it is empty or the socket would block."""
        outbox = conn.outbox
        sock = conn.sock
        progressed = False
        while outbox:
            item = outbox[0]
            if isinstance(item, BodySource):
                done = self._send_source(conn, item)
                if done is None:
                    return
                progressed = True
                if done:
                    continue
                break
            try:
                sent = sock.send(item)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            progressed = True
            conn.pending_bytes -= sent
            if sent < len(item):
                outbox[0] = memoryview(item)[sent:]
                break
            outbox.pop(0)
        if outbox:
            if progressed:
                conn.deadline = self.now + self.write_timeout
            if conn.events & EVENT_WRITE == 0:
                self._start_write_wait(conn)
            return
        # Drained.
        if conn.deferred is not None:
            self._respond_deferred(conn)
            if conn.closed or conn.outbox:
                return
        if conn.close_after:
            self._close(conn)
            return
        if conn.events != EVENT_READ:
            self._set_events(conn, EVENT_READ)
        conn.deadline = self.now + (self.head_timeout if conn.receiving else self.keepalive_timeout)

    def _send_source(self, conn: Connection, source: BodySource) -> bool | None:
        """Advance the body source at the front of the outbox.

        True: it is finished and gone from the outbox (go on flushing); False: the
        socket is full or the source used up its turn; None: the connection closed.
        """
        if type(source) is FileBody:
            return self._send_file(conn, source)
        if type(source) is PushStream:
            return self._send_push(conn, source)
        assert isinstance(source, StreamBody)
        for _ in range(STREAM_STEP):
            try:
                piece = source.next_piece()
            except Exception:
                log.exception("a streamed response raised after its head was sent; closing the connection")
                self._close(conn)
                return None
            if piece is None:
                self._end_stream(conn, source.chunked)
                return True
            sent_all = self._send_piece(conn, piece)
            if not sent_all:
                return sent_all  # None: closed; False: the stream waits behind its unsent rest
        return False

    def _send_piece(self, conn: Connection, piece: bytes) -> bool | None:
        """Send one piece of a streamed body: True if all of it went; False if the rest now waits
        at the front of the outbox (before the stream that made it); None if the connection closed."""
        try:
            sent = conn.sock.send(piece)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._close(conn)
            return None
        if sent < len(piece):
            rest = memoryview(piece)[sent:]
            conn.outbox.insert(0, rest)
            conn.pending_bytes += len(rest)
            return False
        return True

    def _end_stream(self, conn: Connection, chunked: bool) -> None:
        """Replace the finished stream at the front of the outbox by the last chunk, if any."""
        outbox = conn.outbox
        outbox.pop(0)
        if chunked:
            outbox.insert(0, http11.LAST_CHUNK)
            conn.pending_bytes += len(http11.LAST_CHUNK)

    # -- server push (push.py) ---------------------------------------------------

    def _send_push(self, conn: Connection, stream: PushStream) -> bool | None:
        """Send what a push stream has queued, then park the connection until the next push.

        Returns like ``_send_source``, and None also when parked: the connection then waits
        with read interest only (to notice the client leaving) and the keep-alive deadline.
        """
        if stream.conn is None:
            stream.conn = conn
            with stream._lock:
                stream.waker = self._wake_push
            self._push_streams.add(stream)
        while True:
            piece = stream.take()
            if piece is None:
                if stream.ended:
                    self._push_streams.discard(stream)
                    stream.close()
                    self._end_stream(conn, stream.chunked)
                    return True
                if conn.peer_eof:
                    self._close(conn)
                    return None
                self._set_events(conn, EVENT_READ)
                conn.deadline = self.now + self.keepalive_timeout
                return None
            sent_all = self._send_piece(conn, piece)
            if not sent_all:
                return sent_all

    def _wake_push(self, stream: PushStream) -> None:
        """Called from any thread when a push stream has something new."""
        self._push_ready.append(stream)
        self._wake()

    def _flush_pushed(self) -> None:
        ready = self._push_ready
        while ready:
            stream = ready.popleft()
            conn = stream.conn
            if conn is not None and not conn.closed and conn.outbox and conn.outbox[0] is stream:
                self._flush(conn)

    def _send_file(self, conn: Connection, body: FileBody) -> bool | None:
        out_fd = conn.fd
        for _ in range(8):
            if body.remaining <= 0:
                break
            try:
                sent = os.sendfile(out_fd, body.fd, body.offset, min(body.remaining, SENDFILE_STEP))
            except (BlockingIOError, InterruptedError):
                return False
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.ENOTSOCK, errno.EOPNOTSUPP):
                    return self._send_file_plain(conn, body)
                self._close(conn)
                return None
            if sent == 0:  # the file shrank under us: the response cannot be completed
                log.warning("file ended early while sending; closing the connection")
                self._close(conn)
                return None
            body.offset += sent
            body.remaining -= sent
        if body.remaining > 0:
            return False
        body.close()
        conn.outbox.pop(0)
        return True

    def _send_file_plain(self, conn: Connection, body: FileBody) -> bool | None:
        """The read/send path, for sockets that sendfile cannot serve."""
        while body.remaining > 0:
            data = os.pread(body.fd, min(body.remaining, 65536), body.offset)
            if not data:
                self._close(conn)
                return None
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self._close(conn)
                return None
            body.offset += sent
            body.remaining -= sent
            if sent < len(data):
                return False
        body.close()
        conn.outbox.pop(0)
        return True

    def _set_events(self, conn: Connection, events: int) -> None:
        if conn.events != events and not conn.closed:
            old = conn.events
            conn.events = events
            conn.reading = bool(events & EVENT_READ)
            if events and old:
                self.selector.modify(conn.sock, events, conn)
            elif events:  # not polled while it waited for the pool (--threads)
                self.selector.register(conn.sock, events, conn)
            else:
                self.selector.unregister(conn.sock)

    # -- timeouts and closing ---------------------------------------------------

    def _on_timeout(self, conn: Connection) -> None:
        if conn.busy:  # a handler is still running in the pool: the client is not idle
            self.timers.set_deadline(conn, self.now + self.write_timeout)
            return
        if conn.receiving and not conn.outbox and conn.parser.state == http11.HEAD:
            try:
                conn.sock.send(error_response(ProtocolError(408, "Request head timed out")))
            except OSError:
                pass
        self._close(conn)

    def _close(self, conn: Connection) -> None:
        if conn.closed:
            return
        conn.closed = True
        for item in conn.outbox:
            if isinstance(item, BodySource):
                try:
                    item.close()
                except Exception:
                    log.exception("error closing a response body")
        conn.outbox.clear()
        self.connections.pop(conn.fd, None)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
        if self._accept_paused == 1 and len(self.connections) < self.max_connections:
            self._resume_accepting()


def error_response(error: ProtocolError) -> bytes:
    """The answer to a request the parser rejected; the connection closes after it."""
    body = f"{error.status} {http11.reason_phrase(error.status)}: {error.message}\n".encode("utf-8")
    head = http11.encode_head(error.status, [("Content-Type", "text/plain; charset=utf-8")], len(body), False)
    return head + body


def _wrong_result(request: Request, result: object) -> bytes:
    log.error("the handler for %s %s returned a %s; expected bytes or a BodySource; answering 500",
              request.method, request.path, type(result).__name__)
    return _internal_error(request)


def _internal_error(request: Request) -> bytes:
    request.keep_alive = False
    body = b"500 Internal Server Error\n"
    head = http11.encode_head(500, [("Content-Type", "text/plain; charset=utf-8")], len(body), False)
    return head if request.method == "HEAD" else head + body


def _limits_with(limits: Limits, max_request_line: int | None, max_header_size: int | None,
                 max_header_count: int | None, max_body_size: int | None) -> Limits:
    """``limits``, or a copy with the given sizes changed (the keywords of ``Server``)."""
    if max_request_line is None and max_header_size is None and max_header_count is None and max_body_size is None:
        return limits
    return Limits(
        limits.max_request_line if max_request_line is None else max_request_line,
        limits.max_header_size if max_header_size is None else max_header_size,
        limits.max_header_count if max_header_count is None else max_header_count,
        limits.max_body_size if max_body_size is None else max_body_size,
    )


FD_HEADROOM = 64  # descriptors kept free for files being sent, logs, templates


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (where allowed); return the soft limit."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = max(soft, 1 << 20) if soft != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def default_max_connections() -> int:
    """The connection cap: the descriptor limit (raised to the hard limit) less headroom.

    Every connection holds one descriptor and a file being sent one more, so the
    headroom is an eighth of the limit (at least ``FD_HEADROOM``).
    """
    limit = raise_fd_limit()
    return max(1, limit - max(FD_HEADROOM, limit // 8))


def create_listener(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A bound, listening, non-blocking TCP socket."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def listener_from_fd(fd: int) -> socket.socket:
    """The listening socket inherited as file descriptor ``fd`` (from the --reload supervisor)."""
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    return sock


# -- TLS ------------------------------------------------------------------------
#
# TLS connections take their own code path so the plain one stays exactly as it is.
# The listener is wrapped once; every accepted socket is an ``_TLSSocket`` whose
# ``recv``/``send`` turn OpenSSL's want-read/want-write into ``BlockingIOError``
# and a TLS-level EOF into ``b""``, which is the language the reactor already
# speaks. The handshake is driven by readiness events like everything else
# (``do_handshake_on_connect=False``), under the head timeout, so a slow or broken
# handshake holds only its own connection. Files go out with read/send: sendfile
# would write plaintext past the TLS layer.

import ssl  # noqa: E402  (only TLS needs it)


class _TLSSocket(ssl.SSLSocket):
    """An ``SSLSocket`` that reports "would block" and EOF the way a plain socket does."""

    handshake_done = False

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError(errno.EAGAIN, "TLS record incomplete") from None
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            return b""

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise BlockingIOError(errno.EAGAIN, "TLS send would block") from None


def make_ssl_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server context for ``certfile``/``keyfile``: TLS 1.2+, ALPN ``http/1.1``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.set_alpn_protocols(["http/1.1"])
    context.options |= ssl.OP_NO_COMPRESSION
    context.sslsocket_class = _TLSSocket
    return context


class _TLSListener:
    """The wrapped listening socket; remembers what it accepted so the server can time the handshakes."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.fresh: list[socket.socket] = []

    def accept(self) -> tuple[socket.socket, Any]:
        conn, addr = self.sock.accept()
        self.fresh.append(conn)
        return conn, addr

    def fileno(self) -> int:
        return self.sock.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class TLSServer(Server):
    """A ``Server`` whose connections speak TLS (HTTPS), terminated in the reactor."""

    scheme = "https"

    def __init__(self, handle: Handler, host: str = "127.0.0.1", port: int = 8000, *,
                 ssl_context: ssl.SSLContext, sock: socket.socket | None = None, backlog: int = 1024,
                 **options: Any) -> None:
        if ssl_context.sslsocket_class is not _TLSSocket:
            ssl_context.sslsocket_class = _TLSSocket
        if sock is None:
            sock = create_listener(host, port, backlog)
        sock.setblocking(False)
        wrapped = ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        wrapped.setblocking(False)
        self.ssl_context = ssl_context
        self._tls_listener = _TLSListener(wrapped)
        super().__init__(handle, host, port, sock=self._tls_listener, backlog=backlog,  # type: ignore[arg-type]
                         **options)
        if self.make_parser is RequestParser:
            self.make_parser = lambda limits, remote: RequestParser(limits, remote, "https")

    @property
    def url(self) -> str:
        return "https" + super().url[4:]

    def _accept(self) -> None:
        Server._accept(self)
        fresh = self._tls_listener.fresh
        if fresh:
            deadline = self.now + self.head_timeout
            for sock in fresh:
                conn = self.connections.get(sock.fileno())
                if conn is not None:
                    self.timers.set_deadline(conn, deadline)  # the handshake must finish like a head
            fresh.clear()

    def _handshake(self, conn: Connection) -> bool:
        """Advance the handshake; True once it is done."""
        sock = conn.sock
        try:
            sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            self._set_events(conn, EVENT_READ)
            return False
        except ssl.SSLWantWriteError:
            self._set_events(conn, EVENT_READ | EVENT_WRITE)
            return False
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            self._close(conn)
            return False
        sock.handshake_done = True  # type: ignore[attr-defined]
        self._set_events(conn, EVENT_READ)
        conn.deadline = self.now + self.keepalive_timeout
        return True

    def _on_readable(self, conn: Connection) -> None:
        sock = conn.sock
        if not sock.handshake_done and not self._handshake(conn):  # type: ignore[attr-defined]
            return
        Server._on_readable(self, conn)
        # OpenSSL may hold decrypted bytes that the kernel will not signal again.
        for _ in range(64):
            if conn.closed or not conn.reading or not sock.pending():  # type: ignore[attr-defined]
                break
            Server._on_readable(self, conn)

    def _flush(self, conn: Connection) -> None:
        if not conn.sock.handshake_done:  # type: ignore[attr-defined]
            if self._handshake(conn):
                Server._on_readable(self, conn)  # data may have come with the last handshake flight
            return
        Server._flush(self, conn)

    def _send_file(self, conn: Connection, body: FileBody) -> bool | None:
        return self._send_file_plain(conn, body)

    def _close(self, conn: Connection) -> None:
        if not conn.closed and conn.sock.handshake_done:  # type: ignore[attr-defined]
            try:
                conn.sock._sslobj.shutdown()  # type: ignore[attr-defined]  # one try at close_notify
            except (ssl.SSLError, OSError, AttributeError, ValueError):
                pass
        Server._close(self, conn)
