"""The listing cache file: every listed run's row, stored so a reader decodes only what it needs.

`.git/gitxp/index-v4.bin` (cache version 4, docs/format.md "Derived cache")
is one file, replaced as a whole (a temporary file renamed over it), read
through a memory map: a reader keeps seeing the file it opened even when a
concurrent listing replaces it. It holds

- a first line `gitxp-listing-cache 4`, then one line of JSON, the header:
  the count of listed refs, the limits the rows were checked under, what
  proves the refs unchanged (the packed-refs stamp, the loose ref
  directories' stamps), the CORRUPT runs, and where each section starts;
- sections, one after the other, each a JSON text or a binary array:
  the listed refs in listing order (newest first: start time, then id,
  descending; ties by ref name), their commit ids, one JSON array per
  scalar column (`id`, `name`, `status`, ...), one per params/metrics/tags
  key (`[null, values]` when every run has the key, else `[indexes,
  values]`), every row as JSON (one array, each element's byte offset in
  the `offsets` section, little-endian uint64), and the loose refs' stat
  cache.

So `gitxp log -n 20` reads the header and 20 rows, `Repo.runs()` decodes
columns without making a dict per run, and a filter decodes the columns it
names. Only this module knows the layout.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import os
import sys
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

CACHE_FILE = "index-v4.bin"
# rows a listing took from the shipped listing index, still to be checked, and how far
# the checks have gone (shipped_index.py)
UNVERIFIED_FILE = "shipped-unverified-v1"
VERIFIED_FILE = "shipped-verified-v1"
# 4: a columnar file replacing index-v1.json (versions 1-3, one JSON object)
CACHE_VERSION = 4
MAGIC = b"gitxp-listing-cache 4\n"
KINDS = ("params", "metrics", "tags")
# row members kept as columns: what the DataFrame shows and filters may name
COLUMNS = (
    "id",
    "name",
    "experiment",
    "status",
    "start_time",
    "end_time",
    "code_commit",
    "user",
    "host",
    "dirty",
    "corrupt",
)


class _Missing:
    """The value of a params/metrics/tags column for a run that lacks the key."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_dumps = json.JSONEncoder(separators=(",", ":")).encode


