"""What logging costs on a rank that does not record (rank 1 of a torchrun job).

gitxp's inert run (`gitxp.start_run()` on rank 1, then `run.log_metric`)
against Lightning's way of silencing the other ranks, a logging function
wrapped in `rank_zero_only` called on rank 1. Both do nothing but return;
the figure is the price of the call. Also timed: `gitxp.start_run()` on
rank 1 (no repository is opened, nothing is written).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

from .common import cpu_now, discard, emit, result
from .fixtures import init_project


def _per_call_us(call: object, n: int) -> tuple[float, float]:
    """Best of three: µs per call of *call*("loss", value, step), wall and CPU."""
    best, best_cpu = [], []
    for _ in range(3):
        c = cpu_now()
        t = time.perf_counter()
        for i in range(n):
            call("loss", 0.5, i)  # type: ignore[operator]
        best.append(time.perf_counter() - t)
        best_cpu.append(cpu_now() - c)
    return min(best) / n * 1e6, min(best_cpu) / n * 1e6


def main(quick: bool) -> None:
    n = 300_000 if quick else 2_000_000
    os.environ.update(RANK="1", WORLD_SIZE="2", TORCHELASTIC_RUN_ID="bench")
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-ranks-")
    try:
        import gitxp

        repo = os.path.join(tmp, "gitxp")
        init_project(repo)
        gitxp.start_run(repo=repo).end()  # imports out of the measure
        t = time.perf_counter()
        for _ in range(100):
            gitxp.start_run(repo=repo).end()
        start_ms = (time.perf_counter() - t) / 100 * 1e3
        run = gitxp.start_run(repo=repo)
        assert run.inert
        inert, inert_cpu = _per_call_us(run.log_metric, n)
        run.end()

        from lightning.pytorch.utilities import rank_zero_only

        rank_zero_only.rank = 1

        @rank_zero_only  # type: ignore[misc]
        def log(key: str, value: float, step: int) -> None:
            raise AssertionError("rank 1 must not log")

        peer, peer_cpu = _per_call_us(log, n)
    finally:
        discard(tmp)
    group = "Distributed ranks"
    emit(
        [
            result(
                "ranks.inert_log_metric",
                group,
                "log one point on a rank that does not record",
                "µs",
                inert,
                "Lightning rank_zero_only call",
                peer,
                cpu=inert_cpu,
                peer_cpu=peer_cpu,
                notes="no target in the issue: both are a call that returns",
                calls=n,
            ),
            result(
                "ranks.inert_start_run",
                group,
                "`gitxp.start_run()` and `end()` on a rank that does not record",
                "ms",
                start_ms,
                notes="no peer, no target; nothing is opened or written",
            ),
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
