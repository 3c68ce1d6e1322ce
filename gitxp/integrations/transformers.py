"""Hugging Face Transformers: a `TrainerCallback` that records a `Trainer` run.

    from gitxp.integrations.transformers import GitxpCallback

    trainer = Trainer(model=model, args=args, train_dataset=train,
                      callbacks=[GitxpCallback(log_model=True)])
    trainer.train()

The training arguments become params (tokens are masked by Transformers
before gitxp sees them), the model's config becomes `model/<key>` params,
everything the Trainer logs (loss, learning rate, grad norm, eval metrics,
runtime) becomes metrics at the trainer's global step, and with
`log_model=True` the final model (and tokenizer or processor) is saved
with `save_pretrained` and stored as the artifact `model`.

Needs `pip install 'gitxp[transformers]'` (install torch first). Only the
main process (world rank 0) records. Pass `report_to="none"` in
TrainingArguments if you do not want Transformers' own integrations too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

from ._frameworks import RunCallback, clean_params, log_params, metric_values, require, warn

require("transformers", "the Transformers callback", "transformers")

from transformers import TrainerCallback  # noqa: E402

__all__ = ["GitxpCallback"]


class GitxpCallback(RunCallback, TrainerCallback):  # type: ignore[misc,unused-ignore]
    """Records a Transformers `Trainer` into a gitxp run (the active one, or one it starts).

    *log_model* stores the trained model as the artifact *model_name* when
    training ends. *log_model_config* adds the model's config as `model/...`
    params. *experiment*, *name*, *tags*, *repo* and *system_metrics* are used
    when the callback starts its own run; pass *run* to write into a specific one.
    """

    def __init__(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        run: Any = None,
        tags: Mapping[str, Any] | None = None,
        repo: str | os.PathLike[str] | None = None,
        log_model: bool = False,
        model_name: str = "model",
        log_model_config: bool = True,
        system_metrics: bool | None = None,
    ) -> None:
        super().__init__(
            experiment, name, run=run, tags=tags, repo=repo, system_metrics=system_metrics
        )
        self.log_model = log_model
        self.model_name = model_name
        self.log_model_config = log_model_config
        self._training = False

    @property
    def run(self) -> Any:
        """The gitxp `Run` being written (started on first use)."""
        return self._handle.get()

    def _params(self, params: Mapping[str, Any]) -> None:
        log_params(self.run, params, "training params")

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._training = True
        self._params(clean_params(args.to_dict()))
        config = getattr(model, "config", None)
        if self.log_model_config and config is not None and hasattr(config, "to_dict"):
            self._params(clean_params(config.to_dict(), prefix="model/"))

    def on_log(
        self, args: Any, state: Any, control: Any, logs: Mapping[str, Any] | None = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero or not logs:
            return
        values = metric_values(logs)
        if values:
            self.run.log_metrics(values, step=int(state.global_step))

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        if not state.is_world_process_zero:
            return
        self._training = False
        status = "FINISHED"
        if self.log_model and model is not None:
            try:
                self._store_model(model, kw.get("processing_class") or kw.get("tokenizer"))
            except Exception as exc:
                warn(f"could not store the model: {exc}")
                status = "FAILED"
        self.run.checkpoint()
        self._handle.end(status)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        # trainer.evaluate() outside train(): its metrics were logged just before; commit them
        if state.is_world_process_zero and not self._training:
            self._handle.finish()

    def _store_model(self, model: Any, processor: Any) -> None:
        with tempfile.TemporaryDirectory(prefix="gitxp-model-") as tmp:
            model.save_pretrained(tmp)
            if processor is not None and hasattr(processor, "save_pretrained"):
                processor.save_pretrained(tmp)
            self.run.log_artifact(tmp, self.model_name)