class CacheFile:
    """One cache file opened for reading; sections are decoded on demand."""

    def __init__(self, buf: bytes | mmap.mmap, header: dict[str, Any], body: int) -> None:
        self.buf = buf
        self.header = header
        self._body = body
        self._sections: dict[str, list[int]] = header["sections"]
        self.n: int = header["n"]
        self._columns: dict[str, list[Any]] = {}
        self._keyed: dict[str, tuple[list[int] | None, list[Any]]] = {}
        self._offsets: array[int] | None = None

    @classmethod
    def read(cls, path: str, limits: Any) -> CacheFile | None:
        """The cache at *path*; None when it is missing, garbled, of another version or
        was checked under other *limits* (a verdict reached under them may not hold)."""
        try:
            with open(path, "rb") as f:
                # Windows refuses to replace a mapped file: read it there instead
                buf: bytes | mmap.mmap = (
                    f.read()
                    if os.name == "nt"
                    else mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                )
        except (OSError, ValueError):  # missing, or empty (mmap refuses a 0-byte file)
            return None
        try:
            if buf[: len(MAGIC)] != MAGIC:
                return None
            end = buf.find(b"\n", len(MAGIC))
            header = json.loads(buf[len(MAGIC) : end])
            if not isinstance(header, dict) or header.get("limits") != limits:
                return None
            cache = cls(buf, header, end + 1)
            last = max((o + n for o, n in cache._sections.values()), default=0)
            if cache._body + last != len(buf):
                return None  # truncated or grown: not the file the header describes
            return cache
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def section(self, name: str) -> bytes:
        offset, length = self._sections[name]
        start = self._body + offset
        return self.buf[start : start + length]

    def column(self, name: str) -> list[Any]:
        """A scalar column (`ref`, `commit` or one of COLUMNS), one value per listed ref."""
        col = self._columns.get(name)
        if col is None:
            col = self._columns[name] = json.loads(self.section("c:" + name))
        return col

    def keys(self, kind: str) -> list[str]:
        """The params/metrics/tags keys at least one listed run has."""
        return list(self.header["keys"][kind])

    def keyed(self, kind: str, key: str) -> tuple[list[int] | None, list[Any]]:
        """(indexes of the runs that have *key*, None: all of them; their values)."""
        name = f"{kind[0]}:{key}"
        found = self._keyed.get(name)
        if found is None:
            idx, values = json.loads(self.section(name))
            found = self._keyed[name] = (idx, values)
        return found

    def dense(self, kind: str, key: str, missing: Any = MISSING) -> list[Any]:
        """One value per listed ref, *missing* for a run without *key*."""
        idx, values = self.keyed(kind, key)
        if idx is None:
            return values
        col = [missing] * self.n
        for i, v in zip(idx, values, strict=True):
            col[i] = v
        return col

    def offsets(self) -> array[int]:
        if self._offsets is None:
            self._offsets = array("Q")
            self._offsets.frombytes(self.section("offsets"))
            if sys.byteorder != "little":
                self._offsets.byteswap()
        return self._offsets

    def row_bytes(self, i: int) -> bytes:
        """The JSON of listed ref *i*'s row."""
        offs = self.offsets()
        start = self._body + self._sections["rows"][0]
        return self.buf[start + offs[i] : start + offs[i + 1] - 1]

    def row(self, i: int) -> dict[str, Any]:
        row: dict[str, Any] = json.loads(self.row_bytes(i))
        return row

    def all_rows(self) -> list[dict[str, Any]]:
        """Every row, decoded in one pass (the rows section is one JSON array)."""
        rows: list[dict[str, Any]] = json.loads(self.section("rows"))
        return rows

    def loose(self) -> dict[str, Any]:
        """The loose refs' stat cache ({ref: [[mtime_ns, size, inode], sha]})."""
        loose: dict[str, Any] = json.loads(self.section("loose"))
        return loose

    def close(self) -> None:
        if isinstance(self.buf, mmap.mmap):
            self.buf.close()


def _sparse(col: Sequence[Any]) -> list[Any] | None:
    """`[null, values]` or `[indexes, values]` of a dense column; None when no run has it."""
    present = [i for i, v in enumerate(col) if v is not MISSING]
    if not present:
        return None
    if len(present) == len(col):
        return [None, col]
    return [present, [col[i] for i in present]]


Chunk = bytes | memoryview


def encode(
    header: dict[str, Any],
    refs: list[str],
    commits: list[str],
    sources: list[int | dict[str, Any]],
    old: CacheFile | None,
    loose: dict[str, Any],
) -> list[Chunk]:
    """The bytes of a cache listing *refs* (in listing order) at *commits*, as chunks
    to write one after the other.

    Each of *sources* is a row: an int is the index of a row in *old*, whose
    encoded bytes and column values are copied without decoding the row (runs of
    consecutive rows as one slice of *old*'s file); a dict is a row read now.
    """
    sections: list[tuple[str, list[Chunk]]] = [
        ("c:ref", [_dumps(refs).encode()]),
        ("c:commit", [_dumps(commits).encode()]),
    ]
    reused = old if old is not None and any(isinstance(s, int) for s in sources) else None
    for name in COLUMNS:
        # decoded one at a time and dropped: a column of 100,000 runs is ~10 MB of objects
        before = json.loads(reused.section("c:" + name)) if reused is not None else []
        values = [before[s] if isinstance(s, int) else s.get(name) for s in sources]
        sections.append(("c:" + name, [_dumps(values).encode()]))
        del before, values
    keys: dict[str, list[str]] = {}
    for kind in KINDS:
        names: dict[str, None] = {}
        if reused is not None:
            names.update(dict.fromkeys(reused.keys(kind)))
        for row in sources:
            if isinstance(row, dict):
                names.update(dict.fromkeys(row.get(kind) or {}))
        kept = []
        for key in names:
            known = reused is not None and key in reused.header["keys"][kind]
            known_col = reused.dense(kind, key) if reused is not None and known else None
            col = [
                (MISSING if known_col is None else known_col[s])
                if isinstance(s, int)
                else (s.get(kind) or {}).get(key, MISSING)
                for s in sources
            ]
            sparse = _sparse(col)
            if sparse is not None:
                kept.append(key)
                sections.append((f"{kind[0]}:{key}", [_dumps(sparse).encode()]))
        keys[kind] = kept
    rows, offsets = _rows(sources, reused)
    sections.append(("rows", rows))
    if sys.byteorder != "little":
        offsets.byteswap()
    sections.append(("offsets", [offsets.tobytes()]))
    sections.append(("loose", [_dumps(loose).encode()]))
    layout: dict[str, list[int]] = {}
    at = 0
    for name, chunks in sections:
        size = sum(len(c) for c in chunks)
        layout[name] = [at, size]
        at += size
    header = {**header, "n": len(refs), "keys": keys, "sections": layout}
    out: list[Chunk] = [MAGIC + _dumps(header).encode() + b"\n"]
    for _name, chunks in sections:
        out.extend(chunks)
    return out


