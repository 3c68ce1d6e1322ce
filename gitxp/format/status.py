"""A run's status as readers report it: the liveness rule of docs/format.md.

A stored RUNNING run is CRASHED when its process is gone (same host) or
when it has not committed for `stale_after(checkpoint_seconds)` (any host).
CRASHED and CORRUPT are never stored; they are verdicts readers give.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .ids import host_name

HEARTBEAT_SECONDS = 300.0  # a live run commits at least this often, points or not
CORRUPT = "CORRUPT"  # the status of a run whose files fail the schema (never stored)
_HOST = host_name()


def now_ms() -> int:
    """The current time as stored: milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000


def stale_after(checkpoint_seconds: float) -> float:
    """Seconds without a commit after which a RUNNING run on another host counts as CRASHED."""
    return 2 * max(checkpoint_seconds, HEARTBEAT_SECONDS) + 60


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def effective_status(meta: dict[str, Any], now_ms: int | None = None) -> str:
    """The status readers report: a RUNNING run whose process is gone is CRASHED.

    Same host: the recorded pid no longer exists. Any host: no checkpoint for
    longer than `stale_after(checkpoint_seconds)`.
    """
    status = str(meta.get("status") or "RUNNING")
    if status != "RUNNING":
        return status
    pid = meta.get("pid")
    if meta.get("host") == _HOST and isinstance(pid, int):
        if not _pid_alive(pid):
            return "CRASHED"
        if meta.get("supervised"):
            # `gitxp run` is waiting on its command: while it lives the run is
            # running, even if the command never logs (no heartbeat commits).
            return "RUNNING"
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    heartbeat = meta.get("heartbeat_time") or meta.get("start_time") or 0
    if now - heartbeat > stale_after(float(meta.get("checkpoint_seconds") or 30)) * 1000:
        return "CRASHED"
    return "RUNNING"
