"""Creating a run: 5 params and 3 metrics x 100 steps, recorded and committed.

gitxp: `start_run(...)` with its defaults (work-tree snapshot on, in a clean
small project), `log_metrics` per step, `end()`. MLflow: its fastest client
path, one `log_batch` holding all 300 points and the params, then
`set_terminated`. Both figures are medians over 100 runs each in one process,
the tools taking turns in blocks of 20 runs, after 20 warm-up runs each; gitxp's
first run in a fresh process (which captures the environment) is reported separately.
The disk measure starts once creating a file is cheap again (see QUIET_US).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time

from .common import ROOT, cpu_now, discard, emit, med, quiet_env, result, run_spec
from .fixtures import (
    init_project,
    mlflow_experiments,
    mlflow_uri,
    record_gitxp_run,
    record_mlflow_run,
)
from .machine import file_create_us

FIRST_RUN = """
import time, sys
t0 = time.perf_counter()
from benchmarks.fixtures import record_gitxp_run
t1 = time.perf_counter()
record_gitxp_run(sys.argv[1], 0, snapshot=True)
print(time.perf_counter() - t1)
"""


WARMUP = 20
BLOCK = 20
SHM = "/dev/shm"
# This VM's disk slows down for minutes after many files are deleted (its file
# system is mounted with `discard`): creating one file then costs ~1 ms instead of
# ~30 µs. The disk measure waits, up to SETTLE_S, for file creation to cost under
# QUIET_US again, and reports what it cost before and after.
QUIET_US = 150.0
SETTLE_S = 60.0


def _settle_disk(directory: str) -> tuple[float, float]:
    """Wait for creating a file in *directory* to be cheap again; (seconds waited, µs)."""
    start = time.monotonic()
    cost = file_create_us(directory, 50, keep=True)
    while cost > QUIET_US and time.monotonic() - start < SETTLE_S:
        time.sleep(10)
        cost = file_create_us(directory, 50, keep=True)
    return time.monotonic() - start, cost


def _side_by_side(tmp: str, n: int) -> tuple[list[float], list[float], list[float], list[float]]:
    """gitxp and MLflow recording n runs each in *tmp*: wall and CPU ms per run, each side."""
    from mlflow import MlflowClient

    repo = os.path.join(tmp, "project")
    init_project(repo)
    os.makedirs(os.path.join(tmp, "mlflow"))
    client = MlflowClient(tracking_uri=mlflow_uri(os.path.join(tmp, "mlflow")))
    ids = mlflow_experiments(client)
    # warm-up: a project and a store that have recorded runs before
    for i in range(WARMUP):
        record_gitxp_run(repo, i, snapshot=True)
        record_mlflow_run(client, ids, i)
    times: list[float] = []
    cpus: list[float] = []
    mt: list[float] = []
    mcpu: list[float] = []
    # the tools take turns in blocks of BLOCK runs: both see the disk in the same
    # state (this VM's file-system latency drifts by 10x over minutes), and neither
    # lands right behind the other's fsyncs on every single run
    # the workload's random values are made before the clocks start: not tracker work
    specs = {i: run_spec(i) for i in range(WARMUP, WARMUP + n)}
    for first in range(WARMUP, WARMUP + n, BLOCK):
        block = range(first, min(first + BLOCK, WARMUP + n))
        for i in block:
            c = cpu_now()
            t = time.perf_counter()
            record_gitxp_run(repo, i, snapshot=True, spec=specs[i])
            times.append((time.perf_counter() - t) * 1000)
            cpus.append((cpu_now() - c) * 1000)
        for i in block:
            c = cpu_now()
            t = time.perf_counter()
            record_mlflow_run(client, ids, i, spec=specs[i])
            mt.append((time.perf_counter() - t) * 1000)
            mcpu.append((cpu_now() - c) * 1000)
    return times, cpus, mt, mcpu


def main(quick: bool) -> None:
    n = 20 if quick else 100
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-create-")
    try:
        repo = os.path.join(tmp, "first")
        init_project(repo)
        # a fresh process: the first run pays for capturing the environment
        firsts = []
        for _ in range(3):
            out = subprocess.run(
                [sys.executable, "-c", FIRST_RUN, repo],
                check=True,
                cwd=ROOT,
                env=quiet_env(),
                capture_output=True,
                text=True,
            ).stdout
            firsts.append(float(out.strip().splitlines()[-1]) * 1000)
        waited, before_us = _settle_disk(tmp)
        times, cpus, mt, mcpu = _side_by_side(tmp, n)
        after_us = file_create_us(tmp, 50, keep=True)
    finally:
        discard(tmp)
    disk_note = (
        f"creating one file here cost {before_us:.0f} µs before this measure and "
        f"{after_us:.0f} µs after it"
        + (f" (waited {waited:.0f} s for the disk to settle)" if waited >= 1 else "")
    )
    rows = [
        result(
            "create_run.mlflow",
            "Recording",
            "create a run: 5 params, 3 metrics x 100 steps",
            "ms",
            med(times),
            "MLflow create_run + log_batch + set_terminated",
            med(mt),
            ratio_min=10,
            cpu=med(cpus),
            peer_cpu=med(mcpu),
            max_value=5,
            runs=n,
            notes=disk_note,
            file_create_us_before=round(before_us, 1),
            file_create_us_after=round(after_us, 1),
            settle_wait_s=round(waited, 1),
        )
    ]
    if os.path.isdir(SHM) and os.access(SHM, os.W_OK):
        # the same, both tools in memory (tmpfs): what the code costs, without the disk
        shm = tempfile.mkdtemp(prefix="gitxp-bench-create-", dir=SHM)
        try:
            times, cpus, mt, mcpu = _side_by_side(shm, n)
        finally:
            shutil.rmtree(shm, ignore_errors=True)  # memory, not disk: nothing to defer
        rows.append(
            result(
                "create_run.tmpfs",
                "Recording",
                "create a run, both tools on tmpfs (/dev/shm)",
                "ms",
                med(times),
                "MLflow create_run + log_batch + set_terminated",
                med(mt),
                cpu=med(cpus),
                peer_cpu=med(mcpu),
                notes="no target; the same work in memory: the code's cost without "
                "this machine's file-system latency",
                runs=n,
            )
        )
    rows.append(
        result(
            "create_run.first_in_process",
            "Recording",
            "first run in a fresh process (environment captured)",
            "ms",
            med(firsts),
            notes="no peer; the environment capture is paid once per process",
            samples=firsts,
        )
    )
    emit(rows)


if __name__ == "__main__":
    main("--quick" in sys.argv)
