"""Transformers Trainer under torchrun (two CPU processes, gloo): one run, from rank 0."""

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

SCRIPT = """\
import torch
import transformers

import gitxp
from gitxp.integrations.transformers import GitxpCallback

config = transformers.BertConfig(
    vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=8, max_position_embeddings=8, num_labels=2,
)
torch.manual_seed(0)
ids = torch.randint(2, 30, (16, 6))
data = [{"input_ids": ids[i], "labels": int(i % 2)} for i in range(16)]
args = transformers.TrainingArguments(
    output_dir="out", per_device_train_batch_size=2, max_steps=3, logging_steps=1,
    save_strategy="no", report_to="none", use_cpu=True, ddp_backend="gloo", disable_tqdm=True,
)
model = transformers.BertForSequenceClassification(config)
with gitxp.start_run(experiment="hf-ddp") as run:
    trainer = transformers.Trainer(
        model=model, args=args, train_dataset=data, callbacks=[GitxpCallback()]
    )
    trainer.train()
    run.log_metric("world_size", float(trainer.args.world_size))
"""


@pytest.mark.slow
def test_a_transformers_trainer_under_torchrun_records_one_run(repo: Path) -> None:
    framework("transformers")
    (repo / "hf.py").write_text(SCRIPT)
    (repo / ".gitignore").write_text("out/\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "hf")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "hf.py"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    handle = gitxp.open()
    [run_id] = handle.runs()["id"].tolist()
    record = handle.run(run_id)
    assert record.status == "FINISHED" and record.experiment == "hf-ddp"
    assert record.params["max_steps"] == 3 and record.params["model/hidden_size"] == 8
    assert record.metric_history("loss")["step"].tolist() == [1, 2, 3]  # once, from rank 0
    assert record.metric_history("world_size")["value"].tolist() == [2.0]
    git(repo, "fsck", "--strict")
