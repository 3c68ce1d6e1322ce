"""Sweeps: run a command over a grid (or a random sample) of params, J at a time, and rank them.

Each point of the grid is one `gitxp run` (`gitxp.launch`): the params are
the run's params (`gitxp.active_run().params` inside the command), and
``{key}`` in the command's arguments is replaced by the point's value, so
scripts that take flags work too::

    gitxp sweep -p lr=0.001,0.01 -p bs=32,64 --jobs 2 --metric acc \\
        -- python train.py --lr {lr} --batch-size {bs}

Every run is tagged ``gitxp.sweep=<sweep id>`` and ``gitxp.sweep.index=<i>``.
`sweep_commands` writes the same runs as `gitxp run` command lines instead,
for a cluster scheduler (Slurm job arrays, GNU parallel); their runs come
back with `gitxp push`/`gitxp pull` and `gitxp log --filter
"tags.gitxp.sweep = '<id>'"` lists them.
"""

from __future__ import annotations

import itertools
import os
import random as _random
import re
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import InvalidValueError, UsageError

if TYPE_CHECKING:
    from ..tracking.options import RunOptions

SWEEP_TAG = "gitxp.sweep"
INDEX_TAG = "gitxp.sweep.index"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][\w.\-]*)\}")


@dataclass
class SweepResult:
    """A finished sweep: its id, one entry per run (params, run id, status), ranked rows."""

    sweep_id: str
    runs: list[dict[str, Any]] = field(default_factory=list)
    ranked: list[dict[str, Any]] = field(default_factory=list)
    metric: str | None = None
    goal: str = "max"
    interrupted: bool = False  # stopped early by Ctrl-C (`gitxp sweep --optuna`)
    study: dict[str, Any] | None = None  # `--optuna`: the whole study (every process's trials)

    @property
    def failed(self) -> list[dict[str, Any]]:
        # a run that finished without the metric is a failed trial to Optuna
        return [r for r in self.runs if r["status"] != "FINISHED" or r.get("state") == "FAIL"]

    @property
    def best(self) -> dict[str, Any] | None:
        scored = [r for r in self.ranked if r.get("value") is not None]
        return scored[0] if scored and self.metric else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "metric": self.metric,
            "goal": self.goal,
            "runs": self.ranked,
            **({"study": self.study} if self.study is not None else {}),
        }


def parse_grid(specs: Sequence[str]) -> dict[str, list[Any]]:
    """`["lr=0.001,0.01", "bs=32,64"]` -> `{"lr": [0.001, 0.01], "bs": [32, 64]}` (values typed)."""
    from .pairs import parse_scalar

    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise UsageError(f"-p {spec!r} must look like KEY=V1,V2,..., e.g. lr=0.001,0.01")
        if key in grid:
            raise UsageError(f"-p {key!r} is given twice; list all its values in one -p")
        grid[key] = [parse_scalar(v.strip()) for v in values.split(",")]
    if not grid:
        raise UsageError("give at least one -p KEY=V1,V2,... to sweep over")
    return grid


