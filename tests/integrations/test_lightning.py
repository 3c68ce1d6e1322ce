"""Lightning: a GitxpLogger records hparams, metrics at the trainer's steps and checkpoints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import gitxp
from tests.integrations.frameworks import artifact_names, framework

torch = framework("torch")
L = framework("lightning.pytorch")

from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from gitxp.integrations.lightning import GitxpLogger  # noqa: E402


class TwoLayer(L.LightningModule):  # type: ignore[misc,name-defined]
    def __init__(self, hidden: int = 8, lr: float = 0.05, explode_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def training_step(self, batch: Any, index: int) -> Any:
        if self.global_step == self.hparams.explode_at:
            raise FloatingPointError("loss exploded")
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("val_loss", nn.functional.mse_loss(self.net(x), y))

    def test_step(self, batch: Any, index: int) -> None:
        x, y = batch
        self.log("test_loss", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _data() -> Any:
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    return DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=8)  # 4 steps/epoch


def _trainer(logger: GitxpLogger, root: Path, **kw: Any) -> Any:
    kw.setdefault("max_epochs", 2)
    return L.Trainer(
        logger=logger,
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=str(root),
        **kw,
    )


def test_logger_starts_its_own_run_with_params_metrics_and_checkpoint(
    repo: Path, tmp_path: Path
) -> None:
    logger = GitxpLogger(experiment="lightning", name="tiny", log_checkpoints=True)
    trainer = _trainer(logger, tmp_path)
    data = _data()
    trainer.fit(TwoLayer(), data, data)
    record = gitxp.open().run(logger.version)
    assert record.status == "FINISHED"
    assert record.experiment == "lightning" and record.name == "tiny"
    assert record.params == {"hidden": 8, "lr": 0.05, "explode_at": -1}
    df = record.metrics()
    # self.log at every step: global_step after each optimizer step is 1..8, logged at step-1
    assert list(df[df["key"] == "train_loss"]["step"]) == list(range(8))
    assert list(df[df["key"] == "val_loss"]["step"]) == [3, 7]  # end of each epoch
    assert trainer.global_step == 8
    names = artifact_names(record)
    assert names == {"checkpoints/epoch=1-step=8.ckpt"}
    assert record.tags["best_checkpoint"] == "checkpoints/epoch=1-step=8.ckpt"
    got = record.download_artifacts(to=tmp_path / "dl")
    state = torch.load(got[0], weights_only=False)
    assert state["global_step"] == 8
    # trainer.test() after fit() adds to the same run
    trainer.test(TwoLayer(), data)
    assert "test_loss" in set(gitxp.open().run(logger.version).metrics()["key"])
    assert len(gitxp.open().runs()) == 1


def test_logger_joins_the_active_run_and_leaves_it_open(repo: Path, tmp_path: Path) -> None:
    with gitxp.start_run(params={"dataset": "sums"}) as run:
        logger = GitxpLogger(prefix="lit/")
        _trainer(logger, tmp_path, max_epochs=1, enable_checkpointing=False).fit(
            TwoLayer(hidden=4), _data()
        )
        assert logger.version == run.id
        assert run.status == "RUNNING"  # the logger did not end a run it did not start
        run.log_metric("after", 1.0)
    record = gitxp.open().run(run.id)
    assert record.status == "FINISHED"
    assert record.params == {"dataset": "sums", "hidden": 4, "lr": 0.05, "explode_at": -1}
    assert {"lit/train_loss", "lit/epoch", "after"} <= set(record.metrics()["key"])


def test_all_checkpoints_are_stored_as_they_are_written(repo: Path, tmp_path: Path) -> None:
    cb = L.callbacks.ModelCheckpoint(save_top_k=-1, every_n_epochs=1)
    logger = GitxpLogger(log_checkpoints="all")
    _trainer(logger, tmp_path, callbacks=[cb]).fit(TwoLayer(), _data())
    names = artifact_names(gitxp.open().run(logger.version))
    assert names == {"checkpoints/epoch=0-step=4.ckpt", "checkpoints/epoch=1-step=8.ckpt"}


def test_a_crash_in_training_ends_the_run_failed(repo: Path, tmp_path: Path) -> None:
    logger = GitxpLogger()
    with pytest.raises(FloatingPointError):
        _trainer(logger, tmp_path).fit(TwoLayer(explode_at=5), _data())
    record = gitxp.open().run(logger.version)
    assert record.status == "FAILED"
    assert list(record.metric_history("train_loss")["step"]) == [0, 1, 2, 3, 4]


def test_bad_checkpoint_option(repo: Path) -> None:
    with pytest.raises(ValueError, match="log_checkpoints"):
        GitxpLogger(log_checkpoints="best")
    assert os.listdir(repo / ".git" / "refs") and not gitxp.open().runs().shape[0]
