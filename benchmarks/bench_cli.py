"""Command-line start-up: `gitxp --help` against `mlflow --help`, and `gitxp log -n 20`.

Wall-clock time of the installed console scripts, each a fresh process.
"""

from __future__ import annotations

import os
import sys

from .common import BIN, cmd_cpu, emit, med, result, timecmd
from .fixtures import ensure, gitxp_path


def main(quick: bool) -> None:
    big = 2000 if quick else 10000
    ensure("gitxp", [big])
    gitxp_bin = os.path.join(BIN, "gitxp")
    mlflow_bin = os.path.join(BIN, "mlflow")
    g = med(timecmd([gitxp_bin, "--help"], 7))
    g_cpu = cmd_cpu(7)
    m = med(timecmd([mlflow_bin, "--help"], 3))
    m_cpu = cmd_cpu(3)
    log = med(timecmd([gitxp_bin, "log", "-n", "20"], 7, cwd=gitxp_path(big)))
    log_cpu = cmd_cpu(7)
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
                cpu=g_cpu,
                peer_cpu=m_cpu,
                max_value=0.2,
            ),
            result(
                "cli.log20",
                "Command line",
                f"`gitxp log -n 20` with {big:,} runs",
                "s",
                log,
                max_value=0.3 if big == 10000 else None,
                cpu=log_cpu,
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
