"""What system-metrics sampling costs the training loop.

    python benchmarks/system_metrics_overhead.py [--quick]

Three figures, each measured with and without a sampler running every
0.1 s (100x more often than the default 10 s, to make any cost visible),
alternating the two so machine noise hits both equally, medians reported:
- `log_metric` calls per second in a tight loop (the GIL is shared with the
  sampler thread, so this is where contention would show first);
- steps per second of a CPU training step stand-in (a 256x256 numpy matmul);
- the time one sample takes (CPU, memory, process tree, disk, network).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time


def _repo() -> str:
    path = tempfile.mkdtemp(prefix="gitxp-bench-sysmetrics-")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com"}
    env.update(GIT_COMMITTER_NAME="b", GIT_COMMITTER_EMAIL="b@example.com")
    subprocess.run(["git", "init", "-q", path], check=True, env=env)
    subprocess.run(
        ["git", "-C", path, "commit", "-q", "--allow-empty", "-m", "i"], check=True, env=env
    )
    os.environ.update(env)
    return path


def _log_rate(repo: str, sampled: bool, n: int) -> float:
    import gitxp

    run = gitxp.start_run(
        repo=repo, snapshot=False, system_metrics=sampled, system_metrics_seconds=0.1
    )
    log = run.log_metric
    t = time.perf_counter()
    for i in range(n):
        log("loss", 0.5, i)
    took = time.perf_counter() - t
    run.end()
    return n / took


def _step_rate(repo: str, sampled: bool, seconds: float) -> float:
    import numpy as np

    import gitxp

    a = np.random.default_rng(0).normal(size=(256, 256))
    run = gitxp.start_run(
        repo=repo, snapshot=False, system_metrics=sampled, system_metrics_seconds=0.1
    )
    steps = 0
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        a = np.tanh(a @ a.T / 256)
        run.log_metric("loss", float(a[0, 0]), steps)
        steps += 1
    rate = steps / (time.perf_counter() - t)
    run.end()
    return rate


def _sample_ms(k: int) -> float:
    from gitxp.tracking.system_metrics import Probe

    probe = Probe()
    times = []
    for _ in range(k):
        time.sleep(0.02)
        t = time.perf_counter()
        probe.sample()
        times.append((time.perf_counter() - t) * 1000)
    probe.close()
    return statistics.median(times)


def main(quick: bool) -> None:
    repo = _repo()
    rounds = 3 if quick else 5
    n = 300_000 if quick else 1_000_000
    import gitxp

    gitxp.start_run(repo=repo, snapshot=False).end()  # environment capture out of the way
    log_off, log_on, step_off, step_on = [], [], [], []
    for _ in range(rounds):
        log_off.append(_log_rate(repo, False, n))
        log_on.append(_log_rate(repo, True, n))
        step_off.append(_step_rate(repo, False, 2.0))
        step_on.append(_step_rate(repo, True, 2.0))
    lo, ln = statistics.median(log_off), statistics.median(log_on)
    so, sn = statistics.median(step_off), statistics.median(step_on)
    print(f"log_metric calls/s  without sampler: {lo:,.0f}  with (0.1 s): {ln:,.0f}  "
          f"change: {100 * (ln - lo) / lo:+.1f}%")  # fmt: skip
    print(f"training steps/s    without sampler: {so:,.1f}  with (0.1 s): {sn:,.1f}  "
          f"change: {100 * (sn - so) / so:+.1f}%")  # fmt: skip
    print(f"one sample takes {_sample_ms(50):.2f} ms (median of 50)")
    print(f"rounds: {rounds}, machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}")


if __name__ == "__main__":
    main("--quick" in sys.argv)
