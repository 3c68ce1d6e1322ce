"""The demo: an iris project in a new directory, a sweep recorded with `gitxp run`, a diff, a reproduction.

`gitxp demo` shows it step by step; `run_demo()` is the same in Python.
The demo needs scikit-learn (`pip install 'gitxp[demo]'`). It never looks
at the current directory: everything happens in the demo's own repository.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..errors import GitxpError

EXPERIMENT = "iris"

TRAIN_SCRIPT = '''\
"""Iris flowers, multinomial logistic regression (scikit-learn), recorded by gitxp.

Run it through gitxp:   gitxp run -e iris -p C=0.5 -- python train.py
Inside `gitxp run`, gitxp.active_run() is the run and its params are the -p values.
"""

import warnings

from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import gitxp

DEFAULTS = {"C": 1.0, "epochs": 15, "iters_per_epoch": 2, "test_size": 0.4, "seed": 0}

run = gitxp.active_run() or gitxp.start_run(experiment="iris")
params = {**DEFAULTS, **run.params}
run.log_params({k: v for k, v in params.items() if k not in run.params})

X, y = load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=params["test_size"], random_state=params["seed"], stratify=y
)
scaler = StandardScaler().fit(X_train)
X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)

model = LogisticRegression(C=params["C"], max_iter=params["iters_per_epoch"], warm_start=True)
warnings.simplefilter("ignore", ConvergenceWarning)  # we stop early on purpose, per epoch
for epoch in range(params["epochs"]):
    model.fit(X_train, y_train)
    run.log_metrics(
        {
            "loss": log_loss(y_train, model.predict_proba(X_train)),
            "val_loss": log_loss(y_test, model.predict_proba(X_test)),
            "accuracy": accuracy_score(y_test, model.predict(X_test)),
        },
        step=epoch,
    )

predicted = model.predict(X_test)
f1 = f1_score(y_test, predicted, average="macro")
run.log_metric("f1_macro", f1)
print(f"C={params['C']:g}: accuracy {accuracy_score(y_test, predicted):.3f}, f1 {f1:.3f}")
'''

README = """\
# iris — a gitxp demo project

`train.py` fits a logistic regression on the iris flowers and logs its
metrics with gitxp. Every run is a commit on `refs/gitxp/runs/<id>`:

    gitxp log --format table --order-by "metrics.accuracy DESC"
    gitxp run -e iris -p C=2 -p epochs=30 -- python train.py
    gitxp diff <run> <run>
    gitxp reproduce <run>
    git log --glob=refs/gitxp/runs --oneline
"""

# A small sweep over the regularisation strength, plus one under-trained run.
SWEEP: list[dict[str, Any]] = [
    {"C": 0.01},
    {"C": 0.03},
    {"C": 0.1},
    {"C": 1.0},
    {"C": 10.0},
    {"C": 1.0, "epochs": 2},
]


@dataclass
class DemoResult:
    """What the demo did: where, which runs, the best and worst, and the reproduction."""

    path: str
    runs: list[Any] = field(default_factory=list)  # LaunchResult, in sweep order
    best: dict[str, Any] | None = None
    worst: dict[str, Any] | None = None
    diff: Any = None  # comparison.RunDiff
    reproduction: Any = None  # reproduction.ReproduceResult


def require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise GitxpError(
            "the demo needs scikit-learn: pip install 'gitxp[demo]' (or pip install scikit-learn)"
        ) from None


def check_target(path: str | os.PathLike[str] | None) -> None:
    """Refuse a demo directory that exists and is not empty (before any slow work)."""
    if path is None:
        return
    target = os.path.abspath(os.fspath(path))
    if os.path.exists(target) and (not os.path.isdir(target) or os.listdir(target)):
        raise GitxpError(f"{target} is not an empty directory; give the demo a new one")


def create_project(path: str | os.PathLike[str] | None = None) -> str:
    """Create the demo project (train.py, README.md) as a new git repository; return its path.

    The repository is new even when *path* lies inside another work tree.
    """
    from ..git.commit import commit_all, create_repository

    if path is None:
        target = tempfile.mkdtemp(prefix="gitxp-demo-")
    else:
        check_target(path)
        target = os.path.abspath(os.fspath(path))
        os.makedirs(target, exist_ok=True)
    git = create_repository(target)
    try:
        files = {"train.py": TRAIN_SCRIPT, "README.md": README, ".gitignore": "__pycache__/\n"}
        for name, text in files.items():
            with open(os.path.join(target, name), "w", encoding="utf-8") as f:
                f.write(text)
        commit_all(git, "iris: logistic regression demo project")
        os.makedirs(git.gitxp_dir(), exist_ok=True)
    finally:
        git.close()
    return target


def command_line(overrides: dict[str, Any]) -> str:
    """How a sweep point looks when typed by hand."""
    params = " ".join(f"-p {k}={v}" for k, v in overrides.items())
    return f"gitxp run -e {EXPERIMENT} {params} -- python train.py"


def record_sweep(
    target: str,
    on_done: Callable[[dict[str, Any], Any], None] | None = None,
    workers: int = 2,
) -> list[Any]:
    """Record every point of SWEEP with `gitxp run` (two at a time); return the LaunchResults."""
    from .launch import launch

    def one(overrides: dict[str, Any]) -> Any:
        result = launch(
            [sys.executable, "train.py"],
            experiment=EXPERIMENT,
            params=overrides,
            repo=target,
            cwd=target,
            stream=False,
        )
        if on_done is not None:
            on_done(overrides, result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(one, SWEEP))
    failed = [r for r in results if r.status != "FINISHED"]
    if failed:
        raise GitxpError(
            f"demo run {failed[0].name} {failed[0].status} (exit code {failed[0].exit_code}); "
            f"see `gitxp -C {shlex.quote(target)} show {shlex.quote(failed[0].name)}`"
        )
    return results


def best_and_worst(target: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The runs with the highest and the lowest accuracy (validation loss breaks ties)."""
    from ..store.repo import open as open_repo

    with open_repo(target) as repo:
        rows = [r for r in repo.rows(experiment=EXPERIMENT) if r["status"] == "FINISHED"]
    if len(rows) < 2:
        raise GitxpError("the demo needs at least two finished runs")

    def score(row: dict[str, Any]) -> tuple[float, float]:
        m = row.get("metrics") or {}
        return (m.get("accuracy") or 0.0, -(m.get("val_loss") or 0.0))

    ranked = sorted(rows, key=score, reverse=True)
    return ranked[0], ranked[-1]


def run_demo(
    path: str | os.PathLike[str] | None = None,
    on_run: Callable[[dict[str, Any], Any], None] | None = None,
    stream_reproduction: bool = False,
) -> DemoResult:
    """Everything `gitxp demo` does, returned instead of printed."""
    from .compare import diff
    from .reproduce import reproduce

    check_target(path)
    require_sklearn()
    target = create_project(path)
    result = DemoResult(path=target)
    result.runs = record_sweep(target, on_run)
    result.best, result.worst = best_and_worst(target)
    result.diff = diff(result.best["id"], result.worst["id"], repo=target)
    result.reproduction = reproduce(result.best["id"], repo=target, stream=stream_reproduction)
    return result
