"""``--workers N``: a supervisor process and N pre-forked workers sharing one listener.

The supervisor binds the listening socket, forks N workers (each runs its own
``Server`` loop on the inherited socket; the kernel hands each new connection to
one of them), and then only watches:

- a worker that dies is replaced (after a short pause if workers keep dying at start);
- SIGTERM or SIGINT is forwarded to every worker, which stops gracefully (finishes
  what it has begun); the supervisor exits 0 once all are gone, killing any still
  running ``graceful_timeout`` + 5 s later;
- SIGHUP reloads gracefully: N fresh workers are forked, then the old ones are sent
  SIGTERM and finish what they are serving. The fresh workers are forked from the
  supervisor, so they run the code it imported: restart the supervisor to load new code.
"""
from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import time
from typing import Any, Callable

__all__ = ["Supervisor"]

log = logging.getLogger("microweb")

RESPAWN_PAUSE_MAX = 5.0  # seconds between restarts when workers keep dying at start
QUICK_DEATH = 1.0  # a worker that dies sooner than this after starting counts as a failed start


class Supervisor:
    """Fork ``workers`` processes, each serving on ``sock``; restart, stop, reload them.

    ``make_server(sock=sock)`` builds a worker's server (``start.create_server`` with the
    handler and options bound): the supervisor itself never builds one.
    """

    def __init__(self, make_server: Callable[..., Any], sock: socket.socket, workers: int,
                 graceful_timeout: float = 30.0) -> None:
        self.make_server = make_server
        self.sock = sock
        self.count = max(1, workers)
        self.graceful_timeout = graceful_timeout
        self.workers: dict[int, float] = {}  # pid -> start time (current generation)
        self.retiring: set[int] = set()  # pids of an older generation, told to stop
        self._signals: list[int] = []
        self._respawn_pause = 0.0
        self._supervisor_sockets: list[socket.socket] = []

    # -- processes --------------------------------------------------------------

    def spawn(self) -> int:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                self._worker_main()
                code = 0
            except BaseException:  # noqa: BLE001 - a worker must never return into the supervisor's loop
                log.exception("worker %d failed", os.getpid())
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = time.monotonic()
        log.info("worker %d started", pid)
        return pid

    def _worker_main(self) -> None:
        early: list[int] = []  # a stop asked for before the Server's own handlers are in place
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda signum, frame: early.append(signum))
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a hang-up is for the supervisor
        signal.set_wakeup_fd(-1)
        for inherited in self._supervisor_sockets:
            inherited.close()
        server = self.make_server(sock=self.sock)
        if early:
            server.stop()
        server.serve_forever()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_IGN)  # stopped already: a second signal must not kill us mid-exit

    def _signal(self, signum: int, frame: Any) -> None:
        self._signals.append(signum)

    def _reap(self, stopping: bool) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            if pid in self.retiring:
                self.retiring.discard(pid)
                log.info("worker %d (old generation) exited with %d", pid, code)
                continue
            started = self.workers.pop(pid, None)
            if started is None or stopping:
                log.info("worker %d exited with %d", pid, code)
                continue
            log.warning("worker %d exited unexpectedly with %d; starting another", pid, code)
            if time.monotonic() - started < QUICK_DEATH:
                self._respawn_pause = min(RESPAWN_PAUSE_MAX, max(0.1, self._respawn_pause * 2))
            else:
                self._respawn_pause = 0.0

    def _signal_all(self, signum: int, pids: Any) -> None:
        for pid in list(pids):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    # -- the supervisor loop --------------------------------------------------------

    def run(self) -> int:
        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        self._supervisor_sockets = [r, w]
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
        previous = {s: signal.signal(s, self._signal) for s in handled}
        old_wakeup = signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        selector = selectors.DefaultSelector()
        selector.register(r, selectors.EVENT_READ)
        stop_deadline = 0.0
        next_spawn = 0.0
        try:
            for _ in range(self.count):
                self.spawn()
            while True:
                selector.select(0.5)
                try:
                    while r.recv(512):
                        pass
                except OSError:
                    pass
                signals, self._signals = self._signals, []
                now = time.monotonic()
                if stop_deadline == 0.0 and any(s in (signal.SIGTERM, signal.SIGINT) for s in signals):
                    log.info("stopping %d workers gracefully", len(self.workers) + len(self.retiring))
                    stop_deadline = now + self.graceful_timeout + 5.0
                    self._signal_all(signal.SIGTERM, [*self.workers, *self.retiring])
                    # Our copy of the listener would keep it open after the workers close
                    # theirs: new connections would queue in a backlog no one accepts, then
                    # be reset. Without it, the socket closes with the last worker's copy.
                    self.sock.close()
                elif stop_deadline == 0.0 and signal.SIGHUP in signals:
                    log.info("reloading: starting %d new workers, stopping the old ones gracefully", self.count)
                    old = list(self.workers)
                    self.retiring.update(old)
                    for pid in old:
                        del self.workers[pid]
                    for _ in range(self.count):
                        self.spawn()
                    self._signal_all(signal.SIGTERM, old)
                self._reap(stop_deadline != 0.0)
                if stop_deadline:
                    if not self.workers and not self.retiring:
                        return 0
                    if now >= stop_deadline:
                        log.warning("workers still running after the grace period; killing them")
                        self._signal_all(signal.SIGKILL, [*self.workers, *self.retiring])
                        stop_deadline = now + 5.0
                    continue
                missing = self.count - len(self.workers)
                if missing > 0 and now >= next_spawn:
                    for _ in range(missing):
                        self.spawn()
                    next_spawn = now + self._respawn_pause
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in previous.items():
                if stop_deadline and signum in (signal.SIGTERM, signal.SIGINT):
                    handler = signal.SIG_IGN  # stopped: a repeated Ctrl+C must not kill the exit
                signal.signal(signum, handler)
            selector.close()
            r.close()
            w.close()
