"""How a run is to be started and recorded: `RunOptions`, checked once, when it is made.

`gitxp.start_run(...)` and `gitxp.launch(...)` take these settings as
keywords (their documented signatures) and make a `RunOptions` at once;
everything below them (`Run`, the launcher, sweeps, `gitxp reproduce`)
passes that one object. The defaults that come from the environment are
read here too: `checkpoint_seconds` from `$GITXP_CHECKPOINT_SECONDS` (else
30) and `start_delay` from `$GITXP_START_DELAY` (else 1), so a
`RunOptions` holds the values the run will use.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidValueError, ParamConflictError
from ..format.ids import check_run_name
from ..format.values import check_key, check_name, check_note, non_negative, normalize_param, to_tag
from .ranks import ranks_mode

DEFAULT_CHECKPOINT_SECONDS = 30.0
DEFAULT_BUFFER_POINTS = 1_000_000
DEFAULT_START_DELAY = 1.0

_NONE: Mapping[str, Any] = {}


def env_seconds(name: str, default: float, zero_ok: bool = False) -> float:
    """The number of seconds environment variable *name* sets (*default* when unset)."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidValueError(name, f"{raw!r} is not a number of seconds") from None
    if value < 0 or (value == 0 and not zero_ok):
        raise InvalidValueError(name, "must be a positive number of seconds")
    return value


def checked_params(params: object, known: Mapping[str, Any] = _NONE) -> dict[str, Any]:
    """*params* as they are stored: keys checked, values normalised, none contradicting *known*.

    Raises InvalidValueError for a bad key or value, ParamConflictError for a
    key logged before (in *known*) with another value.
    """
    if not isinstance(params, Mapping):
        raise InvalidValueError("params", f"expected a dict, got {type(params).__name__}")
    clean: dict[str, Any] = {}
    for key, value in params.items():
        check_key("param", key)
        normal = normalize_param(key, value)
        for seen in (known, clean):
            if key in seen and seen[key] != normal:
                raise ParamConflictError(key, seen[key], normal)
        clean[key] = normal
    return clean


def checked_tags(tags: object) -> dict[str, str]:
    """*tags* as they are stored: keys checked, values as text."""
    if not isinstance(tags, Mapping):
        raise InvalidValueError("tags", f"expected a dict, got {type(tags).__name__}")
    return {check_key("tag", k): to_tag(k, v) for k, v in tags.items()}


@dataclass(frozen=True)
class RunOptions:
    """The settings of a run to start: what it is, and how it is recorded.

    *experiment* (None: `$GITXP_EXPERIMENT` or "default"), *name* (None: a
    generated one), *params*, *tags* and *notes* describe the run.
    *checkpoint_seconds* (None: `$GITXP_CHECKPOINT_SECONDS` or 30) and
    *buffer_points* (None: 1,000,000) say how often it commits; *start_delay*
    (None: `$GITXP_START_DELAY` or 1) how long its first commit waits.
    *snapshot* records uncommitted changes of the work tree (files up to
    *max_snapshot_file_size* bytes); *system_metrics* samples the machine
    every *system_metrics_seconds* (see `gitxp.tracking.system_metrics`).
    *code_commit* (the code is known: no snapshot), *command* (the command
    record; None: this process's) and *extra_meta* (more run.json fields)
    are for the launcher and importers.

    Everything is checked when the options are made (InvalidValueError);
    afterwards params and tags are normalised as stored, and
    *checkpoint_seconds*, *buffer_points* and *start_delay* are never None.
    """

    experiment: str | None = None
    name: str | None = None
    params: Mapping[str, Any] | None = None
    tags: Mapping[str, Any] | None = None
    notes: str | None = None
    checkpoint_seconds: float | None = None
    buffer_points: int | None = None
    snapshot: bool = True
    max_snapshot_file_size: int | None = None
    system_metrics: bool | None = None
    system_metrics_seconds: float | None = None
    code_commit: str | None = None
    command: Mapping[str, Any] | None = None
    extra_meta: Mapping[str, Any] | None = None
    start_delay: float | None = None
    ranks: str | None = None

    def __post_init__(self) -> None:
        name = check_name("name", self.name)
        settled: dict[str, Any] = {
            "experiment": check_name("experiment", self.experiment),
            "name": None if name is None else check_run_name(name),
            "params": checked_params(self.params or {}),
            "tags": checked_tags(self.tags or {}),
            "notes": check_note(self.notes) if self.notes else None,
            "checkpoint_seconds": _checkpoint_seconds(self.checkpoint_seconds),
            "buffer_points": _buffer_points(self.buffer_points),
            "start_delay": _start_delay(self.start_delay),
            "ranks": ranks_mode(self.ranks),
        }
        if self.max_snapshot_file_size is not None:
            settled["max_snapshot_file_size"] = int(self.max_snapshot_file_size)
        if self.command is not None:
            settled["command"] = dict(self.command)
        if self.extra_meta is not None:
            settled["extra_meta"] = dict(self.extra_meta)
        for field_name, value in settled.items():
            object.__setattr__(self, field_name, value)  # frozen: settled once, here

    def sampling_interval(self) -> float | None:
        """Seconds between system-metrics samples, or None for none; raises on bad settings
        (or a missing psutil) before anything is recorded."""
        from .system_metrics import resolve

        return resolve(self.system_metrics, self.system_metrics_seconds)


def options_from(keywords: Mapping[str, Any], besides: Collection[str] = ()) -> RunOptions:
    """The `RunOptions` a public function was called with: its *keywords* (its `locals()`,
    taken first thing) but those named in *besides*, which are not run settings.

    `gitxp.start_run(...)` and `gitxp.launch(...)` take the run settings as
    keywords named as RunOptions' fields (their documented signatures); here
    they become one object without the list being written out again. A
    keyword that is no field is a TypeError: the two cannot drift apart.
    """
    return RunOptions(**{k: v for k, v in keywords.items() if k not in besides})


def _checkpoint_seconds(value: float | None) -> float:
    if value is None:
        value = env_seconds("GITXP_CHECKPOINT_SECONDS", DEFAULT_CHECKPOINT_SECONDS)
    return non_negative("checkpoint_seconds", value, zero_ok=False, unit="seconds")


def _start_delay(value: float | None) -> float:
    if value is None:
        return env_seconds("GITXP_START_DELAY", DEFAULT_START_DELAY, zero_ok=True)
    return non_negative("start_delay", value, unit="seconds")


def _buffer_points(value: int | None) -> int:
    if value is None:
        return DEFAULT_BUFFER_POINTS
    if value < 1:
        raise InvalidValueError("buffer_points", "must be at least 1")
    return int(value)
