"""Reading git objects within a size limit: what an object declares is checked before it is inflated.

A run can come from anyone who can push, and a few megabytes of zlib can
inflate to gigabytes. A reader that knows how large a file may be passes a
`limit`: a loose object's header (`<type> <size>\\0`) is inflated alone
first, and a packed object's size is taken from its pack entry header, or
for a delta from the delta's own header (the size of its result), before
anything else is inflated. An object declaring more than the limit raises
`ObjectTooLargeError`; nothing larger than the limit was allocated.

A packed delta rests on a base that is inflated too, usually an object of
similar size; every base of the chain may declare at most `base_limit(limit)`
(four times the limit, at least 64 MiB). dulwich inflates a pack entry no
further than its header declares and applies a delta no further than the
size it declares, so the checked sizes bound what the read allocates.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

from ..errors import GitxpError, ObjectTooLargeError

HEADER_MAX = 32  # "commit 18446744073709551615\0" is 28 bytes
STRUCTURE_LIMIT = 256 << 20  # trees and commits: a tree of 256 MiB lists millions of files
MAX_CHAIN = 10_000  # git's deltas chain 50 deep by default; more is a cycle or hostile
_ENTRY_PEEK = 4096  # bytes of a pack entry read to decode its headers
_OFS_DELTA, _REF_DELTA = 6, 7


def base_limit(limit: int) -> int:
    """What each delta base of an object read under *limit* may declare."""
    return max(4 * limit, 64 << 20)


_MAX_DEFLATE_RATIO = 1100  # deflate's worst case is 1032 bytes out per byte in


def _corrupt(sha: str, why: str = "") -> GitxpError:
    return GitxpError(f"object {sha} is corrupt{f' ({why})' if why else ''}; run `git fsck`")


def inflate_loose(raw: bytes, sha: str, limit: int | None) -> tuple[bytes, bytes]:
    """(type, body) of the loose object *sha* whose file holds *raw*.

    Over *limit* (when not None), raise `ObjectTooLargeError` having inflated
    only the header.
    """
    try:
        # deflate expands at most ~1032:1, so a file this small cannot inflate past
        # *limit*: one call, as for trusted reads (nearly every run file is this small)
        if limit is None or len(raw) * _MAX_DEFLATE_RATIO <= limit:
            data = zlib.decompress(raw)
            header, sep, body = data.partition(b"\0")
            kind, _, size_text = header.partition(b" ")
            if not sep or not size_text.isdigit() or int(size_text) != len(body):
                raise _corrupt(sha)
            return kind, body
        inflater = zlib.decompressobj()
        head = inflater.decompress(raw, HEADER_MAX)
        end = head.find(b"\0")
        kind, _, size_text = head[: max(end, 0)].partition(b" ")
        if end < 0 or not size_text.isdigit():
            raise _corrupt(sha)
        size = int(size_text)
        if size > limit:
            raise ObjectTooLargeError(sha, size, limit)
        body = head[end + 1 :]
        if inflater.unconsumed_tail:
            # at most one byte more than declared, so an object lying about its size is caught
            body += inflater.decompress(inflater.unconsumed_tail, size - len(body) + 1)
        if inflater.unconsumed_tail or not inflater.eof or len(body) != size:
            raise _corrupt(sha)
        return kind, body
    except zlib.error as exc:
        raise _corrupt(sha, str(exc)) from None


def _peek(pack: Any, offset: int) -> bytes:
    """The first bytes of the pack entry at *offset*, without inflating anything."""
    data = pack.data
    buffer = getattr(data, "_buffer", None)  # dulwich's mapping of the pack file
    if buffer is not None:
        return bytes(buffer()[offset : offset + _ENTRY_PEEK])
    with open(data.path, "rb") as f:  # pragma: no cover - other dulwich versions
        f.seek(offset)
        return f.read(_ENTRY_PEEK)


def _varint(data: bytes, pos: int, sha: str) -> tuple[int, int]:
    """A little-endian base-128 number at *pos*; return it and the position after it."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise _corrupt(sha, "truncated size")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _entry(data: bytes, sha: str) -> tuple[int, int, int, int | bytes | None]:
    """A pack entry's (type, inflated size, start of its zlib data, delta base)."""
    if not data:
        raise _corrupt(sha, "pack entry out of range")
    # type in bits 4-6 of the first byte, size in its low 4 bits, then base-128 groups
    kind, size, pos = (data[0] >> 4) & 7, data[0] & 0x0F, 1
    if data[0] & 0x80:
        rest, pos = _varint(data, 1, sha)
        size |= rest << 4
    base: int | bytes | None = None
    if kind == _OFS_DELTA:
        if pos >= len(data):
            raise _corrupt(sha, "truncated pack entry")
        byte = data[pos]
        pos += 1
        base = byte & 0x7F
        while byte & 0x80:
            if pos >= len(data):
                raise _corrupt(sha, "truncated pack entry")
            byte = data[pos]
            pos += 1
            base = ((base + 1) << 7) | (byte & 0x7F)
    elif kind == _REF_DELTA:
        width = len(sha) // 2  # the base's id: 20 bytes (SHA-1) or 32 (SHA-256)
        base = data[pos : pos + width]
        pos += width
    elif kind not in (1, 2, 3, 4):
        raise _corrupt(sha, f"pack entry of type {kind}")
    return kind, size, pos, base