def _rows(
    sources: list[int | dict[str, Any]], old: CacheFile | None
) -> tuple[list[Chunk], array[int]]:
    """The rows section (one JSON array) as chunks, and each row's offset in it."""
    chunks: list[Chunk] = [b"["]
    offsets = array("Q", [1])
    at = 1
    k = 0
    view = memoryview(old.buf) if old is not None else None
    old_offsets = old.offsets() if old is not None else array("Q")
    base = old._body + old._sections["rows"][0] if old is not None else 0
    while k < len(sources):
        if k:
            chunks.append(b",")
        s = sources[k]
        if isinstance(s, int) and view is not None:
            last = k
            while last + 1 < len(sources):
                following = sources[last + 1]
                if not isinstance(following, int) or following != s + (last + 1 - k):
                    break
                last += 1
            first_row, last_row = s, s + (last - k)
            start = old_offsets[first_row]
            chunks.append(view[base + start : base + old_offsets[last_row + 1] - 1])
            for t in range(first_row + 1, last_row + 2):
                offsets.append(at + old_offsets[t] - start)
            at += old_offsets[last_row + 1] - start
            k = last + 1
            continue
        part = _dumps(s).encode()
        chunks.append(part)
        at += len(part) + 1
        offsets.append(at)
        k += 1
    chunks.append(b"]")
    return chunks, offsets


def write(path: str, chunks: Iterable[Chunk]) -> bool:
    """Replace the cache at *path* with *chunks* atomically; False when it cannot be written
    (a read-only repository still lists its runs, just without the cache)."""
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, exist_ok=True)
        import tempfile  # (with shutil, bz2, lzma: ~2 ms a warm listing need not pay)

        fd, tmp = tempfile.mkstemp(prefix=".index-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


def rewrap(old: CacheFile, header: dict[str, Any], loose: dict[str, Any]) -> list[Chunk]:
    """The chunks of *old* under a new *header* and loose-ref stat cache, its rows as they
    were: when only what proves the refs unchanged has moved on."""
    at = old._sections["loose"][0]  # the last section
    tail = _dumps(loose).encode()
    layout = {**old._sections, "loose": [at, len(tail)]}
    head = MAGIC + _dumps({**header, "sections": layout}).encode() + b"\n"
    return [head, memoryview(old.buf)[old._body : old._body + at], tail]


def from_bytes(data: bytes) -> CacheFile:
    """A cache built in memory (the joined chunks of `encode`), read as if from its file."""
    end = data.find(b"\n", len(MAGIC))
    return CacheFile(data, json.loads(data[len(MAGIC) : end]), end + 1)


def ordered(keys: Iterable[tuple[Any, str]]) -> list[int]:
    """The listing order of runs given (start time, id) per listed ref (refs sorted by
    name): newest first, as `select` sorts, ties in ref-name order."""
    items = list(keys)
    return sorted(range(len(items)), key=lambda i: (items[i][0] or 0, items[i][1]), reverse=True)
