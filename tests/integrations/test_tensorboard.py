"""TensorBoard in and out: event files written by tensorboardX and by tensorboard itself are
imported; gitxp runs are exported as event files TensorBoard reads; SummaryWriter records runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gitxp
from gitxp.integrations.tensorboard import import_tensorboard
from gitxp.integrations.tensorboard_export import export_tensorboard
from tests.gitutil import fsck, run_refs

pytest.importorskip("tensorboard")
tensorboardX = pytest.importorskip("tensorboardX")

T0 = 1_700_000_000.0


def _write_with_tensorboardx(logdir: Path) -> None:
    writer = tensorboardX.SummaryWriter(str(logdir / "tbx"))
    for step in range(5):
        writer.add_scalar("loss/train", 1.0 / (step + 1), step, walltime=T0 + step)
    writer.add_text("remark", "lr warm-up looked fine", 3)
    writer.close()
    hp = tensorboardX.SummaryWriter(str(logdir / "tbx-hparams"))
    # tensorboardX writes hparams into a sub-directory named by the time: a run of its own
    hp.add_hparams({"lr": 0.1, "bs": 32, "opt": "adam", "aug": True}, {"hp/acc": 0.75})
    hp.close()


def _write_with_tensorboard(logdir: Path) -> None:
    """Tensor-encoded scalars (the TF2 / torch new-style form) through tensorboard's own writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata as scalar_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(logdir / "native"))
    for step in range(3):
        value = summary_pb2.Summary.Value(
            tag="val/acc", tensor=tensor_util.make_tensor_proto(0.25 * (step + 1))
        )
        if step == 0:  # like TF, the metadata rides only on a tag's first value
            value.metadata.CopyFrom(scalar_metadata.create_summary_metadata("", ""))
        writer.add_event(
            event_pb2.Event(
                wall_time=T0 + 10 + step,
                step=step * 100,
                summary=summary_pb2.Summary(value=[value]),
            )
        )
    writer.close()


