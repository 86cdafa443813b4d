"""WebSockets in the reactor: the upgraded connections of one server, served without a thread each.

Theory of operation
-------------------
The reactor knows one thing about WebSockets: a handler's result of type
``WebSocketUpgrade`` (``http/websocket.py``) that reaches the front of a
connection's outbox is handed to ``WebSocketHub.adopt``. The connection stays
in the server's table (it counts toward ``max_connections`` and a graceful stop
waits for it) but is marked ``busy``, so the HTTP side leaves it alone, and its
socket moves from the server's selector to the hub's own. The hub's selector
is itself registered in the server's selector as a wake-up source: its events
reach the loop's wake-up branch, which calls ``poll``. So the HTTP hot path
has no websocket check at all, and an idle websocket costs an ``Endpoint``
and a few hundred bytes.

Adopting: negotiate permessage-deflate with the server's settings, send the
101, take the bytes the HTTP parser held after the handshake (they are the
first frames), and call the upgrade's ``open(endpoint)``: it returns the
framework's listener and the application handler, run inline on the loop or,
under ``--threads``, in the pool.

Reading: ``recv``, then ``WebSocketProtocol.receive``; what the protocol must
answer by itself (pongs, close replies) is written first, then messages go to
``listener.deliver_message`` and the close to ``listener.deliver_close``
(exactly once per connection, 1006 when it dropped).

Writing: as in the reactor, optimistic ``send``, the rest queued in ``out``.
Over ``high_water`` queued bytes the endpoint is not read. ``send`` from
another thread encodes the frame there, appends it to ``queued`` and wakes
the loop (one wake-up per batch: ``wake_pending``); it then blocks while more
than ``high_water`` bytes wait, for at most ``write_timeout`` (``TimeoutError``).
On the loop thread ``send`` cannot block: a peer that lets more than
``4 * high_water`` pile up is disconnected. A compressor's context makes frame
order matter, so every frame of an endpoint is encoded and queued under its
lock, and the loop sends the queue before anything newer.

Closing: our close frame (``close()``, a failed protocol, a graceful stop
with 1001, a ping unanswered for ``ws_ping_timeout``) or the peer's. Once both
have crossed, or we failed the connection, the socket is half-closed when the
output drains and read (and discarded) until EOF, for at most
``ws_ping_timeout``; then the server closes it. So the peer reads our close
frame before the connection ends, never a reset. (Over TLS the server closes
at once, sending close_notify: a TCP half-close would skip it.)

Timers: each endpoint has one deadline on the hub's ``TimerWheel`` (ticked by
the server each second): the next ping, the pong, the close handshake or a
stalled write, whichever comes first.
"""
from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections import deque
from typing import Any, Callable

from ..http.websocket import (ABNORMAL_CLOSURE, GOING_AWAY, INTERNAL_ERROR, NORMAL_CLOSURE, Close, Pong,
                              WebSocketProtocol, WebSocketUpgrade, negotiate_deflate)
from ..http.parser import RequestParser
from .timers import TimerWheel

__all__ = ["WebSocketHub", "Endpoint"]

log = logging.getLogger("microweb")

EVENT_READ = selectors.EVENT_READ
EVENT_WRITE = selectors.EVENT_WRITE
RECV_SIZE = 65536
_OVERFLOW_FACTOR = 4  # on the loop thread: queued bytes past high_water * this disconnect a peer
_DETACHED = RequestParser()  # what an upgraded connection keeps as its parser: closed, shared
_DETACHED.detach()


