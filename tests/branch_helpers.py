"""A repository shaped like a pull request: a main with runs, a feature branch with its own."""

from __future__ import annotations

from pathlib import Path

import gitxp
from tests.gitutil import git


def record(
    path: Path,
    name: str,
    acc: float,
    loss: float,
    lr: float,
    status: str = "FINISHED",
    experiment: str = "mnist",
    **params: object,
) -> str:
    """One run in *path*: `acc` rising to *acc* and `loss` falling to *loss* over 5 steps."""
    with gitxp.start_run(
        experiment=experiment,
        name=name,
        params={"lr": lr, "epochs": 5, **params},
        repo=path,
    ) as run:
        for step in range(5):
            run.log_metrics({"acc": acc * (step + 1) / 5, "loss": loss * (5 - step)}, step=step)
        if status != "FINISHED":
            run.end(status=status)
        return run.id


def commit(path: Path, line: str, message: str) -> str:
    """Append *line* to train.py and commit it; returns the new commit id."""
    with (path / "train.py").open("a") as f:
        f.write(line + "\n")
    git(path, "commit", "-q", "-am", message)
    return git(path, "rev-parse", "HEAD").strip()


def make_pull_request(path: Path) -> dict[str, str]:
    """In the repository *path* (on main, one commit), build:

    - main: runs base-a and base-b on the first commit, one FAILED run with the
      highest acc of all; then commit M1 and run base-c on it with uncommitted changes;
    - other (from the first commit): commit O1 and run other-x (acc 0.99), reachable
      from neither main nor feature;
    - feature (from the first commit, checked out at the end): commit F1, run feat-1,
      run feat-dirty with uncommitted changes on F1, then commit F2 (no run).

    Returns the run ids by name, and the commits under "c0", "m1", "o1", "f1", "f2".
    """
    ids = {"c0": git(path, "rev-parse", "HEAD").strip()}
    ids["base-a"] = record(path, "base-a", 0.90, 0.30, 0.1)
    ids["base-b"] = record(path, "base-b", 0.88, 0.25, 0.2)
    ids["failed"] = record(path, "crashed-one", 0.999, 0.01, 0.3, status="FAILED")
    git(path, "checkout", "-q", "-b", "other")
    ids["o1"] = commit(path, "# other idea", "Try another idea")
    ids["other-x"] = record(path, "other-x", 0.99, 0.05, 0.4)
    git(path, "checkout", "-q", "main")
    ids["m1"] = commit(path, "# main moves on", "Tune the schedule")
    (path / "train.py").write_text((path / "train.py").read_text() + "# local edit\n")
    ids["base-c"] = record(path, "base-c", 0.95, 0.27, 0.1)
    git(path, "checkout", "-q", "--", "train.py")
    git(path, "checkout", "-q", "-b", "feature", ids["c0"])
    ids["f1"] = commit(path, "dropout = 0.5", "Add dropout")
    ids["feat-1"] = record(path, "feat-1", 0.93, 0.28, 0.05)
    (path / "train.py").write_text((path / "train.py").read_text() + "dropout = 0.3\n")
    ids["feat-dirty"] = record(path, "feat-dirty", 0.96, 0.31, 0.05)
    git(path, "checkout", "-q", "--", "train.py")
    ids["f2"] = commit(path, "# cleanup", "Clean up | <b>@ada</b> *bold*")
    return ids