def plan(
    grid: Mapping[str, Sequence[Any]], random: int | None = None, seed: int | None = None
) -> list[dict[str, Any]]:
    """The points to run: the full grid in order, or *random* distinct points of it."""
    keys = list(grid)
    for key, values in grid.items():
        if not isinstance(values, Sequence) or isinstance(values, str) or not values:
            raise InvalidValueError(f"sweep param {key!r}", "needs a non-empty list of values")
    points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]
    if random is not None:
        if random < 1:
            raise InvalidValueError("random", "must be at least 1")
        rng = _random.Random(seed)
        points = rng.sample(points, min(random, len(points)))
    return points


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def render_command(cmd: Sequence[str], point: Mapping[str, Any]) -> list[str]:
    """*cmd* with every ``{key}`` of a swept param replaced by the point's value."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        return _text(point[key]) if key in point else match.group(0)

    return [_PLACEHOLDER.sub(sub, arg) for arg in cmd]


def new_sweep_id() -> str:
    """A short, time-sortable, unique sweep id."""
    from ..format.ids import new_run_id

    return new_run_id()[:16]


def _names(name: str | None, sweep_id: str, n: int) -> list[str]:
    prefix = name or f"sweep-{sweep_id[-6:]}"
    width = len(str(n))
    return [f"{prefix}-{i:0{width}d}" for i in range(1, n + 1)]


def sweep_commands(
    cmd: Sequence[str],
    grid: Mapping[str, Sequence[Any]],
    *,
    random: int | None = None,
    seed: int | None = None,
    experiment: str | None = None,
    name: str | None = None,
    sweep_id: str | None = None,
) -> list[str]:
    """One `gitxp run` shell command line per point, for schedulers and GNU parallel."""
    if not cmd:
        raise UsageError("no command given; e.g. gitxp sweep -p lr=0.1,0.01 -- python train.py")
    sweep_id = sweep_id or new_sweep_id()
    points = plan(grid, random, seed)
    lines = []
    run_names = _names(name, sweep_id, len(points))
    for i, (point, run_name) in enumerate(zip(points, run_names, strict=True), 1):
        argv = ["gitxp", "run", "-q"]
        if experiment:
            argv += ["-e", experiment]
        argv += ["-n", run_name]
        for key, value in point.items():
            argv += ["-p", f"{key}={_text(value)}"]
        argv += ["-t", f"{SWEEP_TAG}={sweep_id}", "-t", f"{INDEX_TAG}={i}", "--"]
        argv += render_command(cmd, point)
        lines.append(shlex.join(argv))
    return lines


def sweep(
    cmd: Sequence[str],
    points: Sequence[Mapping[str, Any]],
    options: RunOptions,
    *,
    name: str | None = None,
    jobs: int = 1,
    metric: str | None = None,
    goal: str = "max",
    repo: str | os.PathLike[str] = ".",
    stream: bool = False,
    on_done: Callable[[dict[str, Any], int, int], None] | None = None,
) -> SweepResult:
    """Run *cmd* once per point of *points* (see `plan`), *jobs* at a time.

    Every run is made as *options* say, with the point as its params, the
    sweep's tags and the name NAME-1, NAME-2 ... (*name*, default: sweep-<id>).
    Returns every run with its status and, with *metric*, the runs ranked
    by its last value (*goal* "max" or "min"). A failing run does not stop
    the others. *on_done* is called as each run ends (run entry, done, total).
    """
    from .launch import ProcessOptions, launch_run

    if not cmd:
        raise UsageError("no command given; e.g. gitxp sweep -p lr=0.1,0.01 -- python train.py")
    if jobs < 1:
        raise InvalidValueError("jobs", "must be at least 1")
    if goal not in ("max", "min"):
        raise InvalidValueError("goal", f"{goal!r} must be max or min")
    from ..git.repository import GitRepo

    with GitRepo.discover(repo) as git:
        git.require_work_tree("gitxp sweep")  # each point is a run on the work tree's code
    sweep_id = new_sweep_id()
    names = _names(name, sweep_id, len(points))
    process = ProcessOptions(stream=stream and jobs == 1)
    lock = threading.Lock()
    finished: list[dict[str, Any]] = []

    def one(i: int) -> dict[str, Any]:
        point = points[i]
        tags = {SWEEP_TAG: sweep_id, INDEX_TAG: str(i + 1)}
        this = replace(options, name=names[i], params=point, tags=tags)
        result = launch_run(render_command(cmd, point), this, process, repo=repo)
        entry = {
            "index": i + 1,
            "params": dict(point),
            "run_id": result.run_id,
            "name": result.name,
            "status": result.status,
            "exit_code": result.exit_code,
            "wall_time": result.wall_time,
        }
        with lock:
            finished.append(entry)
            if on_done is not None:
                on_done(entry, len(finished), len(points))
        return entry

    with ThreadPoolExecutor(max_workers=min(jobs, len(points))) as pool:
        runs = list(pool.map(one, range(len(points))))
    out = SweepResult(sweep_id=sweep_id, runs=runs, metric=metric, goal=goal)
    out.ranked = rank(runs, repo, metric, goal)
    return out


def rank(
    runs: list[dict[str, Any]],
    repo: str | os.PathLike[str],
    metric: str | None,
    goal: str = "max",
) -> list[dict[str, Any]]:
    """The sweep's runs with their metric values, best first (runs without it last)."""
    import math

    from ..store.repo import open as open_repo

    with open_repo(repo) as handle:
        rows = {r["id"]: r for r in handle.rows()}
    ranked = []
    for entry in runs:
        row = rows.get(entry["run_id"], {})
        value = (row.get("metrics") or {}).get(metric) if metric else None
        if isinstance(value, float) and math.isnan(value):
            value = None
        ranked.append({**entry, "metric": metric, "value": value})
    if metric:
        sign = -1 if goal == "max" else 1
        ranked.sort(key=lambda r: (r["value"] is None, sign * (r["value"] or 0), r["index"]))
    return ranked
