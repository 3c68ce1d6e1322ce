"""The UI server's connections: idle and slow clients cost no thread, and time out.

A thread per connection (what `ThreadingHTTPServer` does) lets anyone who
can connect pin down a thread, and its stack, with a connection that never
finishes its request: 3,000 such "slowloris" connections meant 3,000
threads. Here one thread, the *loop*, accepts connections and reads request
heads without blocking, under deadlines; only a complete request head is
handed to a fixed pool of worker threads, which answer it and give the
connection back to the loop to wait for the next request (keep-alive).

Limits (`Limits`, all configurable): a connection may sit idle for
``idle_timeout`` seconds, and must deliver a whole request head within
``request_timeout`` seconds of its first byte (else 408), in at most
``max_head_bytes`` (else 431); a response must be taken by the client within
``write_timeout`` seconds; at most ``max_connections`` connections are open at
once: at the cap, the one that has waited longest without a complete request
is dropped to make room, or the newcomer gets 503 when every connection is
being answered.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("gitxp.ui.connections")

_HEAD_END = re.compile(rb"\r?\n\r?\n")
_BACKLOG = 1024


@dataclass(frozen=True)
class Limits:
    """How much the server lets clients take; see the module docstring."""

    workers: int = 8
    max_connections: int = 256
    request_timeout: float = 10.0
    idle_timeout: float = 15.0
    write_timeout: float = 30.0
    max_head_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        from ..errors import InvalidValueError

        for name in ("workers", "max_connections", "max_head_bytes"):
            if int(getattr(self, name)) < 1:
                raise InvalidValueError(name, "must be at least 1")
        for name in ("request_timeout", "idle_timeout", "write_timeout"):
            value = float(getattr(self, name))
            if not value > 0 or value == float("inf"):
                raise InvalidValueError(name, "must be a positive number of seconds")


class _Conn:
    """One client connection and the bytes of its next request read so far."""

    __slots__ = ("addr", "buf", "deadline", "sock")

    def __init__(self, sock: socket.socket, addr: Any, deadline: float) -> None:
        self.sock = sock
        self.addr = addr
        self.buf = b""
        self.deadline = deadline


def _say_and_close(sock: socket.socket, status: str) -> None:
    """Send a one-line error answer if the socket takes it at once, then close."""
    body = status.split(" ", 1)[1].encode() + b"\n"
    answer = (
        f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        sock.setblocking(False)
        sock.send(answer)
    except OSError:
        pass
    sock.close()


AnswerFn = Callable[[socket.socket, Any, bytes], bool]


class ConnectionServer:
    """Listens on *address* and calls *answer(sock, addr, head)* on a worker per request.

    *answer* writes the response to the (blocking, write-timed-out) socket and
    returns whether the connection stays open for another request.
    """

    def __init__(self, address: tuple[str, int], family: int, answer: AnswerFn, limits: Limits):
        self.limits = limits
        self._answer = answer
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(address)
            self.listener.listen(_BACKLOG)
            self.listener.setblocking(False)
        except OSError:
            self.listener.close()
            raise
        self.server_address = self.listener.getsockname()
        self._sel = selectors.DefaultSelector()
        self._waiting: dict[int, _Conn] = {}  # fd -> connection, oldest first
        self._busy = 0  # connections with the workers (queued or being answered)
        self._jobs: queue.Queue[tuple[_Conn, bytes] | None] = queue.Queue()
        self._returned: deque[tuple[_Conn, bool]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._next_deadline = float("inf")
        self._stop = threading.Event()
        self._running = threading.Event()
        self._done = threading.Event()
        self._closed = False
        self._workers: list[threading.Thread] = []

    # -- the loop ------------------------------------------------------------
    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Accept and read connections until `shutdown()`; workers start here."""
        self._done.clear()
        self._running.set()
        for i in range(self.limits.workers - len(self._workers)):
            t = threading.Thread(target=self._work, name=f"gitxp-ui-{i}", daemon=True)
            t.start()
            self._workers.append(t)
        self._sel.register(self.listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            while not self._stop.is_set():
                timeout = max(0.0, min(poll_interval, self._next_deadline - time.monotonic()))
                for key, _ in self._sel.select(timeout):
                    if key.fileobj is self.listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        self._drain_wake()
                    else:
                        self._read(key.data)
                self._take_returned()
                if time.monotonic() >= self._next_deadline:
                    self._expire()
        finally:
            self._sel.unregister(self.listener)
            self._sel.unregister(self._wake_r)
            self._stop.clear()
            self._running.clear()
            self._done.set()

    def _open_count(self) -> int:
        return len(self._waiting) + self._busy

    def _accept(self) -> None:
        for _ in range(256):  # a burst per wake-up, then serve the others
            try:
                sock, addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors: make room, try later
                log.warning("gitxp ui: cannot accept a connection: %s", exc)
                if self._waiting:
                    self._drop(next(iter(self._waiting.values())))
                return
            if self._open_count() >= self.limits.max_connections:
                if not self._waiting:
                    _say_and_close(sock, "503 Service Unavailable: too many connections")
                    continue
                self._drop(next(iter(self._waiting.values())))  # waited longest
            sock.setblocking(False)
            self._watch(_Conn(sock, addr, time.monotonic() + self.limits.idle_timeout))

    def _watch(self, conn: _Conn) -> None:
        self._waiting[conn.sock.fileno()] = conn
        self._sel.register(conn.sock, selectors.EVENT_READ, conn)
        self._next_deadline = min(self._next_deadline, conn.deadline)

    def _unwatch(self, conn: _Conn) -> None:
        self._waiting.pop(conn.sock.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(conn.sock)

    def _drop(self, conn: _Conn, status: str | None = None) -> None:
        self._unwatch(conn)
        if status:
            _say_and_close(conn.sock, status)
        else:
            conn.sock.close()

    def _read(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        if not conn.buf:  # a request has begun: it has request_timeout to arrive whole
            conn.deadline = time.monotonic() + self.limits.request_timeout
            self._next_deadline = min(self._next_deadline, conn.deadline)
        conn.buf += data
        self._dispatch(conn)

    def _dispatch(self, conn: _Conn) -> None:
        """Hand *conn* to a worker if its request head is complete."""
        conn.buf = conn.buf.lstrip(b"\r\n")  # stray line ends between requests
        found = _HEAD_END.search(conn.buf, 0, self.limits.max_head_bytes + 4)
        if found is None:
            if len(conn.buf) > self.limits.max_head_bytes:
                self._drop(conn, "431 Request Header Fields Too Large")
            return
        head, conn.buf = conn.buf[: found.end()], conn.buf[found.end() :]
        self._unwatch(conn)
        self._busy += 1
        self._jobs.put((conn, head))

    def _expire(self) -> None:
        now = time.monotonic()
        later = float("inf")
        for conn in list(self._waiting.values()):
            if conn.deadline <= now:
                self._drop(conn, "408 Request Timeout" if conn.buf else None)
            else:
                later = min(later, conn.deadline)
        self._next_deadline = later

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # a wake-up byte is pending, or we are closing
            self._wake_w.send(b"x")

    def _take_returned(self) -> None:
        while self._returned:
            conn, keep = self._returned.popleft()
            self._busy -= 1
            if not keep or self._stop.is_set():
                conn.sock.close()
                continue
            conn.sock.setblocking(False)
            conn.deadline = time.monotonic() + self.limits.idle_timeout
            self._watch(conn)
            if conn.buf:  # a pipelined request came with the last one
                self._read_pipelined(conn)

    def _read_pipelined(self, conn: _Conn) -> None:
        conn.deadline = time.monotonic() + self.limits.request_timeout
        self._dispatch(conn)

    # -- the workers ------------------------------------------------------------
    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            conn, head = job
            keep = False
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(self.limits.write_timeout)  # sendall: for the whole answer
                keep = self._answer(conn.sock, conn.addr, head)
            except OSError as exc:  # the client went away or did not read in time
                log.debug("gitxp ui: connection from %s ended: %s", conn.addr, exc)
            except Exception:
                log.exception("gitxp ui: error answering %s", conn.addr)
            if self._closed:
                conn.sock.close()
                continue
            self._returned.append((conn, keep))
            self._wake()

    # -- stopping ---------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop `serve_forever()` (from another thread) and wait until it has."""
        if not self._running.is_set():
            return
        self._stop.set()
        self._wake()
        self._done.wait()

    def server_close(self) -> None:
        """Close the listening socket, every connection, and stop the workers."""
        self._closed = True
        for conn in list(self._waiting.values()):
            self._drop(conn)
        while self._returned:
            self._returned.popleft()[0].sock.close()
        for _ in self._workers:
            self._jobs.put(None)
        for t in self._workers:
            t.join(timeout=2.0)  # a worker stuck in a slow read is a daemon: left behind
        self._workers = []
        self.listener.close()
        self._sel.close()
        self._wake_r.close()
        self._wake_w.close()
