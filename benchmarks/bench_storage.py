"""Bytes on disk per metric point: the whole store divided by the points it holds.

The same runs (5 params, 3 metrics x 100 steps each) in gitxp's git store
and in MLflow's sqlite file. gitxp is reported three ways: the apparent
size of what it wrote (loose objects, run refs and their reflogs; the
rebuildable listing cache left out), the blocks those files occupy, and
the size after `git gc` packs them (what a push sends).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from .common import METRIC_KEYS, STEPS, discard, emit, quiet_env, result
from .fixtures import ensure, gitxp_path, mlflow_path


def _sizes(*dirs: str) -> tuple[int, int]:
    apparent = blocks = 0
    for d in dirs:
        for base, _, files in os.walk(d):
            for name in files:
                st = os.lstat(os.path.join(base, name))
                apparent += st.st_size
                blocks += st.st_blocks * 512
    return apparent, blocks


def main(quick: bool) -> None:
    n = 300 if quick else 2000
    ensure("gitxp", [n])
    ensure("mlflow", [n])
    points = n * len(METRIC_KEYS) * STEPS
    git = os.path.join(gitxp_path(n), ".git")
    apparent, blocks = _sizes(
        os.path.join(git, "objects"),
        os.path.join(git, "refs", "gitxp"),
        os.path.join(git, "logs", "refs", "gitxp"),
    )
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-store-")
    try:
        copy = os.path.join(tmp, "repo")
        subprocess.run(
            ["git", "clone", "-q", "--mirror", gitxp_path(n), copy], check=True, env=quiet_env()
        )
        subprocess.run(["git", "-C", copy, "gc", "-q", "--prune=now"], check=True, env=quiet_env())
        packed, _ = _sizes(os.path.join(copy, "objects"))
    finally:
        discard(tmp)
    mlflow_bytes = os.path.getsize(os.path.join(mlflow_path(n), "mlflow.db"))
    per = apparent / points
    emit(
        [
            result(
                "storage",
                "Storage",
                f"bytes on disk per metric point ({n:,} runs, {points:,} points)",
                "B",
                per,
                "MLflow sqlite",
                mlflow_bytes / points,
                ratio_min=20,
                runs=n,
                points=points,
                gitxp_apparent_bytes=apparent,
                gitxp_block_bytes=blocks,
                gitxp_packed_bytes=packed,
                mlflow_bytes=mlflow_bytes,
                notes=f"gitxp after `git gc`: {packed / points:.1f} B/point; "
                f"in file-system blocks (loose objects): {blocks / points:.1f} B/point",
            ),
            result(
                "storage.packed",
                "Storage",
                "bytes per metric point after `git gc`",
                "B",
                packed / points,
                "MLflow sqlite",
                mlflow_bytes / points,
                runs=n,
                notes="packed objects are what `git push` sends",
            ),
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
