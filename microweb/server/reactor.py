"""The reactor: the selectors loop that serves every connection of a process.

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
``EVENT_WRITE`` registered until the outbox drains. One exception: while handlers
are slow (the last batch of events took over ``CORK_EVENT_TIME`` per event), small
responses wait in their outboxes until the batch is handled (``CORK_BATCH``
connections at most) and then leave together, so a client process waiting on many
connections is woken once for them, not once per response (see ``write``).
A ``BodySource`` is either a stream (an iterator pulled a few pieces at a time, so
one endless stream cannot starve the others) or a file region sent with
``os.sendfile`` in bounded steps.
While the outbox holds more than ``high_water`` bytes the connection is not read,
so a client that pipelines without reading cannot make us buffer without bound.

Timers: each connection has one deadline on a one-second ``TimerWheel``: the
keep-alive idle timeout while it waits for a request, the head timeout from the
first byte of a request head, the body timeout between body reads, and the write
timeout while output is pending. The loop wakes at least once a second to expire
deadlines and refresh the cached ``Date`` header.

Errors: a ``ProtocolError`` from the parser is answered with its status and the
connection closed, after a bounded lingering read (``linger.py``) so the answer is
not lost to a reset; EOF, reset and broken pipe close only that connection, quietly;
an exception from the application is logged and answered with 500.

Bodies: when a head announcing a body is complete, the parser asks ``_open_body``
(through ``Limits.open_body``) before reading it. With an application that admits
bodies (``admit``: ``App.admit``), the request is routed then: the app refuses it
(its 404/405/413 page, raised as ``BodyRefused``: answered, then lingering close)
or returns the sink the body goes to; without one, any body up to ``max_body_size``
is admitted. Sinks spool to memory under ``spool_threshold`` and to a file in the
server's spool directory above it (``spool.py``); per read, a sink does work
proportional to that read only. A body still arriving when its connection closes
is discarded (its file removed); the directory goes when the server stops.

Stopping: SIGINT/SIGTERM (or ``stop()``) close the listener, close idle
connections, let every response already begun finish (new requests on busy
connections are answered with ``Connection: close``), and return when no
connection is left or the grace period ends.

Around the loop, each in its own module of ``microweb.server``: ``pool.py``
(``--threads``: the loop's ``_respond`` and ``_respond_one`` are swapped once for the pool's),
``push.py`` (push streams parked until another thread pushes), ``tls.py``
(``TLSServer``, a subclass with its own read/handshake path), ``listeners.py``,
``timers.py``, ``options.py`` (every setting, from ``ServerOptions``) and
``websocket.py`` (``WebSocketHub``: a ``WebSocketUpgrade`` result at the front of
an outbox hands the connection over; the hub's own selector is registered here
as a wake-up source, so plain HTTP never checks for websockets). The
collaborators use the loop's public primitives (``write``, ``write_result``, ``flush``,
``queue_source``, ``send_piece``, ``end_stream``, ``set_events``, ``watch``,
``unwatch``, ``close_connection``, ``wake``), never its private state.
"""
from __future__ import annotations

import enum
import errno
import gc
import logging
import os
import selectors
import signal
import socket
import threading
import time
from collections import deque
from functools import partial
from typing import Any, Callable

from ..http.bodies import BodySource, FileBody, PulledStream, PushStream, StreamBody
from ..http.encode import LAST_CHUNK, refresh_date
from ..http.parser import HEAD, UPGRADE, Limits, ProtocolError, RequestParser
from ..http.request import HTTPRequest
from ..http.websocket import WebSocketUpgrade
from .failures import internal_error, wrong_result
from .listeners import create_listener, default_max_connections
from .options import ServerOptions
from .push import PushStreams
from .spool import Spooler
from .timers import TimerWheel

__all__ = ["Server", "Connection", "Receiving", "Accepting", "Handler"]

log = logging.getLogger("microweb")

