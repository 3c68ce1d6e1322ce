"""Reading smart-HTTP responses in large pieces for dulwich's HTTP client.

dulwich parses a response one pkt-line at a time, and over HTTP each of
those reads is a call into urllib3 (two per line: length, then payload).
A push to a remote holding 100,000 runs reads a 100,000-line ref
advertisement, which cost ~0.7 CPU seconds in those calls alone. Every
smart-HTTP response is finite (the protocol is stateless: the client never
answers in the middle of one), so reading it in 64 KiB pieces and serving
dulwich's small reads from that buffer changes nothing but the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CHUNK = 64 * 1024


class BufferedRead:
    """A `read(n)` over *read* (a response's own) that fetches CHUNK bytes at a time."""

    def __init__(self, read: Callable[..., bytes]) -> None:
        self._read = read
        self._buffer = b""
        self._pos = 0

    def __call__(self, n: int | None = None) -> bytes:
        """Up to *n* bytes (all that is left with None or a negative *n*); fewer only at
        the end of the response, like the read it wraps."""
        if n is None or n < 0:
            rest = self._buffer[self._pos :] + self._read()
            self._buffer, self._pos = b"", 0
            return rest
        while len(self._buffer) - self._pos < n:
            chunk = self._read(max(n, CHUNK))
            if not chunk:
                break
            self._buffer = self._buffer[self._pos :] + chunk
            self._pos = 0
        out = self._buffer[self._pos : self._pos + n]
        self._pos += len(out)
        return out


def buffer_responses(client: Any) -> None:
    """Make dulwich HTTP *client* read every response through a `BufferedRead`
    (nothing happens to a client of another transport)."""
    request = getattr(client, "_http_request", None)
    if request is None or not hasattr(client, "pool_manager"):
        return

    def buffered(*args: Any, **kwargs: Any) -> tuple[Any, Callable[..., bytes]]:
        response, read = request(*args, **kwargs)
        return response, BufferedRead(read)

    client._http_request = buffered
