"""PyTorch Lightning: a `Logger` that records hyper-parameters, metrics and checkpoints.

    from gitxp.integrations.lightning import GitxpLogger

    trainer = lightning.Trainer(logger=GitxpLogger(experiment="mnist"), max_epochs=3)
    trainer.fit(model, data)

`self.save_hyperparameters()` in the LightningModule becomes the run's
params, `self.log(...)` its metrics, at the trainer's global step. With
`log_checkpoints=True` the best checkpoint (and the last one, when the
ModelCheckpoint keeps one) is stored as an artifact when training ends;
with `"all"` every checkpoint is stored as soon as it is written.

Needs `pip install 'gitxp[lightning]'` (install torch first). Only rank 0
records; other ranks of a distributed job log nothing.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from ._frameworks import RunCallback, clean_params, log_params, metric_values, require, warn

_pl = require("lightning.pytorch", "the Lightning logger", "lightning", "lightning")

from lightning.fabric.loggers.logger import rank_zero_experiment  # noqa: E402
from lightning.pytorch.loggers.logger import Logger  # noqa: E402
from lightning.pytorch.utilities import rank_zero_only  # noqa: E402

__all__ = ["GitxpLogger"]

_STATUS = {"success": "FINISHED", "finished": "FINISHED", "failed": "FAILED"}


class GitxpLogger(RunCallback, Logger):  # type: ignore[misc,unused-ignore]
    """Records a Lightning training into a gitxp run (the active one, or one it starts).

    *log_checkpoints*: False (default), True (best and last checkpoint at the
    end), or "all" (every checkpoint as it is saved). *prefix* is put in
    front of every metric key. *experiment*, *name*, *tags*, *repo* and
    *system_metrics* are used when the logger starts its own run; pass *run*
    to write into a specific one.
    """

    def __init__(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        run: Any = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | os.PathLike[str] | None = None,
        log_checkpoints: bool | str = False,
        prefix: str = "",
        system_metrics: bool | None = None,
    ) -> None:
        if log_checkpoints not in (True, False, "all"):
            raise ValueError(
                f"log_checkpoints must be True, False or 'all', not {log_checkpoints!r}"
            )
        super().__init__(
            experiment, name, run=run, tags=tags, repo=repo, system_metrics=system_metrics
        )
        self._log_checkpoints = log_checkpoints
        self._prefix = prefix
        self._checkpoint_callback: Any = None
        self._logged: dict[str, float] = {}  # checkpoint path -> mtime already stored

    # -- what Lightning asks of a logger -------------------------------------
    @property
    def name(self) -> str:
        """The experiment name (Lightning shows it in its progress output)."""
        if self._handle.started:
            return str(self._handle.get().experiment)
        return str(self._handle._start_args["experiment"] or "default")

    @property
    def version(self) -> str:
        """The run id."""
        return self._handle.run_id or str(self.experiment.id)

    @property
    def save_dir(self) -> str | None:
        return None  # runs live in git; checkpoints go to the trainer's default_root_dir

    @property
    @rank_zero_experiment
    def experiment(self) -> Any:
        """The gitxp `Run` this logger writes to (started on first use)."""
        return self._handle.get()

    @rank_zero_only
    def log_hyperparams(
        self, params: Mapping[str, Any] | argparse.Namespace, *args: Any, **kwargs: Any
    ) -> None:
        if isinstance(params, argparse.Namespace):
            params = vars(params)
        if not params:
            return
        log_params(self.experiment, clean_params(dict(params)), "hyper-parameters")

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        values = metric_values(metrics, self._prefix)
        if values:
            self.experiment.log_metrics(values, step=step)

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if not self._log_checkpoints:
            return
        self._checkpoint_callback = checkpoint_callback
        if self._log_checkpoints == "all":
            self._store_checkpoints(checkpoint_callback, everything=True)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        if self._log_checkpoints and self._checkpoint_callback is not None and self._handle.started:
            try:
                self._store_checkpoints(self._checkpoint_callback, everything=False)
            except Exception as exc:
                warn(f"could not store the checkpoints: {exc}")
                status = "failed"
        self._handle.finish(_STATUS.get(status, "FAILED"))

    # -- checkpoints ----------------------------------------------------------
    def _store_checkpoints(self, callback: Any, everything: bool) -> None:
        """Store new or rewritten checkpoint files under `checkpoints/<file name>`."""
        paths: list[str] = []
        best = getattr(callback, "best_model_path", "") or ""
        last = getattr(callback, "last_model_path", "") or ""
        if everything:
            paths.extend(getattr(callback, "best_k_models", {}) or {})
        paths.extend(p for p in (best, last) if p)
        run = self.experiment
        for path in dict.fromkeys(str(p) for p in paths):
            if not os.path.isfile(path):
                continue
            mtime = os.path.getmtime(path)
            if self._logged.get(path) == mtime:
                continue
            run.log_artifact(path, f"checkpoints/{os.path.basename(path)}")
            self._logged[path] = mtime
        if best and os.path.isfile(best):
            run.set_tag("best_checkpoint", f"checkpoints/{os.path.basename(best)}")