#: What the server calls for each request: the whole response as bytes, or a head plus a body source.
Handler = Callable[[Any], "bytes | BodySource"]

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE
RECV_SIZE = 65536
CORK_MAX = 65536  # responses up to this size wait for the end of the batch of events (see write)
# ... and at most this many connections' responses wait together: with 1,000 busy connections a
# whole batch would hold the first response for the time of 999 others (p99 at wrk -c1000: 12.3 ms
# unbounded, 8.4 ms in batches of 16 to 64, for the same requests/s).
CORK_BATCH = 32
# ... and only while handling an event takes this long on average (seconds, measured over the
# previous batch): a fast handler's responses leave a microsecond or two apart anyway, and
# holding them back costs more than it saves (callgrind: +22% instructions for hello world).
CORK_EVENT_TIME = 10e-6
STOP_LINGER = 0.25  # seconds idle connections stay open after a stop begins
STOP_POLL = 0.05  # the loop's longest sleep while stopping
ACCEPT_BACKOFF = 0.5  # seconds without polling the listener after EMFILE
SENDFILE_STEP = 1 << 20  # bytes per sendfile call before giving other connections a turn
STREAM_STEP = 16  # stream pieces per turn
_WAKE = object()
_LISTENER = None


class Receiving(enum.IntEnum):
    """What a connection is receiving (it picks the deadline that applies)."""

    IDLE = 0  # between requests: the keep-alive timeout
    HEAD = 1  # part of a head has arrived: the head timeout
    BODY = 2  # a body is arriving: the body timeout and the minimum rate


class Accepting(enum.IntEnum):
    """Whether the listener is polled."""

    ON = 0
    AT_CAP = 1  # max_connections reached: new connections wait in the backlog
    BACKING_OFF = 2  # accept failed for lack of descriptors: paused until _accept_resume_at


# Module-level names for the hot path, as plain ints (CPython specializes comparisons of exact
# ints, not of IntEnum members); ``Receiving(conn.receiving)`` names one.
RECEIVING_IDLE, RECEIVING_HEAD, RECEIVING_BODY = map(int, Receiving)


