"""What a run's files must look like before gitxp uses them, and how much a read may allocate.

A run can come from anyone who can push to a shared remote, so nothing read
from a run tree is trusted. Every JSON file is parsed under a size and a
nesting bound, then checked against the format-1 schema (docs/format.md,
"Validation and limits"). A problem is reported as an `Invalid` carrying a
one-line reason; readers turn it into a CORRUPT listing row or a
`CorruptRunError` for that one run, never a failure of the whole listing.

The bounds come from the environment, so a site with unusually large runs
can raise them: `GITXP_MAX_JSON_BYTES` (one JSON file) and
`GITXP_MAX_DECODE_BYTES` (what one metric read may decode, checked against
the Parquet footers before decoding).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any, TypeGuard

from ..errors import GitxpError, InvalidValueError

MAX_JSON_DEPTH = 64  # gitxp writes at most ~22 levels (params nest 20 deep at most)
DEFAULT_MAX_JSON_BYTES = 16 << 20  # a summary of 10,000 metric keys is ~1.5 MB
DEFAULT_MAX_DECODE_BYTES = 4 << 30  # 1e8 points decode to ~3 GB
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: what datetime64[ms] shows sanely
STORED_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
NON_FINITE = ("NaN", "Infinity", "-Infinity")


class Invalid(GitxpError, ValueError):
    """A file of a run that does not match the schema; the message is the one-line reason.

    Readers turn it into a `CorruptRunError` naming the run; should one escape,
    it is still a GitxpError with a one-line message.
    """


def _env_bytes(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    scale = units.get(text[-1:].upper(), 1)
    try:
        value = float(text[:-1] if scale > 1 else text) * scale
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value <= 0:
        raise InvalidValueError(name, f"{text!r}: give a number of bytes, e.g. 64M or 8G")
    return int(value)


def max_json_bytes() -> int:
    """The largest JSON file of a run that is parsed (`GITXP_MAX_JSON_BYTES`, default 16M)."""
    return _env_bytes("GITXP_MAX_JSON_BYTES", DEFAULT_MAX_JSON_BYTES)


def max_decode_bytes() -> int:
    """What one metric read may decode (`GITXP_MAX_DECODE_BYTES`, default 4G)."""
    return _env_bytes("GITXP_MAX_DECODE_BYTES", DEFAULT_MAX_DECODE_BYTES)


def limits_key() -> list[int]:
    """The limits a cached verdict was reached under (a change invalidates the cache)."""
    return [max_json_bytes(), MAX_JSON_DEPTH]


# -- JSON -------------------------------------------------------------------------
# A string, closed or running to the end of the text: always matches from a quote,
# so stripping strings is one linear pass even over hostile input.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = [0] * 256
_DELTA[ord("[")] = _DELTA[ord("{")] = 1
_DELTA[ord("]")] = _DELTA[ord("}")] = -1


def _depth(text: str) -> int:
    """How deep *text* nests, counted without parsing (so without recursing)."""
    brackets = _STRING.sub("", text).encode().translate(None, _NOT_BRACKET)
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0)


def _reject_constant(name: str) -> Any:
    raise Invalid(f"{name} is not JSON (gitxp writes non-finite numbers as strings)")


# one decoder for every read: json.loads with an option builds a new one per call
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _bounded_text(data: bytes, what: str) -> str:
    """*data* (the file *what*) as text, when within `max_json_bytes()` and UTF-8."""
    limit = max_json_bytes()
    if len(data) > limit:
        raise Invalid(
            f"{what} is {len(data):,} bytes, over the {limit:,}-byte limit (GITXP_MAX_JSON_BYTES)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{what} is not UTF-8 ({exc.reason} at byte {exc.start})") from None


def load_json(data: bytes, what: str) -> Any:
    """Parse *data*, the file *what* of a run, within the size and nesting bounds."""
    text = _bounded_text(data, what)
    # cheap test first: fewer opening brackets than the limit cannot nest deeper than it
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise Invalid(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return _DECODER.decode(text)
    except Invalid as exc:
        raise Invalid(f"{what}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"{what} is invalid JSON ({exc})") from None


def load_json_lines(data: bytes, what: str) -> list[Any]:
    """JSON lines (one value per line, blank lines skipped) within the bounds of `load_json`:
    the whole under `max_json_bytes()`, each line nesting at most MAX_JSON_DEPTH deep.

    The lines are parsed as one array, in one call of the decoder.
    """
    text = _bounded_text(data, what)
    lines = [line for line in text.split("\n") if line.strip()]
    for number, line in enumerate(lines, 1):
        if line.count("[") + line.count("{") > MAX_JSON_DEPTH and _depth(line) > MAX_JSON_DEPTH:
            raise Invalid(f"{what}: line {number} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        values = _DECODER.decode("[" + ",".join(lines) + "]")
    except Invalid as exc:
        raise Invalid(f"{what}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"{what} is not JSON lines ({exc})") from None
    return values  # type: ignore[no-any-return]


# -- field checks ----------------------------------------------------------------------
def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _opt(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _time(v: Any) -> bool:
    return _int(v) and 0 <= v <= MAX_TIME_MS


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _fields(spec: dict[str, Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """An object whose listed members, where present, pass their checks (others are free)."""
    return lambda v: isinstance(v, dict) and all(check(v[k]) for k, check in spec.items() if k in v)


_COUNT = _opt(lambda v: _int(v) and v >= 0)
_SECONDS = _opt(lambda v: _number(v) and v >= 0)
_OPT_STR = _opt(_str)
# run.json: the documented keys and the type each must have; unknown keys are ignored
# The run.json members a listing row carries as they are, beside `id`, `status` and
# `tags`: one list for the row read from a run's files (`store/record.py`), the row of a
# CORRUPT run and the rows of the shipped listing index (`format/listing_index.py`).
LISTED_META = (
    "name",
    "experiment",
    "start_time",
    "end_time",
    "heartbeat_time",
    "checkpoint_seconds",
    "code_commit",
    "head",
    "user",
    "host",
    "pid",
    "parent",
    "source",
)

META_FIELDS: dict[str, Callable[[Any], bool]] = {
    "format": lambda v: _int(v) and v >= 1,
    "id": lambda v: isinstance(v, str) and 0 < len(v) <= 200,
    "name": _OPT_STR,
    "experiment": _OPT_STR,
    "status": lambda v: v in STORED_STATUSES,
    "start_time": _opt(_time),
    "end_time": _opt(_time),
    "heartbeat_time": _opt(_time),
    "checkpoint_seconds": _SECONDS,
    "system_metrics_seconds": _SECONDS,
    "wall_time": _SECONDS,
    "user": _OPT_STR,
    "email": _OPT_STR,
    "host": _OPT_STR,
    "pid": _opt(lambda v: _int(v) and 0 < v < 2**31),
    "code_commit": _OPT_STR,
    "head": _OPT_STR,
    "branch": _OPT_STR,
    "dirty": _opt(lambda v: isinstance(v, bool)),
    "supervised": _opt(lambda v: isinstance(v, bool)),
    "tags": _opt(lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values())),
    "error": _OPT_STR,
    "exit_code": _opt(_int),
    "signal": _opt(lambda v: _str(v) or _int(v)),
    "parent": _OPT_STR,
    "source": _OPT_STR,
    "reproduces": _OPT_STR,
    "command": _opt(
        _fields(
            {
                "argv": _str_list,
                "cwd": _OPT_STR,
                "script": _OPT_STR,
                "source": _OPT_STR,
                "redacted": lambda v: isinstance(v, list) and all(_int(x) for x in v),
            }
        )
    ),
    "snapshot": _opt(
        _fields(
            {
                "changed": _str_list,
                "changed_count": _COUNT,
                "excluded": lambda v: (
                    isinstance(v, list)
                    and all(_fields({"path": _str, "reason": _str})(x) for x in v)
                ),
                "excluded_count": _COUNT,
            }
        )
    ),
    "output": _opt(
        _fields(
            {
                "bytes": _COUNT,
                "stored": _COUNT,
                "truncated": lambda v: isinstance(v, bool),
                "redacted": _COUNT,
            }
        )
    ),
    "reproduction": _opt(lambda v: isinstance(v, dict)),
    "removed": _opt(_fields({"time": _opt(_time), "by": _OPT_STR})),
}


def meta_format(meta: Any) -> int:
    """The format version *meta* (run.json) claims: 1 when absent or unreadable."""
    value = meta.get("format", 1) if isinstance(meta, dict) else 1
    return value if _int(value) and value >= 1 else 1


def check_meta(meta: Any, strict: bool = True) -> dict[str, Any]:
    """run.json as a dict of well-typed members.

    *strict*: the first ill-typed member raises `Invalid`; otherwise such
    members are dropped (how a run of a newer format is read as far as safe).
    """
    if not isinstance(meta, dict):
        raise Invalid(f"run.json is a {type(meta).__name__}, not an object")
    bad = [k for k, check in META_FIELDS.items() if k in meta and not check(meta[k])]
    if bad and strict:
        value = json.dumps(meta[bad[0]], ensure_ascii=False)
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise Invalid(f"run.json has {bad[0]} = {shown}, {_EXPECTED.get(bad[0], 'ill-typed')}")
    if "id" not in meta or "id" in bad:
        raise Invalid("run.json lacks an id")
    return {k: v for k, v in meta.items() if k not in bad}


_EXPECTED = {
    "format": "not a format number",
    "status": "not one of " + ", ".join(STORED_STATUSES),
    "start_time": "not a time in ms since the epoch",
    "end_time": "not a time in ms since the epoch",
    "heartbeat_time": "not a time in ms since the epoch",
    "pid": "not a process id",
    "tags": "not an object of string tags",
}


def _finite(value: Any) -> bool:
    """No float in *value* (a JSON tree of bounded depth) is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def check_params(params: Any) -> dict[str, Any]:
    """params.json: an object whose numbers are finite."""
    if not isinstance(params, dict):
        raise Invalid(f"params.json is a {type(params).__name__}, not an object")
    if not _finite(params):
        raise Invalid("params.json holds a number that is not finite")
    return params


