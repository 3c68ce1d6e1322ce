"""Format v1: the files of a run's tree and the commit messages that carry them.

    run.json        metadata: id, name, experiment, status, times, command, host, tags...
    params.json     the params, JSON types preserved
    summary.json    per metric: count, last value and step, min, max (for fast listing)
    env.json        the environment the run ran in (redacted)
    notes.md        free text notes (present only when there are notes)
    output.log      captured stdout/stderr of `gitxp run` (tail, capped)
    metrics/part-NNNNNN.parquet   metric points, one part per checkpoint
    artifacts/...   small artifacts; artifacts.json lists all, with pointers for large ones

See docs/format.md for the full description; this module is the only place
that knows these names.
"""

from __future__ import annotations

import json
from typing import Any

from .._text import escape_undecodable, escape_undecodable_in

FORMAT_VERSION = 1
RUN_FILE = "run.json"
PARAMS_FILE = "params.json"
SUMMARY_FILE = "summary.json"
ENV_FILE = "env.json"
NOTES_FILE = "notes.md"
OUTPUT_FILE = "output.log"
ARTIFACTS_FILE = "artifacts.json"
ARTIFACTS_DIR = "artifacts/"
METRICS_DIR = "metrics/"

# CRASHED and CORRUPT are never stored: readers report them (a dead process; files that
# fail the schema, see gitxp.format.schema)
STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED", "CRASHED", "CORRUPT")
TRAILER_RUN = "Gitxp-Run"
TRAILER_STATUS = "Gitxp-Status"


def dumps(value: Any, depth: int = 1) -> bytes:
    """JSON as gitxp stores it: UTF-8, strict (no NaN), laid out for `git show`.

    Objects and arrays in the first *depth* levels get one member per line;
    deeper ones stay on their member's line (a summary is one metric per
    line). Compared with `indent=2` this is the C encoder's speed and ~5%
    fewer bytes in the object store, and no less readable.
    Text that is not valid UTF-8 (a lone surrogate from undecodable bytes in a
    command line or a path) is stored escaped rather than failing the commit.
    """
    try:
        return (_layout(value, 0, depth) + "\n").encode()
    except UnicodeEncodeError:
        return (_layout(escape_undecodable_in(value), 0, depth) + "\n").encode()


# one encoder for every member: json.dumps(..., ensure_ascii=False) builds a new one per call
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def _layout(value: Any, level: int, depth: int) -> str:
    if level < depth and value and isinstance(value, (dict, list)):
        pad = "  " * (level + 1)
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                return _encode(value)
            members = [
                f"{pad}{_encode(k)}: {_layout(v, level + 1, depth)}" for k, v in value.items()
            ]
            return "{\n" + ",\n".join(members) + "\n" + "  " * level + "}"
        members = [pad + _layout(v, level + 1, depth) for v in value]
        return "[\n" + ",\n".join(members) + "\n" + "  " * level + "]"
    return _encode(value)


_last_env: tuple[str, bytes] = ("", b"")


def dumps_env(env: dict[str, Any]) -> bytes:
    """env.json's bytes; the same environment (every run of a process) is laid out once."""
    global _last_env
    key = _encode(env)
    if key != _last_env[0]:
        _last_env = (key, dumps(env, depth=2))
    return _last_env[1]


def loads(data: bytes) -> Any:
    return json.loads(data)


def _fmt_value(value: Any) -> str:
    """A param, metric or tag value as a run's commit message writes it (docs/format.md).

    This is part of the stored format, so it is not the people-facing
    `gitxp.present.output.fmt_value` and does not follow it: every commit
    already written cuts values at 40 characters with "...", and writes null,
    booleans, lists and objects as JSON; `git log` of old and new runs must
    read alike, whatever the CLI's tables do.
    """
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:37] + "..."
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _listing(values: dict[str, Any], limit: int = 12) -> str:
    """The `params:`/`metrics:`/`tags:` line of a commit message: the first *limit* values."""
    items = [f"{k}={_fmt_value(v)}" for k, v in list(values.items())[:limit]]
    if len(values) > limit:
        items.append(f"... ({len(values) - limit} more)")
    return ", ".join(items)


def commit_message(
    kind: str,
    meta: dict[str, Any],
    params: dict[str, Any],
    summary: dict[str, dict[str, Any]],
    detail: str = "",
) -> str:
    """A `git log`-readable message for a run commit of *kind* start|checkpoint|end|edit."""
    name = meta.get("name") or meta["id"]
    exp = meta.get("experiment") or "default"
    status = meta.get("status", "RUNNING")
    if kind == "start":
        subject = f"gitxp: start run {name} ({exp})"
    elif kind == "checkpoint":
        subject = f"gitxp: checkpoint {name} ({exp}){': ' + detail if detail else ''}"
    elif kind == "edit":
        subject = f"gitxp: {detail} on run {name}"
    else:
        duration = ""
        if meta.get("end_time") and meta.get("start_time"):
            duration = f" in {(meta['end_time'] - meta['start_time']) / 1000:.1f}s"
        subject = f"gitxp: run {name} {status}{duration} ({exp})"
    lines = [subject, ""]
    code = meta.get("code_commit")
    if code:
        suffix = " (snapshot of uncommitted changes)" if meta.get("dirty") else ""
        lines.append(f"code: {code[:12]}{suffix}")
    if params:
        lines.append("params: " + _listing(params))
    if summary:
        last = {k: s.get("last") for k, s in summary.items()}
        lines.append("metrics: " + _listing(last))
    if meta.get("tags"):
        lines.append("tags: " + _listing(meta["tags"]))
    if meta.get("error"):
        lines.append(f"error: {meta['error']}")
    lines += ["", f"{TRAILER_RUN}: {meta['id']}", f"{TRAILER_STATUS}: {status}"]
    message = "\n".join(lines) + "\n"
    try:
        message.encode()
    except UnicodeEncodeError:  # an error text quoting a path that is not UTF-8
        return escape_undecodable(message)
    return message
