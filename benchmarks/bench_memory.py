"""Peak memory (RSS) of a run that logs 10 million points, measured in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from .common import ROOT, discard, emit, quiet_env, result
from .fixtures import init_project

CHILD = r"""
import resource, sys, time
import gitxp

n = int(sys.argv[2])
t = time.perf_counter()
with gitxp.start_run(repo=sys.argv[1], snapshot=False) as run:
    log = run.log_metric
    for i in range(n):
        log("loss", 1.0 / (i + 1), i)
elapsed = time.perf_counter() - t
with open("/proc/self/status") as f:
    hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, hwm, elapsed)
"""


def main(quick: bool) -> None:
    n = 10_000_000
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-mem-")
    try:
        repo = os.path.join(tmp, "p")
        init_project(repo)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, repo, str(n)],
            check=True,
            cwd=ROOT,
            env=quiet_env(),
            capture_output=True,
            text=True,
        ).stdout
        maxrss_kb, hwm_kb, elapsed = out.split()
        import gitxp

        with gitxp.open(repo) as r:
            count = r.run(r.rows()[0]["id"]).summary["loss"]["count"]
        assert count == n, count
    finally:
        discard(tmp)
    emit(
        [
            result(
                "memory.10m",
                "Memory",
                "peak RSS of a run logging 10M points",
                "MB",
                int(maxrss_kb) / 1024,
                max_value=300,
                points=n,
                vmhwm_mb=int(hwm_kb) / 1024,
                seconds=float(elapsed),
                notes=f"{float(elapsed):.1f} s for the 10M points",
            )
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
