"""The shipped listing index as pure code: its ref, its tree layout, its rows and their checks.

`gitxp push` writes the listing rows of the runs it pushes into the tree of
one ref, `refs/gitxp/index/v1`, so a fresh clone lists its runs from a few
hundred blobs instead of reading five objects per run. The tree holds
`index.json` (``{"format": 1}``) and `shards/<xx>.jsonl`, where ``xx`` is
the last two characters of a run id (its random tail, so shards fill evenly
whatever the times); each shard is JSON lines, one row per line, and every
row names the run commit it describes (`commit`). See docs/format.md,
"The shipped listing index".

A shard comes from whoever could push to the remote: it is parsed within
`schema.max_json_bytes()` and every row passes the checks a row read from
the run's own files passes (`schema.META_FIELDS`, `schema.check_params`),
or the whole shard is refused (`schema.Invalid`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from . import schema
from .ids import RUN_ID_RE
from .values import from_json_float, json_float

INDEX_PREFIX = "refs/gitxp/index/"
INDEX_REF = INDEX_PREFIX + "v1"
INDEX_FORMAT = 1
MANIFEST_FILE = "index.json"
SHARDS_DIR = "shards"
SHARD_SUFFIX = ".jsonl"
TRAILER_INDEX = "Gitxp-Index"
_SHARD_NAME = re.compile(r"[0-9a-hjkmnp-tv-z]{2}\.jsonl")
_HEX_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

# run.json members a row carries, checked as run.json's own
_META_KEYS = ("id", "status", *schema.LISTED_META, "tags")
ROW_KEYS = (*_META_KEYS, "dirty", "supervised", "commit", "params", "metrics", "notes")


def shard_of(run_id: str) -> str:
    """The shard file (``xx.jsonl``) holding the rows of run *run_id*."""
    return run_id[-2:] + SHARD_SUFFIX


def is_shard_name(name: str) -> bool:
    """Whether *name* is a shard file name this format writes (others are ignored)."""
    return _SHARD_NAME.fullmatch(name) is not None


def manifest() -> bytes:
    """The content of `index.json`."""
    return json.dumps({"format": INDEX_FORMAT}).encode() + b"\n"


def check_manifest(data: bytes) -> int:
    """The format `index.json` declares; `schema.Invalid` when it is not one."""
    value = schema.load_json(data, MANIFEST_FILE)
    version = value.get("format") if isinstance(value, dict) else None
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise schema.Invalid(f"{MANIFEST_FILE} declares no format number")
    return version


def encode_row(row: dict[str, Any]) -> dict[str, Any]:
    """A listing row as shipped: the keys of ROW_KEYS (and `format`), metrics JSON-safe."""
    out = {k: row.get(k) for k in ROW_KEYS}
    out["dirty"] = bool(out["dirty"])
    out["supervised"] = bool(out["supervised"])
    out["notes"] = bool(out["notes"])
    out["params"] = out["params"] or {}
    out["tags"] = out["tags"] or {}
    out["metrics"] = {
        k: None if v is None else json_float(v) for k, v in (out["metrics"] or {}).items()
    }
    if row.get("format") is not None:
        out["format"] = row["format"]
    return out


def encode_shard(rows: Iterable[dict[str, Any]]) -> bytes:
    """One shard's bytes: the rows (as `encode_row` gives them), one per line, by commit id."""
    lines = [
        json.dumps(r, sort_keys=True, separators=(",", ":"), allow_nan=False)
        for r in sorted(rows, key=lambda r: str(r["commit"]))
    ]
    return "".join(line + "\n" for line in lines).encode()


def _metric(v: Any) -> bool:
    if v is None or v in schema.NON_FINITE:
        return True
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# members that are a string or null (the bulk of a row): one type test each
_TEXT_KEYS = tuple(k for k in _META_KEYS if schema.META_FIELDS[k] is schema.META_FIELDS["name"])
_OTHER_KEYS = tuple(k for k in _META_KEYS if k not in _TEXT_KEYS)
_FLAGS = ("dirty", "supervised", "notes")
_KEY_SET = frozenset((*ROW_KEYS, "format"))


def _problem(value: dict[str, Any]) -> str | None:
    """The first member of a shipped row that fails its check, or None."""
    for k in _TEXT_KEYS:
        v = value.get(k)
        if v is not None and type(v) is not str:
            return k
    for k in _OTHER_KEYS:  # all optional but the id and status, checked on their own
        v = value.get(k)
        if v is not None and not schema.META_FIELDS[k](v):
            return k
    if value.get("status") not in schema.STORED_STATUSES:
        return "status"
    commit = value.get("commit")
    if not isinstance(commit, str) or not _HEX_ID.fullmatch(commit):
        return "commit"
    for k in _FLAGS:
        if type(value.get(k)) is not bool:
            return k
    metrics = value.get("metrics")
    if not isinstance(metrics, dict) or not all(map(_metric, metrics.values())):
        return "metrics"
    version = value.get("format")
    if version is not None and (type(version) is not int or version < 1):
        return "format"
    return None


def check_row(value: Any) -> dict[str, Any]:
    """A shipped row as the listing uses it (metrics as floats); `schema.Invalid` if it
    does not pass the checks a row read from the run's files passes (run.json's members
    as `schema.META_FIELDS` checks them, params as `schema.check_params` does)."""
    if not isinstance(value, dict):
        raise schema.Invalid("a row is not an object")
    if not schema.META_FIELDS["id"](value.get("id")):
        raise schema.Invalid("a row lacks a run id")
    bad = _problem(value)
    if bad is not None:
        raise schema.Invalid(f"the row of run {value['id'][:40]!r} has an ill-typed {bad}")
    row = value if _KEY_SET.issuperset(value) else {k: value[k] for k in _KEY_SET if k in value}
    for k in ROW_KEYS:
        if k not in row:
            row[k] = None
    schema.check_params(row["params"])
    row["tags"] = row["tags"] or {}
    metrics = row["metrics"]
    if any(type(v) is str for v in metrics.values()):
        row["metrics"] = {k: from_json_float(v) for k, v in metrics.items()}
    return row


def decode_shard(data: bytes, name: str) -> dict[str, dict[str, Any]]:
    """{commit id: row} of shard *name*; `schema.Invalid` (the whole shard) on any problem.

    Whatever a line holds, every value parsed from the shard must be a row that
    passes `check_row`, in the shard its run id names.
    """
    what = f"{SHARDS_DIR}/{name}"
    values = schema.load_json_lines(data, what)
    rows: dict[str, dict[str, Any]] = {}
    for value in values:
        row = check_row(value)
        if shard_of(row["id"]) != name or not RUN_ID_RE.match(row["id"]):
            raise schema.Invalid(f"{what} holds run {row['id'][:40]!r}, which is not its shard's")
        rows[row["commit"]] = row
    return rows


def same_row(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two listing rows say the same thing (as shipped: NaN equals NaN)."""
    return encode_row(a) == encode_row(b)
