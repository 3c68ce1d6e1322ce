"""`SummaryWriter` with the interface of torch.utils.tensorboard / tensorboardX, recording a gitxp run.

    from gitxp.tensorboard import SummaryWriter   # instead of torch.utils.tensorboard

    writer = SummaryWriter("runs/resnet")
    for step in range(100):
        writer.add_scalar("loss/train", loss, step)
    writer.add_hparams({"lr": 0.1}, {"hparam/acc": 0.9})
    writer.close()

Scalars become metric points (step and wall time kept), hparams become
params (and their metrics, metric points), text goes to the run's notes.
The writer records into the active gitxp run when there is one (it then
leaves ending it to its owner); otherwise it starts a run named after the
log directory and ends it on `close()`. Calls for images, histograms,
graphs and the like are accepted and ignored, with one warning each, so
existing training code runs unchanged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from .tensorboard import clean_key

__all__ = ["SummaryWriter"]

log = logging.getLogger("gitxp.integrations.tensorboard_writer")


class SummaryWriter:
    """Records TensorBoard-style summaries into a gitxp run."""

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
        *,
        experiment: str | None = None,
        repo: str | os.PathLike[str] | None = None,
        **_: Any,
    ) -> None:
        from ..tracking import fluent as tracking

        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        active = tracking.active_run()
        self._owned = active is None
        if active is None:
            name = os.path.basename(self.log_dir.rstrip("/\\")) if self.log_dir else None
            name = f"{name}{comment}" if name and comment else (name or comment or None)
            active = tracking.start_run(experiment=experiment, name=name, repo=repo)
        self.run = active
        self._warned: set[str] = set()
        self._closed = False

    # -- the calls that carry data gitxp records ---------------------------------------------
    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        new_style: bool = False,
        double_precision: bool = False,
    ) -> None:
        """Record one point of the metric *tag*."""
        value = scalar_value.item() if hasattr(scalar_value, "item") else scalar_value
        self.run.log_metric(clean_key(tag), value, _step(global_step), _ms(walltime))

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: Mapping[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Record several related metrics, each as ``<main_tag>/<tag>``."""
        for tag, value in tag_scalar_dict.items():
            self.add_scalar(f"{main_tag}/{tag}", value, global_step, walltime)

    def add_hparams(
        self,
        hparam_dict: Mapping[str, Any],
        metric_dict: Mapping[str, Any],
        hparam_domain_discrete: Any = None,
        run_name: str | None = None,
        global_step: int | None = None,
    ) -> None:
        """Record hyperparameters as params and their result metrics as metric points."""
        self.run.log_params({k: _plain(v) for k, v in hparam_dict.items()})
        for key, value in metric_dict.items():
            self.add_scalar(key, value, global_step)

    def add_text(
        self,
        tag: str,
        text_string: str,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Append text to the run's notes, headed by its tag and step."""
        step = "" if global_step is None else f" (step {global_step})"
        self.run.note(f"**{tag}**{step}: {text_string}")

    # -- lifecycle ---------------------------------------------------------------------------------
    def get_logdir(self) -> str | None:
        return self.log_dir

    def flush(self) -> None:
        """Commit what was logged so far (a checkpoint of the run)."""
        if not self._closed:
            self.run.checkpoint()

    def close(self) -> None:
        """End the run if this writer started it; otherwise just checkpoint."""
        if self._closed:
            return
        if self._owned:
            self.run.end()
        else:
            self.run.checkpoint()
        self._closed = True

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._owned and exc_type is not None and not self._closed:
            status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
            self.run.end(status, f"{exc_type.__name__}: {exc}")
            self._closed = True
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("add_"):
            # images, histograms, graphs, embeddings...: accepted so training code runs
            def ignored(*args: Any, **kwargs: Any) -> None:
                if name not in self._warned:
                    self._warned.add(name)
                    log.warning(
                        "gitxp.tensorboard: %s() is not recorded (gitxp keeps scalars, "
                        "hparams and text); log files with gitxp.log_artifact",
                        name,
                    )

            return ignored
        raise AttributeError(name)


def _step(step: Any) -> int | None:
    if step is None:
        return None
    return int(step.item() if hasattr(step, "item") else step)


def _ms(walltime: float | None) -> int | None:
    return None if walltime is None else round(float(walltime) * 1000)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value
