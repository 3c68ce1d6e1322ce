"""Amortised cost of one image and one histogram through a `SummaryWriter`, close included.

gitxp's `gitxp.tensorboard.SummaryWriter` (the run's start and end commit
included) against tensorboardX's, which writes event files. Both are given
the same precomputed images (3x32x32 floats) and value vectors (1,000
normal samples), at explicit steps, and make their summaries with the same
tensorboardX code; gitxp then keeps them in the run (PNG files and rows of
`tensorboard/histograms.parquet`). Targets: an image within twice
tensorboardX's time (the run's own commits are in gitxp's share), a
histogram no slower.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from typing import Any

from .common import cpu_now, discard, emit, result
from .fixtures import init_project


def _measure(writer: Any, images: Any, values: Any) -> tuple[float, float, float, float]:
    """Seconds (wall, CPU) per image and per histogram, each share of close() included."""
    c, t = cpu_now(), time.perf_counter()
    for i, image in enumerate(images):
        writer.add_image("input", image, i)
    image_wall, image_cpu = time.perf_counter() - t, cpu_now() - c
    c, t = cpu_now(), time.perf_counter()
    for i, sample in enumerate(values):
        writer.add_histogram("fc.weight", sample, i)
    hist_wall, hist_cpu = time.perf_counter() - t, cpu_now() - c
    c, t = cpu_now(), time.perf_counter()
    writer.close()
    close_wall, close_cpu = (time.perf_counter() - t) / 2, (cpu_now() - c) / 2
    n = len(images)
    return (
        (image_wall + close_wall) / n,
        (image_cpu + close_cpu) / n,
        (hist_wall + close_wall) / n,
        (hist_cpu + close_cpu) / n,
    )


def main(quick: bool) -> None:
    import numpy as np
    import tensorboardX

    n = 100 if quick else 400
    rng = np.random.default_rng(0)
    images, values = rng.random((n, 3, 32, 32)), rng.standard_normal((n, 1000))
    tmp = tempfile.mkdtemp(prefix="gitxp-bench-tb-")
    cwd = os.getcwd()
    try:
        repo = os.path.join(tmp, "gitxp")
        init_project(repo)
        os.chdir(repo)
        import gitxp
        from gitxp.tensorboard import SummaryWriter

        gitxp.start_run(snapshot=False).end()  # the environment capture: not measured
        import pandas  # noqa: F401  (imports are not measured: pyarrow's tables load it)

        peer = _measure(tensorboardX.SummaryWriter(os.path.join(tmp, "tbx")), images, values)
        ours = _measure(SummaryWriter("runs/bench"), images, values)
    finally:
        os.chdir(cwd)
        discard(tmp)
    group = "TensorBoard"
    emit(
        [
            result(
                "tensorboard.add_image",
                group,
                "add_image, amortised (close included)",
                "ms",
                ours[0] * 1e3,
                "tensorboardX add_image",
                peer[0] * 1e3,
                ratio_min=0.5,
                cpu=ours[1] * 1e3,
                peer_cpu=peer[1] * 1e3,
                points=n,
            ),
            result(
                "tensorboard.add_histogram",
                group,
                "add_histogram, amortised (close included)",
                "ms",
                ours[2] * 1e3,
                "tensorboardX add_histogram",
                peer[2] * 1e3,
                ratio_min=1,
                cpu=ours[3] * 1e3,
                peer_cpu=peer[3] * 1e3,
                points=n,
            ),
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
