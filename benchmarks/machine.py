"""A description of the machine and software the figures were measured on."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from typing import Any

from .common import SCRATCH, discard

PACKAGES = (
    "gitxp",
    "dulwich",
    "pyarrow",
    "pandas",
    "numpy",
    "click",
    "mlflow",
    "tensorboardX",
    "dvc",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_version() -> str:
    try:
        return subprocess.run(
            ["git", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_create_us(directory: str, n: int = 300, keep: bool = False) -> float:
    """Microseconds to create, write (100 bytes) and close one new file in *directory*.

    With *keep*, the files are put aside for the suite to delete at its end
    (deleting files is what slows this VM's disk) instead of deleted now.
    """
    import tempfile

    d = tempfile.mkdtemp(prefix="gitxp-bench-fs-", dir=directory)
    try:
        t = time.perf_counter()
        for i in range(n):
            with open(os.path.join(d, f"f{i}"), "xb") as f:
                f.write(b"x" * 100)
        return (time.perf_counter() - t) / n * 1e6
    finally:
        if keep:
            discard(d)
        else:
            shutil.rmtree(d, ignore_errors=True)


def describe() -> dict[str, Any]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "git": _git_version(),
        "packages": versions,
        "load_average": [round(x, 2) for x in load],
        # what one new file costs where the measures write, and in /tmp for comparison
        "file_create_us": {
            "scratch": round(file_create_us(SCRATCH), 1),
            "/tmp": round(file_create_us("/tmp"), 1),
        },
    }
