"""Cached fixture repositories: N runs of the shared workload, for gitxp and for MLflow.

Levels are built incrementally in one work directory and frozen at each
size: a gitxp level is a hard-linked copy (`cp -al`; git objects and ref
files are only ever replaced by rename, never modified in place, so the
copies stay independent), an MLflow level is a copy of its sqlite file.
Everything lives under benchmarks/.cache/ and is reused by later runs.

    python -m benchmarks.fixtures gitxp 100 300 2000 10000
    python -m benchmarks.fixtures mlflow 100 300 2000 10000
    python -m benchmarks.fixtures gitxp 2000 --steps 300   # runs of 300 steps, not 100
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

from .common import CACHE, EXPERIMENTS, STEPS, quiet_env, run_spec

# bumped when what a tool writes per run changes, so its cached levels are rebuilt
# (gitxp 2: a run that ends within its start delay is one commit; 3: no reflog lines;
# 4: one JSON member per line, no Parquet statistics, no commit encoding header;
# 5: zstd on the value column only, no empty snapshot record; 6: no liveness fields at the end;
# 7: loose objects deflated with a window sized to them; 8: no Parquet compression, git's
# zlib alone compresses a part)
FIXTURE_VERSION = {"gitxp": 8, "mlflow": 1}
FIX = os.path.join(CACHE, "fixtures")


def _marker(path: str) -> str:
    return os.path.join(path, ".bench-complete")


def _kind(path: str) -> str:
    return "gitxp" if os.path.basename(path).startswith("gitxp") else "mlflow"


def _is_complete(path: str) -> bool:
    try:
        with open(_marker(path)) as f:
            return json.load(f).get("version") == FIXTURE_VERSION[_kind(path)]
    except (OSError, ValueError):
        return False


def _mark(path: str, n: int) -> None:
    if os.path.exists(_marker(path)):
        os.unlink(_marker(path))  # a level's marker may be a hard link to the build dir's
    with open(_marker(path), "w") as f:
        json.dump({"version": FIXTURE_VERSION[_kind(path)], "runs": n}, f)


def _count_done(path: str) -> int:
    try:
        with open(os.path.join(path, ".bench-progress")) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def _progress(path: str, n: int) -> None:
    with open(os.path.join(path, ".bench-progress"), "w") as f:
        f.write(str(n))


def init_project(path: str) -> None:
    """A small git project with one commit (what a user's repository looks like)."""
    os.makedirs(path, exist_ok=True)
    env = quiet_env()
    subprocess.run(["git", "init", "-q", "-b", "main", path], check=True, env=env)
    with open(os.path.join(path, "train.py"), "w") as f:
        f.write("print('training')\n")
    with open(os.path.join(path, ".gitignore"), "w") as f:
        f.write(".bench-*\nmlflow.db\n")
    subprocess.run(["git", "add", "-A"], cwd=path, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "init"], cwd=path, check=True, env=env)


# -- gitxp ------------------------------------------------------------------------
def _level(kind: str, n: int, steps: int) -> str:
    """A level's directory: `gitxp-2000`, or `gitxp-2000x300` for runs of other lengths."""
    return os.path.join(FIX, f"{kind}-{n}" if steps == STEPS else f"{kind}-{n}x{steps}")


def gitxp_path(n: int, steps: int = STEPS) -> str:
    return _level("gitxp", n, steps)


def record_gitxp_run(
    repo: str, i: int, snapshot: bool = False, spec: dict[str, Any] | None = None
) -> str:
    """The i-th run of the shared workload through gitxp (*spec*: `run_spec(i)`, made
    beforehand when a measure must not time the making of its random values)."""
    import gitxp

    spec = spec or run_spec(i)
    with gitxp.start_run(
        experiment=spec["experiment"],
        name=spec["name"],
        params=spec["params"],
        repo=repo,
        snapshot=snapshot,
    ) as run:
        for step, values in enumerate(spec["metrics"]):
            run.log_metrics(values, step=step)
    return run.id


def build_gitxp(levels: list[int], steps: int = STEPS) -> None:
    levels = sorted(levels)
    if all(_is_complete(gitxp_path(n, steps)) for n in levels):
        return
    work = os.path.join(FIX, "gitxp-build" if steps == STEPS else f"gitxp-build-x{steps}")
    if not _is_complete(work):  # the build dir's marker: the version it was built with
        shutil.rmtree(work, ignore_errors=True)
    if not os.path.isdir(os.path.join(work, ".git")):
        shutil.rmtree(work, ignore_errors=True)
        init_project(work)
        _mark(work, 0)
    done = (
        len(os.listdir(os.path.join(work, ".git", "refs", "gitxp", "runs")))
        if os.path.isdir(os.path.join(work, ".git", "refs", "gitxp", "runs"))
        else 0
    )
    for n in levels:
        if _is_complete(gitxp_path(n, steps)):
            continue
        if done > n:
            raise SystemExit(f"gitxp build dir already has {done} runs > {n}; delete {work}")
        t = time.perf_counter()
        for i in range(done, n):
            record_gitxp_run(work, i, spec=run_spec(i, steps))
            if i % 500 == 499:
                _progress(work, i + 1)
                print(f"gitxp: {i + 1} runs ({time.perf_counter() - t:.0f}s)", flush=True)
        done = n
        _progress(work, done)
        dest = gitxp_path(n, steps)
        shutil.rmtree(dest, ignore_errors=True)
        subprocess.run(["cp", "-al", work, dest], check=True)
        # the copy gets its own listing cache file (never shared by hard link)
        from gitxp.store.listing_cache import CACHE_FILE

        cache = os.path.join(dest, ".git", "gitxp", CACHE_FILE)
        if os.path.exists(cache):
            with open(cache, "rb") as f:
                data = f.read()
            os.unlink(cache)
            with open(cache, "wb") as f:
                f.write(data)
        _mark(dest, n)
        print(f"gitxp level {n} ready", flush=True)