def test_event_files_from_tensorboardx_and_tensorboard_imported(repo: Path, tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    _write_with_tensorboardx(logdir)
    _write_with_tensorboard(logdir)
    result = import_tensorboard(logdir, repo, experiment="vision")
    assert len(result.imported) == 4
    handle = gitxp.open(repo)
    runs = {r["name"]: handle.run(r["id"]) for r in handle.rows()}
    hparams_run = next(n for n in runs if n.startswith("tbx-hparams/"))
    assert set(runs) == {"tbx", "tbx-hparams", hparams_run, "native"}
    runs["tbx-hparams"] = runs[hparams_run]

    loss = runs["tbx"].metric_history("loss/train")
    assert loss["step"].tolist() == [0, 1, 2, 3, 4]
    assert loss["timestamp"].tolist() == [int((T0 + s) * 1000) for s in range(5)]
    assert loss["value"].tolist() == pytest.approx([1, 0.5, 1 / 3, 0.25, 0.2], rel=1e-6)
    assert "lr warm-up looked fine" in runs["tbx"].notes
    assert runs["tbx"].experiment == "vision"
    assert runs["tbx"].status == "FINISHED"
    assert runs["tbx"].start_time <= int(T0 * 1000) <= runs["tbx"].end_time

    assert runs["tbx-hparams"].params == {"lr": 0.1, "bs": 32, "opt": "adam", "aug": True}
    assert runs["tbx-hparams"].last_metrics["hp/acc"] == pytest.approx(0.75)

    acc = runs["native"].metric_history("val/acc")
    assert acc["step"].tolist() == [0, 100, 200]
    assert acc["value"].tolist() == [0.25, 0.5, 0.75]
    assert acc["timestamp"].tolist() == [int((T0 + 10 + s) * 1000) for s in range(3)]

    again = import_tensorboard(logdir, repo, experiment="vision")
    assert again.imported == [] and len(again.skipped) == 4
    assert len(run_refs(repo)) == 4
    fsck(repo)


def test_export_is_read_back_by_tensorboard(repo: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with gitxp.start_run(experiment="exp", name="r1", params={"lr": 0.01, "arch": "mlp"}) as run:
        run.log_metric_array(
            "loss", [0.9, 0.5, 0.25], steps=[0, 10, 20], timestamps=[1000, 2000, 3000]
        )
        run.note("first attempt")
    out = tmp_path / "tb"
    dirs = export_tensorboard(out, repo)
    assert len(dirs) == 1 and Path(dirs[0]).parent.name == "exp"
    acc = EventAccumulator(dirs[0], size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    # float64 tensors of the scalars plugin (TensorBoard's own format): values exact
    scalars = acc.Tensors("loss")
    assert [(s.step, s.wall_time, s.tensor_proto.double_val[0]) for s in scalars] == [
        (0, 1.0, 0.9),
        (10, 2.0, 0.5),
        (20, 3.0, 0.25),
    ]
    assert acc.SummaryMetadata("loss").plugin_data.plugin_name == "scalars"
    # and back in: the export imports as a run with the same series and hparams
    other = tmp_path / "other"
    other.mkdir()
    from tests.gitutil import git

    git(other, "init", "-q")
    import_tensorboard(out, other)
    back = gitxp.open(other).rows()[0]
    record = gitxp.open(other).run(back["id"])
    assert record.params == {"lr": 0.01, "arch": "mlp"}
    assert record.metric_history("loss")["step"].tolist() == [0, 10, 20]
    assert record.metric_history("loss")["value"].tolist() == [0.9, 0.5, 0.25]
    assert "first attempt" in record.notes


def test_summary_writer_records_a_run(repo: Path) -> None:
    from gitxp.tensorboard import SummaryWriter

    with SummaryWriter("runs/exp1", experiment="tb") as writer:
        for step in range(3):
            writer.add_scalar("loss", 1.0 / (step + 1), step, walltime=T0 + step)
        writer.add_scalars("acc", {"train": 0.9, "val": 0.8}, 2)
        child_id = writer.add_hparams({"lr": 0.1, "layers": 2}, {"hparam/acc": 0.8})
        writer.add_text("log", "done", 2)
        writer.add_histogram("weights", [1, 2, 3], 0)
        writer.flush()
        run_id = writer.run.id
    handle = gitxp.open(repo)
    record = handle.run(run_id)
    assert record.name == "exp1" and record.experiment == "tb"
    assert record.status == "FINISHED"
    assert record.metric_history("loss")["timestamp"].tolist() == [
        int((T0 + s) * 1000) for s in range(3)
    ]
    assert set(record.last_metrics) == {"loss", "acc/train", "acc/val"}
    assert "**log** (step 2): done" in record.notes
    assert {f["path"] for f in record.artifacts()} >= {
        "tensorboard/histograms.parquet",
        "tensorboard/text.parquet",
        "tensorboard/summaries.parquet",
    }
    # add_hparams is a trial of its own, as in TensorBoard: a child run
    child = handle.run(child_id)
    assert child.parent == run_id and child.experiment == "tb"
    assert child.params == {"lr": 0.1, "layers": 2}
    assert child.last_metrics == {"hparam/acc": 0.8}


def test_summary_writer_joins_the_active_run(repo: Path) -> None:
    from gitxp.tensorboard import SummaryWriter

    with gitxp.start_run() as run:
        writer = SummaryWriter()
        writer.add_scalar("x", 1.0, 0)
        writer.close()
        assert run.status == "RUNNING"  # the writer did not end a run it does not own
        run.log_metric("y", 2.0)
    assert set(gitxp.open(repo).run(run.id).last_metrics) == {"x", "y"}


def test_cli_import_and_export_tensorboard(repo: Path, tmp_path: Path, runner) -> None:
    from gitxp.cli.main import cli

    logdir = tmp_path / "logs"
    _write_with_tensorboardx(logdir)
    result = runner.invoke(cli, ["import", "tensorboard", str(logdir), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["imported"]) == 3
    result = runner.invoke(cli, ["export", "tensorboard", str(tmp_path / "tb")])
    assert result.exit_code == 0 and "3 runs" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(cli, ["import", "tensorboard", str(empty)])
    assert result.exit_code == 1 and "no TensorBoard event files" in result.output
