"""Helpers every measure shares: paths, timing, the workload, and result records."""

from __future__ import annotations

import gc
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.join(HERE, ".cache")
RESULTS = os.path.join(HERE, "results")
# Scratch projects and stores (every tool's) live in the checkout, where a user's
# project would, not in /tmp nor beside the fixtures: on this VM creating a file
# there costs 10-50x what it costs here on the same disk (the fixtures' millions of
# files churn their block groups), which would measure the VM, not the tools.
# GITXP_BENCH_TMP moves it; the machine description reports its file-creation cost.
SCRATCH = os.environ.get("GITXP_BENCH_TMP") or os.path.join(ROOT, ".bench-scratch")
os.makedirs(SCRATCH, exist_ok=True)
tempfile.tempdir = SCRATCH
os.environ["TMPDIR"] = SCRATCH
TRASH = os.path.join(SCRATCH, ".trash")


def discard(path: str) -> None:
    """Put a scratch directory aside; the suite deletes them all once it has measured.

    Deleting thousands of files makes this VM's disk slow for a minute or more
    (the file system is mounted with `discard`), which would land on whichever
    measure runs next.
    """
    if not os.path.exists(path):
        return
    os.makedirs(TRASH, exist_ok=True)
    try:
        os.rename(path, os.path.join(TRASH, f"{os.path.basename(path)}-{time.time_ns()}"))
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def empty_trash() -> None:
    """Delete the scratch directories the measures put aside."""
    shutil.rmtree(TRASH, ignore_errors=True)


BIN = os.path.dirname(sys.executable)

EXPERIMENTS = ("baseline", "sweep", "ablation")
METRIC_KEYS = ("loss", "acc", "val_loss")
STEPS = 100


def quiet_env() -> dict[str, str]:
    """Environment for child processes: no telemetry, no colour, a fixed git identity."""
    env = dict(os.environ)
    # an installed gitxp has its bytecode compiled; without this every command
    # timed would compile its modules again (~0.3 s of a `gitxp run`)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        {
            "GIT_AUTHOR_NAME": "bench",
            "GIT_AUTHOR_EMAIL": "bench@example.com",
            "GIT_COMMITTER_NAME": "bench",
            "GIT_COMMITTER_EMAIL": "bench@example.com",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "1",
            "DVC_NO_ANALYTICS": "1",
            "PYTHONWARNINGS": "ignore",
        }
    )
    return env


os.environ.update({k: v for k, v in quiet_env().items() if k not in ("PYTHONWARNINGS",)})


def run_spec(i: int, steps: int = STEPS) -> dict[str, Any]:
    """The i-th run of the shared workload: 5 params, 3 metrics x *steps* steps (100)."""
    rnd = random.Random(i)
    lr = round(10 ** rnd.uniform(-4, -1), 6)
    params = {
        "lr": lr,
        "batch_size": rnd.choice([16, 32, 64, 128]),
        "optimizer": rnd.choice(["adam", "sgd", "adamw"]),
        "layers": rnd.randint(1, 8),
        "dropout": round(rnd.uniform(0, 0.5), 3),
    }
    final = rnd.uniform(0.5, 0.99)
    metrics = []
    for step in range(steps):
        frac = (step + 1) / steps
        metrics.append(
            {
                "loss": 2.0 * (1 - frac) + rnd.gauss(0, 0.02) + 0.05,
                "acc": final * frac + rnd.gauss(0, 0.01),
                "val_loss": 2.1 * (1 - frac) + rnd.gauss(0, 0.03) + 0.08,
            }
        )
    return {
        "experiment": EXPERIMENTS[i % len(EXPERIMENTS)],
        "name": f"run-{i:05d}",
        "params": params,
        "metrics": metrics,
    }


def timeit(fn: Callable[[], Any], repeat: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of *repeat* calls of *fn* after *warmup* untimed ones."""
    return timeit_cpu(fn, repeat, warmup)[0]


def timeit_cpu(
    fn: Callable[[], Any], repeat: int, warmup: int = 1
) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (this process and its children) of *repeat* calls of *fn*.

    CPU time is what the call costs whatever else the machine is doing; on a
    shared machine the wall clock also counts the time spent waiting for a core.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        gc.collect()
        c = cpu_now()
        t = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(cpu_now() - c)
    return wall, cpu


def back_to_back(fn: Callable[[], Any], repeat: int, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of *repeat* calls of *fn* made in a row (no collection between)."""
    for _ in range(warmup):
        fn()
    wall = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        wall.append(time.perf_counter() - t)
    return wall


def cpu_now() -> float:
    """User + system CPU seconds of this process and its waited-for children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timecmd(
    argv: list[str],
    repeat: int,
    cwd: str | None = None,
    warmup: int = 1,
    before: Callable[[], Any] | None = None,
    env: dict[str, str] | None = None,
) -> list[float]:
    """Wall-clock seconds of running *argv* (output discarded); fails loudly on error."""
    env = env or quiet_env()
    out = []
    for i in range(warmup + repeat):
        if before is not None:
            before()
        c = cpu_now()
        t = time.perf_counter()
        proc = subprocess.run(
            argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        dt = time.perf_counter() - t
        dc = cpu_now() - c
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr.decode()[-2000:]}")
        if i >= warmup:
            out.append(dt)
            LAST_CMD_CPU.append(dc)
    return out


LAST_CMD_CPU: list[float] = []  # CPU seconds of the commands timed by timecmd, in order


def cmd_cpu(n: int) -> float:
    """Median CPU seconds of the last *n* commands timed by timecmd."""
    return med(LAST_CMD_CPU[-n:])


def med(values: list[float]) -> float:
    return statistics.median(values)


def result(
    id: str,
    group: str,
    title: str,
    unit: str,
    gitxp: float | None,
    peer: str | None = None,
    peer_value: float | None = None,
    ratio_min: float | None = None,
    max_value: float | None = None,
    lower_is_better: bool = True,
    notes: str = "",
    cpu: float | None = None,
    peer_cpu: float | None = None,
    **details: Any,
) -> dict[str, Any]:
    """One row of the results table: gitxp's figure, the peer's, their ratio, the targets."""
    ratio = None
    if gitxp and peer_value is not None:
        ratio = peer_value / gitxp if lower_is_better else gitxp / peer_value
    targets = []
    ok = True
    if ratio_min is not None:
        good = ratio is not None and ratio >= ratio_min
        targets.append(f">= {ratio_min:.3g}x")
        ok = ok and good
    if max_value is not None:
        good = gitxp is not None and gitxp <= max_value
        targets.append(f"<= {max_value:g} {unit}")
        ok = ok and good
    return {
        "id": id,
        "group": group,
        "title": title,
        "unit": unit,
        "gitxp": gitxp,
        "peer": peer,
        "peer_value": peer_value,
        "ratio": ratio,
        "target": " and ".join(targets) or None,
        "pass": ok if targets else None,
        "notes": notes,
        "cpu": cpu,
        "peer_cpu": peer_cpu,
        "cpu_ratio": (peer_cpu / cpu) if cpu and peer_cpu else None,
        "details": details,
    }


def emit(results: list[dict[str, Any]]) -> None:
    """Hand a measure's results to the runner (the last line of stdout)."""
    sys.stdout.flush()
    print("\n@@RESULTS@@" + json.dumps(results))
