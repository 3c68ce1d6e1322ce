"""Keras 3: a `Callback` that records `model.fit()` into a gitxp run.

    from gitxp.integrations.keras import GitxpCallback

    model.fit(x, y, epochs=5, callbacks=[GitxpCallback()])

Epoch metrics (`loss`, `accuracy`, `val_loss`, ...) are recorded at the
epoch number (0-based); batch metrics, which Keras reports as running
means over the epoch, go to `batch/<name>` at the global batch number
(every `log_every_n_batches`, 0 turns them off). The fit settings
(`epochs`, `steps`), the optimizer's config (`optimizer/...`) and, with
`log_model_config=True`, the model's config (`model_config`, nested) become
params. Works with every Keras 3 backend (JAX, TensorFlow, PyTorch).

Needs `pip install 'gitxp[keras]'` plus a backend (torch, jax or tensorflow).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ._frameworks import (
    RunCallback,
    clean_params,
    log_params,
    metric_values,
    param_value,
    require,
    warn,
)

require("keras", "the Keras callback", "keras")

import keras  # noqa: E402

__all__ = ["GitxpCallback"]


class GitxpCallback(RunCallback, keras.callbacks.Callback):  # type: ignore[misc,unused-ignore]
    """Records a Keras training into a gitxp run (the active one, or one it starts).

    *experiment*, *name*, *tags*, *repo* and *system_metrics* are used when
    the callback starts its own run (which it ends when fit() returns);
    pass *run* to write into a specific one.
    """

    def __init__(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        run: Any = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | os.PathLike[str] | None = None,
        log_every_n_batches: int = 1,
        log_model_config: bool = True,
        system_metrics: bool | None = None,
    ) -> None:
        if not isinstance(log_every_n_batches, int) or log_every_n_batches < 0:
            raise ValueError("log_every_n_batches must be a whole number >= 0")
        super().__init__(
            experiment, name, run=run, tags=tags, repo=repo, system_metrics=system_metrics
        )
        self.log_every_n_batches = log_every_n_batches
        self.log_model_config = log_model_config
        self._batches = 0  # global batch counter across epochs and fit() calls

    @property
    def run(self) -> Any:
        """The gitxp `Run` being written (started on first use)."""
        return self._handle.get()

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        params: dict[str, Any] = {}
        fit = {k: v for k, v in (self.params or {}).items() if k in ("epochs", "steps", "verbose")}
        params.update(clean_params(fit))
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and hasattr(optimizer, "get_config"):
            config = optimizer.get_config()
            params.update(clean_params(config, prefix="optimizer/"))
        if self.log_model_config:
            try:
                params["model_config"] = param_value(self.model.get_config())
            except Exception as exc:  # subclassed models without get_config
                warn(f"the model config was not recorded: {exc}")
        log_params(self.run, params, "training params")

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._batches += 1
        n = self.log_every_n_batches
        if n and logs and self._batches % n == 0:
            values = metric_values(logs, prefix="batch/")
            if values:
                self.run.log_metrics(values, step=self._batches - 1)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        values = metric_values(logs or {})
        if values:
            self.run.log_metrics(values, step=int(epoch))

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        self._handle.finish("FINISHED")
