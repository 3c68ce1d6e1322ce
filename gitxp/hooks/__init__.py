"""gitxp's hooks: guard commits and pushes (pre-commit framework or plain git hooks).

    no-run-outputs  pre-commit  no mlruns/, wandb/, event files, big checkpoints in commits
    push-runs       pre-push    push the runs of the pushed commits along with them
    metric-gate     pre-push    the pushed commit's newest finished run must meet the gate
    validate        manual      every run ref is a readable format-v1 run

Each lives in its own module as `main(argv) -> int` beside a pure helper;
`gitxp hook <name>` and `.pre-commit-hooks.yaml` call them. All are quiet
on success and return 0 outside a git repository.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import import_module

# hook name -> module in this package
HOOKS: dict[str, str] = {
    "no-run-outputs": "no_run_outputs",
    "push-runs": "push_runs",
    "metric-gate": "metric_gate",
    "validate": "validate",
}


def skipped(name: str, environ: dict[str, str] | None = None) -> bool:
    """Whether GITXP_SKIP (comma-separated hook names, or `all`) turns hook *name* off."""
    value = (os.environ if environ is None else environ).get("GITXP_SKIP", "")
    names = {n.strip() for n in value.split(",") if n.strip()}
    return name in names or f"gitxp-{name}" in names or "all" in names


def run_hook(name: str, argv: Sequence[str] = ()) -> int:
    """Run hook *name* with *argv*; its exit status (0 when skipped with GITXP_SKIP)."""
    if skipped(name):
        return 0
    module = import_module(f"{__name__}.{HOOKS[name]}")
    return int(module.main(list(argv)))