def _delta_sizes(data: bytes, sha: str) -> tuple[int, int]:
    """(base size, result size) from the header of the zlib-compressed delta *data*."""
    try:
        head = zlib.decompressobj().decompress(data, 20)
    except zlib.error as exc:
        raise _corrupt(sha, str(exc)) from None
    source, pos = _varint(head, 0, sha)
    return source, _varint(head, pos, sha)[0]


def _check_chain(store: Any, pack: Any, offset: int, sha: str, limit: int) -> None:
    """Refuse the packed object at *offset* when it, or a base it needs, is over its limit."""
    want, bases = limit, base_limit(limit)
    for _ in range(MAX_CHAIN):
        data = _peek(pack, offset)
        _, size, pos, base = _entry(data, sha)
        if base is None:
            if size > want:
                raise ObjectTooLargeError(sha, size, want)
            return
        if size > bases:  # the delta itself
            raise ObjectTooLargeError(sha, size, bases)
        source, result = _delta_sizes(data[pos:], sha)
        if result > want:
            raise ObjectTooLargeError(sha, result, want)
        if source > bases:
            raise ObjectTooLargeError(sha, source, bases)
        want = bases
        if isinstance(base, int):
            if not 0 < base < offset:
                raise _corrupt(sha, "delta base out of range")
            offset -= base
            continue
        try:
            offset = pack.index.object_offset(base)
        except KeyError:  # a base outside this pack
            check_size(store, base.hex(), want)
            return
    raise _corrupt(sha, "delta chain too long")


def _packed(store: Any, sha: str) -> tuple[Any, int] | None:
    """The pack of dulwich *store* holding object *sha* and its offset there (None: no pack)."""
    raw = bytes.fromhex(sha)
    lookup = getattr(store, "_lookup_in_packs", None)
    if lookup is not None:
        # the packs already open first, the pack directory rescanned only on a miss:
        # `store.packs` lists the directory on every call (five times per run listed)
        try:
            return lookup(lambda pack: (pack, pack.index.object_offset(raw)))  # type: ignore[no-any-return]
        except KeyError:
            return None
    for pack in getattr(store, "packs", ()):
        try:
            return pack, pack.index.object_offset(raw)
        except KeyError:
            continue
    return None


def _loose_size(store: Any, sha: str) -> int | None:
    """The size loose object *sha* of dulwich *store* declares in its header (None: not
    stored loose there); only the header is inflated."""
    root = getattr(store, "path", None)
    path = os.path.join(os.fspath(root), sha[:2], sha[2:]) if root else ""
    try:
        with open(path, "rb") as f:
            head = zlib.decompressobj().decompress(f.read(_ENTRY_PEEK), HEADER_MAX)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except zlib.error as exc:
        raise _corrupt(sha, str(exc)) from None
    declared = head.partition(b"\0")[0].partition(b" ")[2]
    if not declared.isdigit():
        raise _corrupt(sha)
    return int(declared)


def check_size(store: Any, sha: str, limit: int) -> bool:
    """Raise `ObjectTooLargeError` when object *sha* of dulwich *store* declares more than
    *limit* bytes (or needs a delta base over `base_limit`); False when it is not there."""
    packed = _packed(store, sha)
    if packed is not None:
        _check_chain(store, packed[0], packed[1], sha, limit)
        return True
    size = _loose_size(store, sha)
    if size is not None:
        if size > limit:
            raise ObjectTooLargeError(sha, size, limit)
        return True
    return any(check_size(alt, sha, limit) for alt in getattr(store, "alternates", ()))


def read_stored(store: Any, sha: str, limit: int | None) -> tuple[int, bytes]:
    """(type number, body) of object *sha* from dulwich *store* (packs, loose, alternates),
    checked against *limit* before dulwich inflates it. KeyError when it is missing."""
    if limit is not None and len(sha) in (40, 64):  # SHA-1 or SHA-256 ids
        check_size(store, sha, limit)
    type_num, body = store.get_raw(sha.encode())
    return type_num, body


def read_in_pack(store: Any, pack: Any, sha: str, limit: int) -> tuple[int, bytes] | None:
    """(type number, body) of object *sha* when dulwich *pack* (of *store*) holds it, else
    None; checked against *limit* before it is inflated, as `read_stored` does.

    For readers that know which pack an object arrived in (a fetch's
    completeness check): no probe of the loose directory or of other packs.
    """
    try:
        offset = pack.index.object_offset(bytes.fromhex(sha))
    except (KeyError, ValueError):
        return None
    _check_chain(store, pack, offset, sha, limit)
    obj_type, obj = pack.data.get_object_at(offset)
    type_num, chunks = pack.resolve_object(offset, obj_type, obj)
    return type_num, b"".join(chunks)


def stored_size(store: Any, sha: str) -> int:
    """The size object *sha* of dulwich *store* declares, read from its header (for a
    packed delta, the size of its result): nothing is inflated. KeyError when missing."""
    packed = _packed(store, sha)
    if packed is not None:
        data = _peek(packed[0], packed[1])
        _, size, pos, base = _entry(data, sha)
        return size if base is None else _delta_sizes(data[pos:], sha)[1]
    declared = _loose_size(store, sha)
    if declared is not None:
        return declared
    for alternate in getattr(store, "alternates", ()):
        try:
            return stored_size(alternate, sha)
        except KeyError:
            continue
    raise KeyError(sha)


def object_size(git: Any, sha: str) -> int:
    """The size of object *sha* of GitRepo *git*, without inflating it (see `stored_size`)."""
    return stored_size(git.dulwich.object_store, sha)