class Connection:
    """The state the reactor keeps for one client socket."""

    __slots__ = (
        "sock", "fd", "parser", "outbox", "pending_bytes", "deadline", "timer_slot", "closed",
        "close_after", "reading", "events", "receiving", "peer_eof", "requests_served",
        "body_started", "body_received", "queue", "busy", "pending_error", "deferred", "linger",
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
        self.receiving = RECEIVING_IDLE
        self.peer_eof = False
        self.requests_served = 0
        # Hardening state: the body's minimum-rate clock, and (with --threads only) the
        # requests waiting for the pool, whether one is in the pool, and a parser error
        # to answer once the queue is done.
        self.body_started = 0.0
        self.body_received = 0
        self.queue: deque[Any] | None = None
        self.busy = False
        self.pending_error: ProtocolError | None = None
        # Pipelined requests not answered yet because the outbox is over high_water.
        self.deferred: list[Any] | None = None
        self.linger = False  # closed by a lingering close (a body may still be arriving)


class Server:
    """An HTTP/1.1 server driving ``handle`` from one selectors loop.

    ``Server(handle, host, port, options=ServerOptions(...), **changes)``: the settings
    are a ``ServerOptions`` (its defaults, or ``options``) with ``host``, ``port`` and any
    other field given as a keyword applied. ``request_class`` is what the parser builds
    (the framework passes its ``Request``); ``sock`` a listening socket to use instead of
    binding one. ``admit(request, length, spooler) -> BodySink`` decides on each body
    before it is read (raising ``BodyRefused`` to refuse it); by default it is the
    ``admit`` of the App whose bound ``handle`` this is, if any (``App.admit``).
    """

    scheme = "http"  # what requests on this server's connections say (TLSServer: https)

    def __init__(
        self,
        handle: Handler,
        host: str | None = None,
        port: int | None = None,
        *,
        options: ServerOptions | None = None,
        sock: Any = None,
        request_class: Callable[..., HTTPRequest] = HTTPRequest,
        admit: Callable[..., Any] | None = None,
        **changes: Any,
    ) -> None:
        if host is not None:
            changes["host"] = host
        if port is not None:
            changes["port"] = port
        if options is None:
            options = ServerOptions(**changes)
        elif changes:
            options = options.replace(**changes)
        self.options = options
        self.handle = handle
        self.request_class = request_class
        # Copied to attributes: the loop reads them on every event.
        self.keepalive_timeout = options.keepalive_timeout
        self.head_timeout = options.head_timeout
        self.body_timeout = options.body_timeout
        self.write_timeout = options.write_timeout
        self.graceful_timeout = options.graceful_timeout
        self.high_water = options.high_water
        self.limits: Limits = options.limits()
        # Bodies: admitted (or refused) when their head is complete, then spooled (spool.py).
        if admit is None:
            admit = getattr(getattr(handle, "__self__", None), "admit", None)
        self.admit: Callable[..., Any] | None = admit
        self.spooler = Spooler(options.spool_threshold, options.max_body_size)
        self.limits.open_body = self._open_body
        self.lingerer: Any = None  # the Lingerer, made at the first lingering close
        self.min_body_rate = options.min_body_rate
        self.max_connections = (options.max_connections if options.max_connections is not None
                                else default_max_connections())
        self.max_pipelined = max(1, options.max_pipelined)
        # The request index (0-based) from which a response says Connection: close: the
        # last one a connection may serve, or every one once a stop has begun.
        cap = options.max_requests_per_connection
        self.keep_alive_cutoff = cap - 1 if cap > 0 else 1 << 62
        self._accepting = Accepting.ON
        self._accept_resume_at = 0.0
        # Called once per accepted connection: peers trusted as proxies get a parser that
        # applies X-Forwarded-*/Forwarded (see http/forwarded.py); everyone else the plain one.
        self.make_parser: Callable[[Limits, str], RequestParser] = RequestParser
        if self.scheme != "http" or request_class is not HTTPRequest:
            self.make_parser = partial(RequestParser, scheme=self.scheme, request_class=request_class)
        if options.forwarded_allow_ips:
            from ..http.forwarded import TrustedProxies, parser_factory

            trusted = TrustedProxies(options.forwarded_allow_ips)
            if trusted:
                self.make_parser = parser_factory(trusted, self.scheme, request_class)
        if sock is None:
            sock = create_listener(options.host, options.port, options.backlog)
        sock.setblocking(False)
        self.listener = sock
        self.selector = selectors.DefaultSelector()
        self.connections: dict[int, Connection] = {}
        self.now = time.monotonic()
        # Responses written while one batch of events is handled wait here, and leave together
        # once the batch is done (see write).
        self._corking = False
        self._corked: list[Connection] = []
        self.timers = TimerWheel(self.now)
        self._stopping = False
        self._stop_deadline = 0.0
        self._linger_until = 0.0
        self._wake_pending = False  # a wake-up byte is sent and not yet read (see wake)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self.listener, EVENT_READ, _LISTENER)
        self.selector.register(self._wake_r, EVENT_READ, _WAKE)
        self.started = threading.Event()
        self.push = PushStreams(self)  # server-sent streams parked until another thread pushes
        self.pool: Any = None  # the PooledDispatch behind --threads, if any
        self.websockets: Any = None  # the WebSocketHub, made at the first upgrade
        if options.threads > 0:
            from .pool import PooledDispatch

            self.pool = PooledDispatch(self, options.threads)
            # The switch, made once: every request the reactor completes goes to the pool.
            self._respond = self.pool.respond  # type: ignore[method-assign]
            self._respond_one = self.pool.respond_one  # type: ignore[method-assign]

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

    # -- control --------------------------------------------------------------

    def wake(self) -> None:
        """Make the loop's ``select`` return (thread-safe).

        One byte is enough until the loop reads it: the handler threads finish requests faster
        than the loop drains them, and a send per result costs a system call and a switch of
        the GIL each. The loop clears the flag once it has read the bytes, before it reads what
        the threads left (see _drain_wakeups), so a result left after that sends a new byte.
        """
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the socket is full: a wake-up is already pending

    def stop(self) -> None:
        """Begin a graceful stop (thread-safe, signal-safe)."""
        self._stopping = True
        self.keep_alive_cutoff = -1
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
        flush = self.flush
        monotonic = time.monotonic
        next_tick = int(self.now) + 1
        slow = False  # the last batch of events took over CORK_EVENT_TIME each (see write)
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
                self._corking = slow
                for key, mask in events:
                    conn = key.data
                    if conn is None:
                        self._accept()
                    elif conn is _WAKE:
                        self._drain_wakeups(key.fileobj is self._wake_r)
                        if self.pool is not None:
                            self.pool.deliver()
                    else:
                        try:
                            if mask & EVENT_READ:
                                on_readable(conn)
                            if mask & EVENT_WRITE and not conn.closed:
                                flush(conn)
                        except Exception:
                            # A bug in our own code must cost one connection, never the server.
                            log.exception("internal error on a connection; closing it")
                            self.close_connection(conn)
                self._corking = False
                if self._corked:
                    self._flush_corked()
                if events:
                    slow = monotonic() - now > len(events) * CORK_EVENT_TIME
                if now >= next_tick:
                    next_tick = int(now) + 1
                    refresh_date()
                    try:
                        self.timers.expire(now, self._on_timeout)
                        if self.websockets is not None:
                            self.websockets.tick(now)
                        if self.lingerer is not None:
                            self.lingerer.tick(now)
                    except Exception:
                        log.exception("internal error while expiring timeouts")
                    if self._accepting is Accepting.BACKING_OFF and now >= self._accept_resume_at:
                        self._resume_accepting()
        finally:
            for signum, handler in previous:
                signal.signal(signum, handler)
            self._shutdown()

    def _drain_step(self) -> bool:
        """One step of a graceful stop; True when the loop may end."""
        if self._stop_deadline == 0.0:
            self._stop_deadline = self.now + self.graceful_timeout
            self.push.end_all()  # a push stream would otherwise hold its connection to the deadline
            if self.websockets is not None:
                self.websockets.close_all()  # 1001; each closes when its close handshake is done
            self._linger_until = self.now + STOP_LINGER
            # Requests that reached us before the stop are answered: accept what waits in
            # the backlog; idle connections stay open for STOP_LINGER, so a request already
            # on its way (a load generator sends the next one at once) is answered, with
            # Connection: close, rather than reset.
            if self._accepting is not Accepting.AT_CAP:
                self._accepting = Accepting.ON
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
                    self.close_connection(conn)
        if not self.connections:
            return True
        return self.now >= self._stop_deadline

    def _shutdown(self) -> None:
        if self.websockets is not None:
            self.websockets.shutdown()
        # Connections before the pool: closing them releases the pool threads still pulling streams.
        for conn in list(self.connections.values()):
            self.close_connection(conn)
        if self.pool is not None:
            self.pool.shutdown()
        if self.lingerer is not None:
            self.lingerer.close_all()
        self.spooler.cleanup()
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):
            pass
        self.listener.close()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _drain_wakeups(self, wake_socket: bool = True) -> None:
        """A wake-up source is readable: the wake-up socket (drained), or the websocket hub's selector."""
        if wake_socket:
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass
            # Cleared after the bytes are read, before what the threads left is: a byte sent
            # before this point was read above, and its result is seen below.
            self._wake_pending = False
        self.push.flush_ready()
        if self.websockets is not None:
            self.websockets.poll()
        if self.lingerer is not None:
            self.lingerer.poll(self.now)

    # -- bodies ---------------------------------------------------------------

    def _open_body(self, request: HTTPRequest, length: int) -> Any:
        """The parser's question when a head announces a body (``length`` -1: chunked): its sink."""
        if self.admit is not None:
            try:
                return self.admit(request, length, self.spooler)
            except ProtocolError:
                raise
            except Exception:  # a bad MAX_BODY_SIZE, an error handler that raised: answered, not dropped
                log.exception("error while admitting the body of %s %s", request.method, request.path)
                raise ProtocolError(500, "Internal Server Error") from None
        limit = self.limits.max_body_size
        if length > limit:
            raise ProtocolError(413, "Request body too large")
        return self.spooler.sink(limit)

    def _linger(self, conn: Connection) -> None:
        """Close ``conn`` after draining what its client still sends (linger.py)."""
        lingerer = self.lingerer
        if lingerer is None:
            from .linger import Lingerer

            lingerer = self.lingerer = Lingerer()
            self.selector.register(lingerer.selector, EVENT_READ, _WAKE)  # type: ignore[arg-type]
        lingerer.adopt(conn.sock, self.now)

    # -- accepting ------------------------------------------------------------

    def _accept(self) -> None:
        if self._accepting:
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
                    self._pause_accepting(Accepting.BACKING_OFF)
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
                self._pause_accepting(Accepting.AT_CAP)
                return

    def _pause_accepting(self, why: Accepting) -> None:
        self._accepting = why
        try:
            self.selector.unregister(self.listener)
        except (KeyError, ValueError):
            pass

    def _resume_accepting(self) -> None:
        if self._stopping:
            return
        self._accepting = Accepting.ON
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
            self.close_connection(conn)
            return
        parser = conn.parser
        if not data:
            self._on_peer_eof(conn)
            return
        requests = parser.receive(data)
        if requests or parser.error is not None:
            if len(requests) == 1 and parser.error is None:
                self._respond_one(conn, requests[0])
            else:
                self._respond(conn, requests)
            if conn.closed:
                return
        if parser.interim and conn.deferred is None and not conn.busy:
            # The 100 Continue is for the request still waiting for its body, so it goes
            # after the responses to the requests this read completed before it.
            self.write(conn, parser.interim)
            parser.interim = b""
        if parser.has_partial_input:
            if parser.state != HEAD:
                if parser.state == UPGRADE:
                    self.held_after_upgrade(conn)
                    return
                self._body_progress(conn, len(data))
            elif not conn.receiving:
                conn.receiving = RECEIVING_HEAD
                self.timers.set_deadline(conn, self.now + self.head_timeout)
        else:
            conn.receiving = RECEIVING_IDLE
            if not conn.outbox:
                conn.deadline = self.now + self.keepalive_timeout

    def held_after_upgrade(self, conn: Connection) -> None:
        """The parser stopped after a request asking to switch protocols.

        While it is being answered (in the pool, or its 101 still being sent) the bytes
        after it stay held; once it has been answered without switching, they are
        parsed as HTTP and answered like any read.
        """
        parser = conn.parser
        if conn.busy or conn.closed or conn.deferred is not None or any(type(item) is WebSocketUpgrade for item in conn.outbox):
            return
        requests = parser.resume()
        if requests or parser.error is not None:
            self._respond(conn, requests)
            if conn.closed:
                return
        if parser.state == UPGRADE:
            self.held_after_upgrade(conn)
            return
        # From here on as at the end of _on_readable (written out there: it runs for every read).
        if parser.interim and conn.deferred is None and not conn.busy:
            self.write(conn, parser.interim)
            parser.interim = b""
        if parser.has_partial_input:
            if parser.state != HEAD:
                self._body_progress(conn, 0)
            elif not conn.receiving:
                conn.receiving = RECEIVING_HEAD
                self.timers.set_deadline(conn, self.now + self.head_timeout)
        else:
            conn.receiving = RECEIVING_IDLE
            if not conn.outbox:
                conn.deadline = self.now + self.keepalive_timeout

    def upgrade(self, conn: Connection, upgrade: WebSocketUpgrade) -> None:
        """Hand ``conn`` to the websocket hub (made on first use): everything before the upgrade is sent."""
        hub = self.websockets
        if hub is None:
            from .websocket import WebSocketHub

            hub = self.websockets = WebSocketHub(self)
            # The hub's selector is a wake-up source: its events reach _drain_wakeups, then hub.poll.
            self.selector.register(hub.selector, EVENT_READ, _WAKE)  # type: ignore[arg-type]
        hub.adopt(conn, upgrade)

    def _body_progress(self, conn: Connection, received: int) -> None:
        """Re-arm the deadline of a connection sending a body.

        No read may be more than ``body_timeout`` after the previous one, and after a
        first ``body_timeout`` of grace the body must average ``min_body_rate`` bytes/s:
        a client trickling one byte now and then cannot hold a connection for long.
        """
        now = self.now
        if conn.receiving != RECEIVING_BODY:
            conn.receiving = RECEIVING_BODY
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
            self.unwatch(conn)
        elif conn.outbox:
            conn.close_after = True
            self.set_events(conn, EVENT_WRITE)
        else:
            self.close_connection(conn)

    def _respond(self, conn: Connection, requests: list[Any]) -> None:
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
            if conn.requests_served >= self.keep_alive_cutoff:
                request.keep_alive = False
            try:
                result = handle(request)
            except Exception:
                log.exception("unhandled error in the application for %s %s", request.method, request.path)
                result = internal_error(request)
            conn.requests_served += 1
            if type(result) is bytes:
                out.append(result)
                out_size += len(result)
            else:
                if not isinstance(result, BodySource):
                    result = wrong_result(request, result)
                    out.append(result)
                    conn.close_after = True
                    break
                out.append(result.head)
                self.write(conn, b"".join(out))
                out = []
                out_size = 0
                self.queue_source(conn, result)
            if not request.keep_alive:
                conn.close_after = True
                break
            if out_size > self.high_water and index + 1 < len(requests):
                self.write(conn, b"".join(out))
                out = []
                out_size = 0
                if conn.closed:
                    return
                if conn.pending_bytes > self.high_water:
                    conn.deferred = requests[index + 1:]
                    self.set_events(conn, EVENT_WRITE)
                    return
        else:
            error = conn.parser.error
            if error is not None:
                out.append(error.response())
                conn.close_after = True
                conn.linger = True
        if out:
            self.write(conn, out[0] if len(out) == 1 else b"".join(out))
        if conn.close_after and not conn.outbox and not conn.closed:
            self.close_connection(conn)

    def _respond_one(self, conn: Connection, request: Any) -> None:
        """``_respond`` for the usual read, one whole request and nothing after it: the same steps,
        with nothing to batch."""
        if conn.requests_served >= self.keep_alive_cutoff:
            request.keep_alive = False
        try:
            result = self.handle(request)
        except Exception:
            log.exception("unhandled error in the application for %s %s", request.method, request.path)
            result = internal_error(request)
        conn.requests_served += 1
        if type(result) is bytes:  # the usual result, written without the extra call
            self.write(conn, result)
        else:
            self.write_result(conn, request, result)
        if not request.keep_alive:
            conn.close_after = True
        if conn.close_after and not conn.outbox and not conn.closed:
            self.close_connection(conn)

    def write_result(self, conn: Connection, request: Any, result: Any) -> None:
        """Write what a handler returned: bytes; a body source (its head, then the source); or,
        for anything else, a 500, and the connection closes after it."""
        if type(result) is bytes:
            self.write(conn, result)
        elif isinstance(result, BodySource):
            self.write(conn, result.head)
            self.queue_source(conn, result)
        else:
            self.write(conn, wrong_result(request, result))
            request.keep_alive = False

    def _respond_deferred(self, conn: Connection) -> None:
        """The outbox drained: answer the pipelined requests held back, then any 100 Continue."""
        requests, conn.deferred = conn.deferred, None
        assert requests is not None
        self._respond(conn, requests)
        if conn.closed or conn.deferred is not None:
            return
        parser = conn.parser
        if parser.state == UPGRADE:
            self.held_after_upgrade(conn)
            return
        if parser.interim:
            self.write(conn, parser.interim)
            parser.interim = b""

    def unwatch(self, conn: Connection) -> None:
        """Stop polling a connection (it waits for the pool)."""
        self.set_events(conn, 0)

    def watch(self, conn: Connection, events: int) -> None:
        """Poll for ``events``, never for reading once the peer has closed its side."""
        self.set_events(conn, events & ~EVENT_READ if conn.peer_eof else events)

    # -- writing --------------------------------------------------------------

    def write(self, conn: Connection, data: bytes) -> None:
        """Send ``data`` now if nothing is queued before it, and queue what is left.

        While a batch of events is being handled, and the handlers are slow (the last batch
        took over CORK_EVENT_TIME per event), a small ``data`` is queued instead and sent
        when the batch is done. Sending a response to a client that sleeps waiting for it
        wakes it, and waking a process on another CPU costs the sender more than the send
        (an inter-processor interrupt; in a virtual machine, an exit to the hypervisor). Sent
        together, the responses of one batch wake a client process that waits on many
        connections (a proxy in front, a load generator) once, not once per response.
        """
        outbox = conn.outbox
        if outbox:
            outbox.append(data)
            conn.pending_bytes += len(data)
            return
        if self._corking and len(data) <= CORK_MAX:
            outbox.append(data)
            conn.pending_bytes += len(data)
            corked = self._corked
            corked.append(conn)
            if len(corked) >= CORK_BATCH:
                self._flush_corked()
            return
        try:
            sent = conn.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close_connection(conn)
            return
        if sent < len(data):
            rest = memoryview(data)[sent:]
            conn.outbox.append(rest)
            conn.pending_bytes += len(rest)
            self._start_write_wait(conn)

    def _flush_corked(self) -> None:
        """Send what was written during the batch of events just handled."""
        corked, self._corked = self._corked, []
        for conn in corked:
            if conn.outbox and not conn.closed:
                try:
                    self.flush(conn)
                except Exception:
                    log.exception("internal error on a connection; closing it")
                    self.close_connection(conn)

    def queue_source(self, conn: Connection, source: BodySource) -> None:
        if conn.closed:
            source.close()
            return
        conn.outbox.append(source)
        if not source.keep_alive:
            conn.close_after = True
        self.flush(conn)

    def _start_write_wait(self, conn: Connection) -> None:
        self.timers.set_deadline(conn, self.now + self.write_timeout)
        events = EVENT_WRITE
        if conn.reading and conn.pending_bytes < self.high_water and not conn.peer_eof:
            events |= EVENT_READ
        self.set_events(conn, events)

    def flush(self, conn: Connection) -> None:
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
                self.close_connection(conn)
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
            self.close_connection(conn)
            return
        if conn.events != EVENT_READ:
            self.set_events(conn, EVENT_READ)
        conn.deadline = self.now + (self.head_timeout if conn.receiving else self.keepalive_timeout)

    def _send_source(self, conn: Connection, source: BodySource) -> bool | None:
        """Advance the body source at the front of the outbox.

        True: it is finished and gone from the outbox (go on flushing); False: the
        socket is full or the source used up its turn; None: the connection closed
        (or was handed to the websocket hub).
        """
        if type(source) is FileBody:
            return self._send_file(conn, source)
        if type(source) is PushStream or type(source) is PulledStream:
            return self.push.send(conn, source)
        if type(source) is WebSocketUpgrade:
            self.upgrade(conn, source)
            return None  # the connection is the websocket hub's now
        assert isinstance(source, StreamBody)
        for _ in range(STREAM_STEP):
            try:
                piece = source.next_piece()
            except Exception:
                log.exception("a streamed response raised after its head was sent; closing the connection")
                self.close_connection(conn)
                return None
            if piece is None:
                self.end_stream(conn, source.chunked)
                return True
            sent_all = self.send_piece(conn, piece)
            if not sent_all:
                return sent_all  # None: closed; False: the stream waits behind its unsent rest
        return False

    def send_piece(self, conn: Connection, piece: bytes) -> bool | None:
        """Send one piece of a streamed body: True if all of it went; False if the rest now waits
        at the front of the outbox (before the stream that made it); None if the connection closed."""
        try:
            sent = conn.sock.send(piece)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close_connection(conn)
            return None
        if sent < len(piece):
            rest = memoryview(piece)[sent:]
            conn.outbox.insert(0, rest)
            conn.pending_bytes += len(rest)
            return False
        return True

    def end_stream(self, conn: Connection, chunked: bool) -> None:
        """Replace the finished stream at the front of the outbox by the last chunk, if any."""
        outbox = conn.outbox
        outbox.pop(0)
        if chunked:
            outbox.insert(0, LAST_CHUNK)
            conn.pending_bytes += len(LAST_CHUNK)

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
                self.close_connection(conn)
                return None
            if sent == 0:  # the file shrank under us: the response cannot be completed
                log.warning("file ended early while sending; closing the connection")
                self.close_connection(conn)
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
                self.close_connection(conn)
                return None
            try:
                sent = conn.sock.send(data)
            except (BlockingIOError, InterruptedError):
                return False
            except OSError:
                self.close_connection(conn)
                return None
            body.offset += sent
            body.remaining -= sent
            if sent < len(data):
                return False
        body.close()
        conn.outbox.pop(0)
        return True

    def set_events(self, conn: Connection, events: int) -> None:
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
        if conn.receiving and not conn.outbox:
            parser = conn.parser
            error = None
            if parser.state == HEAD:
                error = ProtocolError(408, "Request head timed out")
            elif parser.body_sink is not None:
                # The app could have answered: its 408 page (error handlers, after_request hooks).
                try:
                    error = parser.body_sink.refuse(408, "Request body timed out")
                except Exception:
                    log.exception("error while rendering a 408")
            if error is not None:
                try:
                    conn.sock.send(error.response())
                except OSError:
                    pass
        self.close_connection(conn)

    def close_connection(self, conn: Connection) -> None:
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
        conn.parser.discard_body()
        self.connections.pop(conn.fd, None)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        if conn.linger and self.scheme == "http" and not conn.peer_eof:
            self._linger(conn)
        else:
            try:
                conn.sock.close()
            except OSError:
                pass
        if self._accepting is Accepting.AT_CAP and len(self.connections) < self.max_connections:
            self._resume_accepting()