_STAT = _opt(lambda v: _number(v) or v in NON_FINITE)
_SUMMARY_ENTRY = _fields(
    {
        "count": _COUNT,
        "last": _STAT,
        "min": _STAT,
        "max": _STAT,
        "step": _opt(_int),
        "timestamp": _opt(_int),
    }
)


def check_summary(summary: Any, strict: bool = True) -> dict[str, Any]:
    """summary.json: per metric key an object whose statistics are numbers (or null)."""
    if not isinstance(summary, dict):
        raise Invalid(f"summary.json is a {type(summary).__name__}, not an object")
    bad = [k for k, s in summary.items() if not _SUMMARY_ENTRY(s)]
    if bad and strict:
        raise Invalid(f"summary.json has a non-numeric statistic for metric {bad[0]!r}")
    return {k: v for k, v in summary.items() if k not in bad}


_ENV_FIELDS = {
    "python": dict,
    "platform": dict,
    "packages": dict,
    "variables": dict,
    "git": dict,
    "gpus": list,
    "redacted": list,
}


def check_env(env: Any) -> dict[str, Any]:
    """env.json, with any member of the wrong shape dropped (it is only ever displayed)."""
    if not isinstance(env, dict):
        raise Invalid(f"env.json is a {type(env).__name__}, not an object")
    out: dict[str, Any] = {
        k: v for k, v in env.items() if isinstance(v, _ENV_FIELDS.get(k, object))
    }
    if isinstance(out.get("gpus"), list):
        out["gpus"] = [g for g in out["gpus"] if isinstance(g, dict)]
    return out


