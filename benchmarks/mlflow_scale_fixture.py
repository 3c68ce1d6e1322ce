"""The MLflow twin of the 100,000-run bulk fixture: the same runs in MLflow's sqlite store.

Filling an MLflow store through its client takes ~30 minutes for 100,000
runs, so this lets MLflow create its store (its client creating the three
experiments runs MLflow's own schema migrations), then writes the runs with
bulk SQL in one transaction, row for row what `create_run(run_name=...)`,
`log_batch(metrics, params)` and `set_terminated` write for one run:

- `runs`: a uuid4-style hex id, the run name, source_type UNKNOWN, user
  `unknown`, status FINISHED, start and end times, lifecycle_stage active,
  the artifact URI `<experiment artifact location>/<run id>/artifacts`;
- `tags`: `mlflow.runName`; `params`: each parameter as a string;
- `metrics`: every point of the run's history (key, value, timestamp, step,
  is_nan 0);
- `latest_metrics`: one row a metric, the run's final value.

The runs are those of benchmarks/scale_fixture.py, from the same sequence
(`scale_fixture.runs`): names, experiments, times, params, and each run's
final `acc`/`loss` from its summary.json (what gitxp's listing and filters
read). The history is the one metric part every gitxp run of that fixture
shares (read from the gitxp fixture itself), 100 points of `acc` and `loss`
a run, 20M rows at 100,000 runs. Metric rows are inserted in the order of
the table's primary key and its two other indexes are rebuilt after the
insert (the schema ends as MLflow made it); the rows of a run are therefore
not next to each other in the table, which only a read of histories would
notice (none of the measures at scale reads them).

    python -m benchmarks.mlflow_scale_fixture 100000 [--points K] [--out DIR --gitxp DIR]

The result is cached under benchmarks/.cache/fixtures/mlflow-scale-<N>.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

from .common import EXPERIMENTS, quiet_env
from .fixtures import FIX, mlflow_uri
from .scale_fixture import build as build_gitxp
from .scale_fixture import runs

MLFLOW_SCALE_VERSION = 1
POINTS = 100  # the points per metric a gitxp run of the scale fixture holds


def mlflow_scale_path(n: int) -> str:
    """Where the n-run MLflow twin of the bulk fixture lives."""
    return os.path.join(FIX, f"mlflow-scale-{n}")


def run_uuids(n: int) -> list[str]:
    """The MLflow run ids of the n runs, in the order of `scale_fixture.runs(n)`."""
    rnd = random.Random(f"mlflow-{n}")
    return [uuid.UUID(int=rnd.getrandbits(128), version=4).hex for _ in range(n)]


def shared_history(gitxp_repo: str) -> list[tuple[str, int, int, float]]:
    """(key, step, timestamp, value) of the metric part every run of the gitxp fixture holds,
    read with git and pyarrow from the storage contract (Parquet under `metrics/`)."""
    import pyarrow.parquet as pq

    def git(*args: str) -> bytes:
        return subprocess.run(
            ["git", *args], cwd=gitxp_repo, capture_output=True, check=True, env=quiet_env()
        ).stdout

    ref = git("for-each-ref", "--count=1", "--format=%(refname)", "refs/gitxp/runs").strip()
    points: list[tuple[str, int, int, float]] = []
    for line in git("ls-tree", "-r", ref.decode()).decode().splitlines():
        meta, name = line.split("\t", 1)
        if name.startswith("metrics/") and name.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(git("cat-file", "blob", meta.split()[2])))
            cols = table.to_pydict()
            points += zip(cols["key"], cols["step"], cols["timestamp"], cols["value"], strict=True)
    return sorted(points, key=lambda p: (p[0], p[2], p[1]))


def _complete(path: str, n: int, points: int) -> bool:
    try:
        with open(os.path.join(path, ".bench-complete")) as f:
            return bool(
                json.load(f) == {"version": MLFLOW_SCALE_VERSION, "runs": n, "points": points}
            )
    except (OSError, ValueError):
        return False


def _experiments(path: str) -> dict[str, tuple[int, str]]:
    """Create the store through MLflow (its migrations make the schema) and the
    workload's experiments; name -> (id, artifact location)."""
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri(path))
    out = {}
    for name in EXPERIMENTS:
        exp_id = client.create_experiment(
            name, artifact_location=os.path.join(path, "mlruns", name)
        )
        out[name] = (int(exp_id), client.get_experiment(exp_id).artifact_location)
    return out


