"""Transformers: GitxpCallback records training args, Trainer logs at global steps, the model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import gitxp
from tests.integrations.frameworks import artifact_names, framework

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing may be downloaded: the model is built from a config
torch = framework("torch")
transformers = framework("transformers")

from gitxp.integrations.transformers import GitxpCallback  # noqa: E402


class Pairs(torch.utils.data.Dataset):  # type: ignore[misc,name-defined]
    """16 sequences of 6 tokens; the label is whether token 1 appears."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(2, 30, (16, 6), generator=g)
        self.ids[::2, 3] = 1
        self.labels = (self.ids == 1).any(1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


def _trainer(tmp_path: Path, callback: GitxpCallback, **kw: Any) -> Any:
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=16,
        num_labels=2,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    kw.setdefault("max_steps", 6)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        logging_steps=2,
        eval_strategy="steps",
        eval_steps=3,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        **kw,
    )
    data = Pairs()
    return transformers.Trainer(
        model=model, args=args, train_dataset=data, eval_dataset=data, callbacks=[callback]
    )


def test_callback_records_args_config_metrics_and_model(repo: Path, tmp_path: Path) -> None:
    callback = GitxpCallback(experiment="hf", name="tiny-bert", log_model=True)
    trainer = _trainer(tmp_path, callback)
    trainer.train()
    record = gitxp.open().run("tiny-bert")
    assert record.status == "FINISHED" and record.experiment == "hf"
    params = record.params
    assert params["learning_rate"] == 1e-3 and params["max_steps"] == 6
    assert params["model/hidden_size"] == 16 and params["model/num_hidden_layers"] == 2
    assert params["model/model_type"] == "bert"
    df = record.metrics()
    steps = {k: list(g["step"]) for k, g in df.groupby("key")}
    assert steps["loss"] == [2, 4, 6]  # logging_steps=2 over max_steps=6
    assert steps["eval_loss"] == [3, 6]  # eval_steps=3
    assert steps["train_runtime"] == [6]
    assert "learning_rate" in steps and "grad_norm" in steps
    assert {"model/config.json", "model/model.safetensors"} <= {
        f["path"] for f in record.artifacts()
    }
    assert artifact_names(record) == {"model"}
    # the stored model loads back with the trained weights
    out = tmp_path / "restored"
    record.download_artifacts("model", to=out)
    restored = transformers.BertForSequenceClassification.from_pretrained(out / "model")
    trained = trainer.model.state_dict()
    for key, value in restored.state_dict().items():
        assert torch.equal(value, trained[key].cpu()), key
    # evaluate() after train() adds to the same run
    trainer.evaluate()
    assert len(gitxp.open().run("tiny-bert").metric_history("eval_loss")) == 3
    assert len(gitxp.open().runs()) == 1


def test_callback_joins_the_active_run(repo: Path, tmp_path: Path) -> None:
    with gitxp.start_run(params={"learning_rate": 1e-3, "task": "toy"}) as run:
        _trainer(tmp_path, GitxpCallback()).train()
        assert run.status == "RUNNING"
    record = gitxp.open().run(run.id)
    assert record.status == "FINISHED"
    assert record.params["task"] == "toy" and record.params["max_steps"] == 6
    assert list(record.metric_history("loss")["step"]) == [2, 4, 6]


def test_a_param_clash_is_reported_not_raised(
    repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with gitxp.start_run(params={"learning_rate": 0.5}) as run:
        _trainer(tmp_path, GitxpCallback(), max_steps=2).train()
    err = caplog.text
    assert "learning_rate=0.001 (kept 0.5)" in err
    record = gitxp.open().run(run.id)
    assert record.params["learning_rate"] == 0.5
    assert record.params["max_steps"] == 2  # the other params still land
    assert list(record.metric_history("loss")["step"]) == [2]