# -- MLflow -----------------------------------------------------------------------
def mlflow_path(n: int, steps: int = STEPS) -> str:
    return _level("mlflow", n, steps)


def mlflow_uri(path: str) -> str:
    return "sqlite:///" + os.path.join(path, "mlflow.db")


def mlflow_experiments(client: Any) -> dict[str, str]:
    """Experiment name -> id, creating the workload's experiments when missing."""
    ids = {}
    for name in EXPERIMENTS:
        exp = client.get_experiment_by_name(name)
        ids[name] = exp.experiment_id if exp else client.create_experiment(name)
    return ids


def record_mlflow_run(
    client: Any, exp_ids: dict[str, str], i: int, spec: dict[str, Any] | None = None
) -> str:
    """The same run through MLflow's fastest client path: one log_batch of everything."""
    from mlflow.entities import Metric, Param

    spec = spec or run_spec(i)
    run = client.create_run(exp_ids[spec["experiment"]], run_name=spec["name"])
    rid = run.info.run_id
    now = int(time.time() * 1000)
    metrics = [
        Metric(k, v, now, step)
        for step, values in enumerate(spec["metrics"])
        for k, v in values.items()
    ]
    client.log_batch(
        rid, metrics=metrics, params=[Param(k, str(v)) for k, v in spec["params"].items()]
    )
    client.set_terminated(rid)
    return rid


def _copy_sqlite(src: str, dest: str) -> None:
    """A consistent copy of a live sqlite database (its backup API, not a file copy)."""
    import sqlite3

    with sqlite3.connect(src) as a, sqlite3.connect(dest) as b:
        a.backup(b)
    a.close()
    b.close()


def _count_mlflow_runs(db: str) -> int:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        return int(con.execute("select count(*) from runs").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        con.close()


def build_mlflow(levels: list[int], steps: int = STEPS) -> None:
    levels = sorted(levels)
    if all(_is_complete(mlflow_path(n, steps)) for n in levels):
        return
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from mlflow import MlflowClient

    work = os.path.join(FIX, "mlflow-build" if steps == STEPS else f"mlflow-build-x{steps}")
    os.makedirs(work, exist_ok=True)
    client = MlflowClient(tracking_uri=mlflow_uri(work))
    exp_ids = mlflow_experiments(client)
    done = _count_mlflow_runs(os.path.join(work, "mlflow.db"))
    for n in levels:
        if _is_complete(mlflow_path(n, steps)):
            continue
        if done > n:
            # the shared build went past this size: grow a copy of a smaller level instead
            lower = max(
                [m for m in levels if m < n and _is_complete(mlflow_path(m, steps))], default=0
            )
            side = os.path.join(FIX, f"mlflow-build-{n}x{steps}")
            shutil.rmtree(side, ignore_errors=True)
            os.makedirs(side)
            if lower:
                _copy_sqlite(
                    os.path.join(mlflow_path(lower, steps), "mlflow.db"),
                    os.path.join(side, "mlflow.db"),
                )
            side_client = MlflowClient(tracking_uri=mlflow_uri(side))
            side_ids = mlflow_experiments(side_client)
            for i in range(lower, n):
                record_mlflow_run(side_client, side_ids, i, run_spec(i, steps))
            dest = mlflow_path(n, steps)
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest)
            _copy_sqlite(os.path.join(side, "mlflow.db"), os.path.join(dest, "mlflow.db"))
            with open(os.path.join(dest, "experiments.json"), "w") as f:
                json.dump(side_ids, f)
            _mark(dest, n)
            shutil.rmtree(side, ignore_errors=True)
            print(f"mlflow level {n} ready (side build)", flush=True)
            continue
        t = time.perf_counter()
        for i in range(done, n):
            record_mlflow_run(client, exp_ids, i, run_spec(i, steps))
            if i % 500 == 499:
                _progress(work, i + 1)
                print(f"mlflow: {i + 1} runs ({time.perf_counter() - t:.0f}s)", flush=True)
        done = n
        _progress(work, done)
        dest = mlflow_path(n, steps)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        _copy_sqlite(os.path.join(work, "mlflow.db"), os.path.join(dest, "mlflow.db"))
        with open(os.path.join(dest, "experiments.json"), "w") as f:
            json.dump(exp_ids, f)
        _mark(dest, n)
        print(f"mlflow level {n} ready", flush=True)


def ensure(kind: str, levels: list[int], steps: int = STEPS) -> None:
    """Build missing levels in a child process (keeps imports out of the measuring process)."""
    path = gitxp_path if kind == "gitxp" else mlflow_path
    if all(_is_complete(path(n, steps)) for n in levels):
        return
    subprocess.run(
        [sys.executable, "-m", "benchmarks.fixtures", kind, *map(str, levels)]
        + ([] if steps == STEPS else ["--steps", str(steps)]),
        check=True,
        env=quiet_env(),
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


if __name__ == "__main__":
    kind, *sizes = sys.argv[1:]
    length = STEPS
    if "--steps" in sizes:
        at = sizes.index("--steps")
        length = int(sizes[at + 1])
        del sizes[at : at + 2]
    os.makedirs(FIX, exist_ok=True)
    (build_gitxp if kind == "gitxp" else build_mlflow)([int(s) for s in sizes], length)
