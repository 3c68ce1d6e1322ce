"""Command-line start-up: `gitxp --help` against `mlflow --help`, and `gitxp log -n 20`.

Wall-clock time of the installed console scripts, each a fresh process.
"""

from __future__ import annotations

import os
import sys

from .common import BIN, emit, med, result, timecmd
from .fixtures import ensure, gitxp_path


def main(quick: bool) -> None:
    big = 2000 if quick else 10000
    ensure("gitxp", [big])
    gitxp_bin = os.path.join(BIN, "gitxp")
    mlflow_bin = os.path.join(BIN, "mlflow")
    g = med(timecmd([gitxp_bin, "--help"], 7))
    m = med(timecmd([mlflow_bin, "--help"], 3))
    log = med(timecmd([gitxp_bin, "log", "-n", "20"], 7, cwd=gitxp_path(big)))
    log_json = med(
        timecmd([gitxp_bin, "log", "-n", "20", "--format", "json"], 5, cwd=gitxp_path(big))
    )
    emit(
        [
            result(
                "cli.help",
                "Command line",
                "`--help` start-up",
                "s",
                g,
                "mlflow --help",
                m,
                ratio_min=15,
                max_value=0.2,
            ),
            result(
                "cli.log20",
                "Command line",
                f"`gitxp log -n 20` with {big:,} runs",
                "s",
                log,
                max_value=0.3 if big == 10000 else None,
                runs=big,
            ),
            result(
                "cli.log20.json",
                "Command line",
                f"`gitxp log -n 20 --format json` with {big:,} runs",
                "s",
                log_json,
                runs=big,
                notes="no target",
            ),
        ]
    )


if __name__ == "__main__":
    main("--quick" in sys.argv)
