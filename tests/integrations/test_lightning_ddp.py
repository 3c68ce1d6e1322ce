"""Lightning DDP (two CPU processes, gloo): only global rank 0 records, into one run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import git
from tests.integrations.frameworks import framework

ROOT = Path(__file__).resolve().parents[2]

# Lightning's DDP launcher starts rank 1 by running this script again, with LOCAL_RANK=1
SCRIPT = """\
import gitxp
import lightning.pytorch as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gitxp.integrations.lightning import GitxpLogger


class Tiny(L.LightningModule):
    def __init__(self, hidden=4):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def training_step(self, batch, index):
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


def trainer(logger):
    return L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, limit_train_batches=3,
        logger=logger, log_every_n_steps=1, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False, default_root_dir="out",
    )


if __name__ == "__main__":
    torch.manual_seed(0)
    x = torch.randn(48, 4)
    data = DataLoader(TensorDataset(x, x.sum(1, keepdim=True)), batch_size=4)
    with gitxp.start_run(experiment="around", params={"data": "sums"}) as run:
        fit = trainer(GitxpLogger())
        fit.fit(Tiny(), data)
        run.log_metric("global_rank", float(fit.global_rank))
"""


@pytest.mark.slow
def test_lightning_ddp_records_one_run_from_rank_zero(repo: Path) -> None:
    framework("lightning.pytorch")
    (repo / "ddp.py").write_text(SCRIPT)
    (repo / ".gitignore").write_text("out/\nlightning_logs/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "ddp")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "ddp.py"], env=env, capture_output=True, text=True, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    handle = gitxp.open()
    assert handle.runs()["experiment"].tolist() == ["around"]
    around = handle.run(handle.runs(experiment="around")["id"][0])
    assert around.status == "FINISHED"
    assert around.params == {"data": "sums", "hidden": 4}
    assert around.metric_history("global_rank")["value"].tolist() == [0.0]
    assert around.metric_history("train_loss")["step"].tolist() == [0, 1, 2]  # once, not twice
    git(repo, "fsck", "--strict")
