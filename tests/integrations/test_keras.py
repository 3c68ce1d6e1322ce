"""Keras 3 (torch backend): GitxpCallback records epoch and batch metrics and the model config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gitxp
from tests.integrations.frameworks import framework

os.environ.setdefault("KERAS_BACKEND", "torch")  # no tensorflow needed
framework("torch")
keras = framework("keras")
np = framework("numpy")

from gitxp.integrations.keras import GitxpCallback  # noqa: E402


def _model() -> object:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="mse", metrics=["mae"])
    return model


def _data() -> tuple[object, object]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def test_callback_records_epochs_batches_and_config(repo: Path) -> None:
    assert keras.backend.backend() == "torch"
    x, y = _data()
    callback = GitxpCallback(experiment="keras", name="dense")
    # 40 samples, validation 20%: 32 train samples in batches of 8 -> 4 batches per epoch
    _model().fit(
        x, y, epochs=3, batch_size=8, validation_split=0.2, verbose=0, callbacks=[callback]
    )
    record = gitxp.open().run("dense")
    assert record.status == "FINISHED" and record.experiment == "keras"
    params = record.params
    assert params["epochs"] == 3 and params["steps"] == 4
    assert params["optimizer/learning_rate"] == pytest.approx(0.05)
    assert params["optimizer/name"] == "sgd"
    layers = params["model_config"]["layers"]
    assert [layer["class_name"] for layer in layers] == ["InputLayer", "Dense", "Dense"]
    assert layers[1]["config"]["units"] == 8
    df = record.metrics()
    steps = {k: list(g["step"]) for k, g in df.groupby("key")}
    for key in ("loss", "mae", "val_loss", "val_mae"):
        assert steps[key] == [0, 1, 2], key
    assert steps["batch/loss"] == list(range(12))  # 3 epochs x 4 batches, global numbering
    last_loss = df[df["key"] == "loss"]["value"].iloc[-1]
    assert last_loss == pytest.approx(record.last_metrics["loss"])


def test_callback_joins_the_active_run_and_batch_logging_can_be_thinned(repo: Path) -> None:
    x, y = _data()
    with gitxp.start_run(params={"data": "sums"}) as run:
        _model().fit(
            x, y, epochs=2, batch_size=10, verbose=0,
            callbacks=[GitxpCallback(log_every_n_batches=2, log_model_config=False)],
        )  # fmt: skip
        assert run.status == "RUNNING"
    record = gitxp.open().run(run.id)
    assert "model_config" not in record.params and record.params["data"] == "sums"
    assert list(record.metric_history("batch/loss")["step"]) == [1, 3, 5, 7]
    assert list(record.metric_history("loss")["step"]) == [0, 1]


def test_bad_batch_interval() -> None:
    with pytest.raises(ValueError, match="log_every_n_batches"):
        GitxpCallback(log_every_n_batches=-1)