class Endpoint:
    """One upgraded connection: what the framework's ``WebSocket`` talks to (thread-safe ``send``/``close``)."""

    __slots__ = ("hub", "conn", "sock", "protocol", "listener", "subprotocol", "out", "out_bytes", "queued",
                 "queued_bytes", "lock", "drained", "waiters", "events", "paused", "closed", "reported",
                 "finishing", "half_closed", "deadline", "timer_slot", "ping_due", "pong_due", "close_due",
                 "last_progress", "tls", "remote_addr", "__weakref__")

    def __init__(self, hub: WebSocketHub, conn: Any, protocol: WebSocketProtocol, subprotocol: str | None) -> None:
        self.hub = hub
        self.conn = conn
        self.sock = conn.sock
        self.protocol = protocol
        self.listener: Any = None
        self.subprotocol = subprotocol
        self.out: list[Any] = []  # bytes and memoryviews waiting for the socket (loop thread only)
        self.out_bytes = 0
        self.queued: list[bytes] = []  # frames from other threads, not yet in ``out`` (under ``lock``)
        self.queued_bytes = 0
        self.lock = threading.Lock()
        self.drained: threading.Condition | None = None  # senders blocked by backpressure wait here
        self.waiters = 0
        self.events = 0
        self.paused = False  # the application asked us not to read (its inbox is full)
        self.closed = False  # the socket is gone
        self.reported = False  # deliver_close has been called
        self.finishing = False  # both close frames crossed (or we failed): half-close once drained
        self.half_closed = False
        self.deadline = 0.0
        self.timer_slot = 0
        self.ping_due = 0.0
        self.pong_due = 0.0
        self.close_due = 0.0
        self.last_progress = 0.0
        self.tls = hasattr(self.sock, "pending")  # an SSL socket: decrypted bytes may wait in OpenSSL
        self.remote_addr: str = conn.parser.remote_addr

    # -- for the application (any thread) ----------------------------------------

    def on_loop_thread(self) -> bool:
        """Whether the caller is the server's loop (where nothing may block)."""
        return threading.get_ident() == self.hub.loop_thread

    def send(self, data: str | bytes) -> bool:
        """Send one message; False once the connection is closing or closed."""
        hub = self.hub
        if threading.get_ident() == hub.loop_thread:
            with self.lock:
                if self.closed or self.protocol.close_sent:
                    return False
                frame = self.protocol.encode_message(data)
                if self.queued:
                    self.queued.append(frame)
                    frame = self._take_queued()
            hub.write(self, frame)
            if self.out_bytes > hub.high_water * _OVERFLOW_FACTOR:
                log.warning("websocket peer %s is not reading; disconnecting it", self.remote_addr)
                hub.abort(self)
            return True
        with self.lock:
            if self.closed or self.protocol.close_sent:
                return False
            frame = self.protocol.encode_message(data)
            self.queued.append(frame)
            self.queued_bytes += len(frame)
            over = self.queued_bytes + self.out_bytes > hub.high_water
        hub.schedule(self)
        if over:
            self._wait_for_room()
        return True

    def _wait_for_room(self) -> None:
        hub = self.hub
        with self.lock:
            if self.drained is None:
                self.drained = threading.Condition(self.lock)
            self.waiters += 1
            try:
                if not self.drained.wait_for(
                        lambda: self.closed or self.queued_bytes + self.out_bytes <= hub.high_water,
                        hub.write_timeout):
                    raise TimeoutError("the WebSocket peer is not reading (send blocked for "
                                       f"{hub.write_timeout:g} s)")
            finally:
                self.waiters -= 1

    def _take_queued(self) -> bytes:
        """The queued frames as one piece (call with the lock held)."""
        frames, self.queued = self.queued, []
        self.queued_bytes = 0
        return frames[0] if len(frames) == 1 else b"".join(frames)

    def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Start the close handshake (thread-safe; nothing happens once closing)."""
        with self.lock:
            if self.closed:
                return
            frame = self.protocol.encode_close(code, reason)
            if not frame:
                return
            self.queued.append(frame)
            self.queued_bytes += len(frame)
        if threading.get_ident() == self.hub.loop_thread:
            self.hub.flush_queued(self)
        else:
            self.hub.schedule(self)

    def call_soon(self, func: Callable[[], None]) -> None:
        """Run ``func`` on the loop thread (at once when called there)."""
        if threading.get_ident() == self.hub.loop_thread:
            func()
        else:
            self.hub.calls.append(func)
            self.hub.wake()

    def pause_reading(self, paused: bool) -> None:
        """Stop (True) or resume (False) reading from the peer (thread-safe)."""
        self.call_soon(lambda: self.hub.set_paused(self, paused))

    @property
    def is_closed(self) -> bool:
        return self.closed or self.protocol.state != "OPEN"


class WebSocketHub:
    """The upgraded connections of one server, on their own selector inside the server's."""

    def __init__(self, server: Any) -> None:
        options = server.options
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.endpoints: set[Endpoint] = set()
        self.ready: deque[Endpoint] = deque()  # endpoints with frames queued by other threads
        self.calls: deque[Callable[[], None]] = deque()  # functions to run on the loop (call_soon)
        self.wake_pending = False
        self.timers = TimerWheel(server.now)
        self.loop_thread = threading.get_ident()  # adopt() runs on the loop
        self.max_message: int = options.ws_max_message
        self.deflate: bool = options.ws_deflate
        self.ping_interval: float = options.ws_ping_interval
        self.ping_timeout: float = options.ws_ping_timeout
        self.high_water: int = server.high_water
        self.write_timeout: float = server.write_timeout
        self.stopping = False

    # -- from the reactor ---------------------------------------------------------------

    def adopt(self, conn: Any, upgrade: WebSocketUpgrade) -> None:
        """Take over ``conn`` once the HTTP side has sent everything before the upgrade."""
        server = self.server
        conn.outbox.pop(0)
        conn.busy = True  # the HTTP side's timeouts and graceful stop leave it alone
        server.set_events(conn, 0)
        deflate = negotiate_deflate(upgrade.offers) if self.deflate and upgrade.offers else None
        ep = Endpoint(self, conn, WebSocketProtocol(self.max_message, deflate), upgrade.subprotocol)
        self.endpoints.add(ep)
        ep.events = EVENT_READ
        self.selector.register(ep.sock, EVENT_READ, ep)
        ep.last_progress = server.now
        self.write(ep, upgrade.response_head(deflate))
        if ep.closed:
            return
        try:
            ep.listener, run = upgrade.open(ep)
        except Exception:
            log.exception("error opening a websocket")
            self.abort(ep)
            return
        if server.pool is not None:
            server.pool.threads.call(run)
        else:
            self._run_inline(ep, run)
        if ep.closed:
            return
        if self.ping_interval > 0:
            ep.ping_due = server.now + self.ping_interval
        self._rearm(ep)
        held = conn.parser.detach()
        conn.parser = _DETACHED  # the HTTP parser and the header block it remembers are not needed again
        if held:
            self._received(ep, held)
        self._read_tls_pending(ep)

    def _run_inline(self, ep: Endpoint, run: Callable[[], None]) -> None:
        try:
            run()
        except Exception:
            log.exception("unhandled error in a websocket handler")
            ep.close(INTERNAL_ERROR)

    def poll(self) -> None:
        """On the loop: run what other threads asked for, then serve the endpoints that are ready."""
        self.wake_pending = False
        calls = self.calls
        while calls:
            try:
                calls.popleft()()
            except Exception:
                log.exception("error in a websocket callback")
        ready = self.ready
        while ready:
            ep = ready.popleft()
            if not ep.closed:
                try:
                    self.flush_queued(ep)
                except Exception:
                    log.exception("internal error on a websocket; closing it")
                    self.abort(ep)
        for key, mask in self.selector.select(0):
            ep = key.data
            try:
                if mask & EVENT_READ:
                    self._on_readable(ep)
                if mask & EVENT_WRITE and not ep.closed:
                    self.flush(ep)
            except Exception:
                log.exception("internal error on a websocket; closing it")
                self.abort(ep)

    def tick(self, now: float) -> None:
        """The server's one-second tick: pings, pong and close deadlines, stalled writes."""
        self.timers.expire(now, self._on_timer)

    def close_all(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> None:
        """A graceful stop: close every websocket (the server waits for the handshakes)."""
        self.stopping = True
        for ep in list(self.endpoints):
            ep.close(code, reason)

    def shutdown(self) -> None:
        for ep in list(self.endpoints):
            self.abort(ep)
        self.selector.close()

    # -- scheduling from other threads ----------------------------------------------------

    def wake(self) -> None:
        if not self.wake_pending:
            self.wake_pending = True
            self.server.wake()

    def schedule(self, ep: Endpoint) -> None:
        self.ready.append(ep)
        self.wake()

    def flush_queued(self, ep: Endpoint) -> None:
        """Move the frames other threads queued to the socket (loop thread)."""
        with ep.lock:
            if not ep.queued:
                return
            data = ep._take_queued()
        self.write(ep, data)
        self._after_send(ep)

    # -- reading ---------------------------------------------------------------------------

    def _on_readable(self, ep: Endpoint) -> None:
        try:
            data = ep.sock.recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.abort(ep)
            return
        if not data:
            self._on_eof(ep)
            return
        self._received(ep, data)
        self._read_tls_pending(ep)

    def _read_tls_pending(self, ep: Endpoint) -> None:
        """TLS may hold decrypted bytes that the kernel will not signal again."""
        if not ep.tls:
            return
        pending = ep.sock.pending
        for _ in range(64):
            if ep.closed or not ep.events & EVENT_READ or not pending():
                return
            self._on_readable(ep)

    def _received(self, ep: Endpoint, data: bytes) -> None:
        protocol = ep.protocol
        if ep.finishing:
            return  # after the close: discarded until EOF
        with ep.lock:
            events = protocol.receive(data)
            answers = protocol.outgoing
            if answers:
                protocol.outgoing = []
        if answers:
            self.write(ep, answers[0] if len(answers) == 1 else b"".join(answers))
            if ep.closed:
                return
        listener = ep.listener
        for event in events:
            kind = type(event)
            if kind is str or kind is bytes:
                if listener is not None:
                    try:
                        listener.deliver_message(event)
                    except Exception:
                        log.exception("unhandled error in a websocket message handler")
                        ep.close(INTERNAL_ERROR)
                if ep.closed:
                    return
            elif kind is Pong:
                if ep.pong_due:
                    ep.pong_due = 0.0
                    ep.ping_due = self.server.now + self.ping_interval
            elif kind is Close:
                self._closed(ep, event)
                return

    def _closed(self, ep: Endpoint, close: Close) -> None:
        """Both close frames have crossed, or the protocol failed: finish after the output drains."""
        ep.finishing = True
        ep.close_due = self.server.now + self.ping_timeout
        self._report(ep, close.code, close.reason)
        if not ep.closed:
            self._rearm(ep)
            if not ep.out:
                self._half_close(ep)

    def _on_eof(self, ep: Endpoint) -> None:
        self._report(ep, ABNORMAL_CLOSURE, "")
        self.release(ep)

    def _report(self, ep: Endpoint, code: int, reason: str) -> None:
        if ep.reported:
            return
        ep.reported = True
        listener = ep.listener
        if listener is not None:
            try:
                listener.deliver_close(code, reason)
            except Exception:
                log.exception("unhandled error in a websocket close handler")

    # -- writing ---------------------------------------------------------------------------

    def write(self, ep: Endpoint, data: bytes) -> None:
        """Send ``data`` now if nothing waits before it; queue the rest (loop thread)."""
        if ep.closed:
            return
        if ep.out:
            ep.out.append(data)
            ep.out_bytes += len(data)
            self._watch(ep)
            return
        try:
            sent = ep.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.abort(ep)
            return
        if sent < len(data):
            rest = memoryview(data)[sent:]
            ep.out.append(rest)
            ep.out_bytes += len(rest)
            ep.last_progress = self.server.now
            self._watch(ep)
            self._rearm(ep)

    def flush(self, ep: Endpoint) -> None:
        out = ep.out
        sock = ep.sock
        while out:
            item = out[0]
            try:
                sent = sock.send(item)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.abort(ep)
                return
            ep.out_bytes -= sent
            ep.last_progress = self.server.now
            if sent < len(item):
                out[0] = memoryview(item)[sent:]
                break
            out.pop(0)
        self._after_send(ep)

    def _after_send(self, ep: Endpoint) -> None:
        if ep.closed:
            return
        if ep.waiters and ep.out_bytes + ep.queued_bytes <= self.high_water:
            with ep.lock:
                if ep.drained is not None:
                    ep.drained.notify_all()
        self._watch(ep)
        if not ep.out:
            if ep.finishing and not ep.half_closed:
                self._half_close(ep)
            elif ep.protocol.close_sent and not ep.close_due:
                ep.close_due = self.server.now + self.ping_timeout  # our close waits for the peer's
                self._rearm(ep)

    def _watch(self, ep: Endpoint) -> None:
        """Poll for what the endpoint needs: reading unless paused or backed up, writing while output waits."""
        events = 0
        if not ep.paused and ep.out_bytes <= self.high_water:
            events = EVENT_READ
        if ep.out:
            events |= EVENT_WRITE
        if events != ep.events and not ep.closed:
            if ep.events and events:
                self.selector.modify(ep.sock, events, ep)
            elif events:
                self.selector.register(ep.sock, events, ep)
            else:
                self.selector.unregister(ep.sock)
            ep.events = events

    def set_paused(self, ep: Endpoint, paused: bool) -> None:
        if not ep.closed and ep.paused != paused:
            ep.paused = paused
            self._watch(ep)

    def _half_close(self, ep: Endpoint) -> None:
        ep.half_closed = True
        if ep.tls:
            # TLS: a TCP half-close would skip close_notify; the server's close sends it.
            self.release(ep)
            return
        try:
            ep.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.release(ep)

    # -- timers and closing ----------------------------------------------------------------

    def _rearm(self, ep: Endpoint) -> None:
        due = [t for t in (ep.ping_due, ep.pong_due, ep.close_due) if t]
        if ep.out:
            due.append(ep.last_progress + self.write_timeout)
        if due:
            # Never a slot the wheel is expiring now (it may be, when re-armed from _on_timer): a
            # deadline already past fires at the next tick.
            deadline = max(min(due), float(int(self.server.now) + 1))
            if deadline != ep.deadline or not ep.timer_slot:
                self.timers.set_deadline(ep, deadline)

    def _on_timer(self, ep: Endpoint) -> None:
        now = self.server.now
        if ep.out and now - ep.last_progress >= self.write_timeout:
            self.abort(ep)
            return
        if ep.close_due and now >= ep.close_due:
            self.abort(ep)  # the peer never answered our close, or never closed its side
            return
        if ep.pong_due and now >= ep.pong_due:
            log.info("websocket peer %s did not answer a ping within %g s; closing", ep.remote_addr,
                     self.ping_timeout)
            ep.pong_due = 0.0
            ep.ping_due = 0.0
            ep.close_due = now + min(self.ping_timeout, 5.0)
            ep.close(INTERNAL_ERROR, "keepalive ping timeout")
            self._report(ep, ABNORMAL_CLOSURE, "keepalive ping timeout")
        elif ep.ping_due and now >= ep.ping_due and not ep.protocol.close_sent:
            with ep.lock:
                frame = ep.protocol.encode_ping(b"microweb")
            self.write(ep, frame)
            if ep.closed:
                return
            ep.ping_due = 0.0
            ep.pong_due = now + self.ping_timeout
        self._rearm(ep)

    def abort(self, ep: Endpoint) -> None:
        """Drop the connection now (1006 for the application)."""
        self._report(ep, ABNORMAL_CLOSURE, "")
        self.release(ep)

    def release(self, ep: Endpoint) -> None:
        """The end of an endpoint: off the selector, the socket closed by the server."""
        if ep.closed:
            return
        with ep.lock:
            ep.closed = True
            ep.queued = []
            ep.queued_bytes = 0
            if ep.drained is not None:
                ep.drained.notify_all()
        self._report(ep, ABNORMAL_CLOSURE, "")
        self.endpoints.discard(ep)
        ep.out = []
        ep.out_bytes = 0
        if ep.events:
            try:
                self.selector.unregister(ep.sock)
            except (KeyError, ValueError):
                pass
            ep.events = 0
        conn = ep.conn
        conn.busy = False
        self.server.close_connection(conn)
