"""The demo: a small project in a new directory, a few recorded runs, and how to look at them."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable

TRAIN_SCRIPT = '''\
"""Toy logistic regression on a synthetic two-class problem (numpy only)."""
import numpy as np

import gitxp


def train(lr: float, epochs: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 4))
    y = (x @ np.array([1.5, -2.0, 0.5, 1.0]) + rng.normal(scale=0.5, size=400) > 0).astype(float)
    w = np.zeros(4)
    with gitxp.start_run(experiment="toy-logreg", params={"lr": lr, "epochs": epochs, "seed": seed}) as run:
        for epoch in range(epochs):
            p = 1 / (1 + np.exp(-(x @ w)))
            w -= lr * x.T @ (p - y) / len(y)
            loss = float(-np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)))
            run.log_metrics({"loss": loss, "acc": float(np.mean((p > 0.5) == y))}, step=epoch)


if __name__ == "__main__":
    for lr in (0.01, 0.1, 1.0):
        for epochs in (10, 50):
            train(lr, epochs)
'''


def run_demo(path: str | None = None, echo: Callable[[str], None] = print) -> str:
    """Create a demo project at *path* (default: a new temporary directory) and record runs."""
    from .repo import init
    from .tracking import start_run  # noqa: F401  (imported by the script)

    target = os.path.abspath(path) if path else tempfile.mkdtemp(prefix="gitxp-demo-")
    if os.path.exists(target) and os.listdir(target):
        from ._errors import GitxpError

        raise GitxpError(f"{target} is not empty; give the demo a new or empty directory")
    repo, _ = init(target)
    repo.close()
    with open(os.path.join(target, "train.py"), "w", encoding="utf-8") as f:
        f.write(TRAIN_SCRIPT)
    echo(f"Recording 6 runs of a toy logistic regression in {target} ...")
    env = {**os.environ, "GIT_AUTHOR_NAME": os.environ.get("GIT_AUTHOR_NAME", "gitxp demo"),
           "GIT_AUTHOR_EMAIL": os.environ.get("GIT_AUTHOR_EMAIL", "demo@gitxp.invalid")}
    import sys

    subprocess.run([sys.executable, "train.py"], cwd=target, check=True, env=env)
    return target
