"""`BufferedRead`: dulwich's small reads of an HTTP response served from 64 KiB pieces.

The transports themselves (push and fetch over smart HTTP through a real
`git http-backend`) are in tests/ops/test_sharing_transports.py; this checks
that the buffer hands back exactly the stream, in any read sizes.
"""

from __future__ import annotations

import io
import random

from gitxp.git.http_reads import CHUNK, BufferedRead


def test_reads_of_any_size_give_back_the_stream_exactly() -> None:
    rng = random.Random(7)
    data = rng.randbytes(3 * CHUNK + 123)
    source = io.BytesIO(data)
    calls: list[int] = []

    def read(n: int = -1) -> bytes:
        calls.append(n)
        return source.read(n)

    buffered = BufferedRead(read)
    pieces, size = [], 0
    while size < len(data) - 10:
        piece = buffered(rng.choice([1, 4, 17, 1000, CHUNK + 5]))
        pieces.append(piece)
        size += len(piece)
    pieces.append(buffered())  # the rest
    assert b"".join(pieces) == data
    assert buffered(4) == b""  # at the end, like the read it wraps
    assert len(calls) < 10  # a few large reads, not one per small read