# -- artifacts.json -----------------------------------------------------------------------
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_relative_path(path: Any) -> TypeGuard[str]:
    """A path that stays inside the directory it is joined to, on every platform: relative,
    no empty, `.`, `..` or `.git` component, no backslash, NUL or control character."""
    if not isinstance(path, str) or not path or len(path) > 4096:
        return False
    if path.startswith("/") or re.match(r"[A-Za-z]:", path) or _CONTROL.search(path):
        return False
    return all(p not in ("", ".", "..") and p.lower() != ".git" for p in path.split("/"))


_MANIFEST_FILE = _fields(
    {
        "size": lambda v: _int(v) and v >= 0,
        "sha256": lambda v: isinstance(v, str) and _SHA256.fullmatch(v) is not None,
        "mode": lambda v: v in ("100644", "100755"),
        "location": lambda v: v in ("tree", "store"),
        "store": _OPT_STR,
        "uri": _OPT_STR,
    }
)
_MANIFEST_ENTRY = _fields(
    {
        "type": lambda v: v in ("file", "directory"),
        "logged_at": _opt(_time),
        "size": lambda v: _int(v) and v >= 0,
        "files": lambda v: isinstance(v, list),
        "skipped": _str_list,
    }
)


def check_manifest(manifest: Any, newest: int) -> dict[str, Any]:
    """artifacts.json as documented (docs/sharing.md, "artifacts.json (format 1)"): every
    artifact and file of the right shape, every path safe. The first problem raises `Invalid`;
    a manifest of a format above *newest* too (this gitxp cannot know what it means)."""
    what = "artifacts.json"
    if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), dict):
        raise Invalid(f"{what} is not an object with an `artifacts` object")
    version = manifest.get("format", 1)
    if not _int(version) or version < 1:
        raise Invalid(f"{what} has format = {version!r}, not a format number")
    if version > newest:
        raise Invalid(f"{what} is in format {version}, newer than this gitxp reads; upgrade gitxp")
    for name, entry in manifest["artifacts"].items():
        if not safe_relative_path(name):
            raise Invalid(f"{what} names an artifact {name[:80]!r}, not a safe relative path")
        if not isinstance(entry, dict) or not _MANIFEST_ENTRY(entry) or "files" not in entry:
            raise Invalid(f"{what}: artifact {name!r} is not a file or directory record")
        for file in entry["files"]:
            path = file.get("path") if isinstance(file, dict) else None
            if not safe_relative_path(path) or not (path == name or path.startswith(name + "/")):
                shown = repr(path)[:80]
                raise Invalid(f"{what}: artifact {name!r} lists the path {shown}, not a safe path")
            missing = [k for k in ("size", "sha256", "location") if k not in file]
            if missing or not _MANIFEST_FILE(file):
                bad = missing or [k for k in file if not _MANIFEST_FILE({k: file[k]})]
                raise Invalid(f"{what}: file {path!r} has a missing or ill-typed {bad[0]}")
    return manifest