def _metric_rows(
    history: list[tuple[str, int, int, float]], ids: list[str]
) -> Iterator[tuple[str, float, int, str, int, int]]:
    """metrics rows in the primary key's order (key, timestamp, step, run_uuid, ...)."""
    ordered = sorted(ids)
    for key, step, timestamp, value in history:
        for run_uuid in ordered:
            yield (key, value, timestamp, run_uuid, step, 0)


def fill(path: str, n: int, history: list[tuple[str, int, int, float]]) -> None:
    """Write the n runs into the fresh MLflow store at *path* (schema made by MLflow)."""
    experiments = _experiments(path)
    ids = run_uuids(n)
    run_rows, tag_rows, param_rows, latest_rows = [], [], [], []
    for run_uuid, spec in zip(ids, runs(n), strict=True):
        exp_id, location = experiments[spec["experiment"]]
        run_rows.append(
            (run_uuid, spec["name"], "UNKNOWN", "", "", "unknown", "FINISHED",
             spec["start_time"], spec["end_time"], "", "active",
             f"{location}/{run_uuid}/artifacts", exp_id, None)
        )  # fmt: skip
        tag_rows.append(("mlflow.runName", spec["name"], run_uuid))
        param_rows += [(k, str(v), run_uuid) for k, v in spec["params"].items()]
        for key, s in spec["summary"].items():
            latest_rows.append((key, s["last"], s["timestamp"], s["step"], 0, run_uuid))
    con = sqlite3.connect(os.path.join(path, "mlflow.db"), isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=OFF")  # this connection only; the file is as MLflow's
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")  # 256 MB
        indexes = con.execute(
            "select name, sql from sqlite_master where type='index' and tbl_name='metrics' "
            "and sql is not null"
        ).fetchall()
        con.execute("BEGIN")
        for name, _ in indexes:
            con.execute(f'DROP INDEX "{name}"')
        con.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", run_rows)
        con.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", tag_rows)
        con.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", param_rows)
        con.executemany(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?,?,?,?,?,?)",
            latest_rows,
        )
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?,?,?,?,?,?)",
            _metric_rows(history, ids),
        )
        for _, sql in indexes:
            con.execute(sql)
        con.execute("COMMIT")
    finally:
        con.close()
    with open(os.path.join(path, "experiments.json"), "w") as f:
        json.dump({name: str(exp_id) for name, (exp_id, _) in experiments.items()}, f)


def build(
    n: int, points: int = POINTS, path: str | None = None, gitxp_repo: str | None = None
) -> str:
    """Build (or reuse) the MLflow twin of the n-run bulk fixture; its path.

    *points*: history points per metric a run (the gitxp fixture's 100, or fewer).
    *path* / *gitxp_repo*: where to build, and the gitxp fixture to mirror
    (default: the cached ones).
    """
    path = path or mlflow_scale_path(n)
    if _complete(path, n, points):
        return path
    gitxp_repo = gitxp_repo or build_gitxp(n)
    started = time.perf_counter()
    history = [p for p in shared_history(gitxp_repo) if p[1] < points]
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    fill(path, n, history)
    with open(os.path.join(path, ".bench-complete"), "w") as f:
        json.dump({"version": MLFLOW_SCALE_VERSION, "runs": n, "points": points}, f)
    size = os.path.getsize(os.path.join(path, "mlflow.db"))
    print(
        f"built MLflow store of {n:,} runs ({len(history)} points a run, {size / 1e9:.2f} GB) "
        f"in {time.perf_counter() - started:.1f}s: {path}",
        file=sys.stderr,
    )
    return path


def ensure(n: int, points: int = POINTS) -> str:
    """The cached twin of n runs, built in a child process when missing (MLflow's imports
    stay out of the measuring process)."""
    path = mlflow_scale_path(n)
    if not _complete(path, n, points):
        subprocess.run(
            [sys.executable, "-m", "benchmarks.mlflow_scale_fixture", str(n), "--points",
             str(points)],
            check=True,
            env=quiet_env(),
            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        )  # fmt: skip
    return path


def _option(args: list[str], name: str) -> str | None:
    if name not in args:
        return None
    at = args.index(name)
    value = args[at + 1]
    del args[at : at + 2]
    return value


if __name__ == "__main__":
    argv = sys.argv[1:]
    count = int(_option(argv, "--points") or POINTS)
    out, repo = _option(argv, "--out"), _option(argv, "--gitxp")
    for arg in argv or ["100000"]:
        build(int(arg), count, out, repo)
