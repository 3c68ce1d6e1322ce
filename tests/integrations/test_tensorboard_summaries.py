"""TensorBoard summaries that are not scalars survive gitxp: torch.utils.tensorboard and
tensorboardX event files imported then exported read back in TensorBoard's EventAccumulator as
they were written; gitxp's SummaryWriter keeps what tensorboardX's writes, and writers never mix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gitxp
from gitxp.errors import GitxpError
from gitxp.integrations.tensorboard import import_tensorboard
from gitxp.integrations.tensorboard_export import MANIFEST, export_tensorboard
from tests.gitutil import fsck, git

pytest.importorskip("tensorboard")
tensorboardX = pytest.importorskip("tensorboardX")
torch = pytest.importorskip("torch")

T0 = 1_700_000_000.0
KINDS = ("images", "audio", "histograms", "tensors")


def _accumulate(path: str | Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    guidance = {k: 0 for k in ("scalars", "compressedHistograms", *KINDS)}
    acc = EventAccumulator(str(path), size_guidance=guidance)
    acc.Reload()
    return acc


def _summaries(acc: Any) -> dict[tuple[str, str], list[Any]]:
    """Everything but scalars, as EventAccumulator reads it (images, audio, histograms, tensors)."""
    tags = acc.Tags()
    getters = {"images": acc.Images, "audio": acc.Audio, "histograms": acc.Histograms}
    getters["tensors"] = acc.Tensors
    return {(kind, tag): list(getters[kind](tag)) for kind in KINDS for tag in tags[kind]}


def _figure(title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(2, 2), dpi=40)
    plt.plot([0, 1, 2], [2, 0, 1])
    plt.title(title)
    return fig


def _torch_style(writer: Any, rng: np.random.Generator) -> None:
    """The calls of a torch training script's writer (same inputs for every writer)."""
    for step in range(3):
        writer.add_scalar("loss", 1.0 / (step + 1), step, walltime=T0 + step)
        writer.add_image("input", rng.random((3, 6, 6)), step, walltime=T0 + step)
        writer.add_histogram("fc.weight", rng.standard_normal(64), step, walltime=T0 + step)
    writer.add_images("batch", rng.random((4, 3, 5, 5)), 1, walltime=T0 + 5)
    writer.add_figure("curve", _figure("a"), 2, walltime=T0 + 6)
    writer.add_text("remark", "converged *nicely*", 2, walltime=T0 + 7)
    labels, scores = rng.integers(0, 2, 40), rng.random(40)
    writer.add_pr_curve("pr", labels, scores, 2, walltime=T0 + 8)
    points = rng.random((1, 4, 3)).astype(np.float32)
    writer.add_mesh("cloud", points, global_step=2, walltime=T0 + 9)
    writer.add_histogram_raw(
        "raw", 0.0, 3.0, 6, 9.0, 17.0, [1.0, 2.0, 3.0], [2, 1, 3], 3, walltime=T0 + 10
    )


def test_torch_writer_files_import_and_export_losslessly(repo: Path, tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    logs = tmp_path / "logs"
    rng = np.random.default_rng(0)
    writer = TorchWriter(str(logs / "resnet" / "train"))
    _torch_style(writer, rng)
    wave = np.sin(np.linspace(0, 60, 800)).astype(np.float32)
    writer.add_audio("voice", wave, 1, sample_rate=8000, walltime=T0 + 11)
    writer.add_graph(torch.nn.Sequential(torch.nn.Linear(3, 2)), torch.zeros(1, 3))
    writer.add_embedding(rng.random((6, 3)), metadata=list("abcdef"), global_step=1)
    writer.add_hparams({"lr": 0.1, "opt": "sgd"}, {"hp/acc": 0.5}, run_name="trial")
    writer.close()

    result = import_tensorboard(logs, repo, experiment="vision")
    assert len(result.imported) == 2  # train and its hparams trial, as TensorBoard shows them
    handle = gitxp.open(repo)
    runs = {r["name"]: handle.run(r["id"]) for r in handle.rows()}
    train = runs["resnet/train"]
    files = {f["path"] for f in train.artifacts()}
    assert {
        "tensorboard/summaries.parquet",
        "tensorboard/histograms.parquet",
        "tensorboard/text.parquet",
        "tensorboard/images/input/0.png",
        "tensorboard/images/curve/2.png",
        "tensorboard/audio/voice/1.wav",
        "tensorboard/graphs/0.pb",
        "tensorboard/logdir/projector_config.pbtxt",
        "tensorboard/logdir/00001/default/tensors.tsv",
    } <= files
    assert runs["resnet/train/trial"].params == {"lr": 0.1, "opt": "sgd"}
    assert "converged *nicely*" in train.notes
    got = tmp_path / "got"
    train.download_artifacts("tensorboard", got)
    import pyarrow.parquet as pq

    hist = pq.read_table(got / "tensorboard/histograms.parquet").to_pylist()
    assert [(h["tag"], h["step"]) for h in hist][-1] == ("raw", 3)
    assert hist[-1]["bucket_limit"] == [1.0, 2.0, 3.0] and hist[-1]["bucket"] == [2, 1, 3]
    texts = pq.read_table(got / "tensorboard/text.parquet").to_pylist()
    assert [(t["tag"], t["step"], t["text"]) for t in texts] == [
        ("remark/text_summary", 2, "converged *nicely*")
    ]

    out = tmp_path / "tb"
    export_tensorboard(out, repo)
    before, after = _accumulate(logs / "resnet/train"), _accumulate(out / "vision/resnet/train")
    original = _summaries(before)
    exported = _summaries(after)
    assert (
        original
        and {
            k: v
            for k, v in exported.items()
            if k[0] != "tensors" or k[1] in {t for _, t in original}
        }
        == original
    )
    assert after.Graph() == before.Graph()
    assert after.RunMetadata("step1") == before.RunMetadata("step1")
    assert (out / "vision/resnet/train/00001/default/metadata.tsv").read_text() == (
        logs / "resnet/train/00001/default/metadata.tsv"
    ).read_text()
    loss = [(e.step, e.wall_time, e.value) for e in before.Scalars("loss")]
    assert [(e.step, e.wall_time, e.tensor_proto.double_val[0]) for e in after.Tensors("loss")] == (
        loss
    )
    hp_dir = out / "vision/resnet/train/trial"
    assert _accumulate(hp_dir).Tags()["tensors"]  # the trial's hparams, beside its parent
    fsck(repo)


def test_gitxp_writer_keeps_what_tensorboardx_writes(repo: Path, tmp_path: Path) -> None:
    from gitxp.tensorboard import SummaryWriter

    reference = tensorboardX.SummaryWriter(str(tmp_path / "ref" / "demo"))
    _torch_style(reference, np.random.default_rng(1))
    reference.close()
    with SummaryWriter("runs/demo", experiment="demo") as writer:
        _torch_style(writer, np.random.default_rng(1))
        writer.add_audio("voice", np.zeros(100), 1, sample_rate=8000, walltime=T0)
        writer.add_video("clip", np.random.default_rng(2).random((1, 3, 3, 4, 4)), 1)
        writer.add_graph(torch.nn.Linear(3, 2), torch.zeros(1, 3))
        run_id = writer.run.id
    record = gitxp.open(repo).run(run_id)
    files = {f["path"] for f in record.artifacts()}
    assert {"tensorboard/audio/voice/1.wav", "tensorboard/video/clip/1.gif"} <= files
    assert "tensorboard/graphs/0.pb" in files
    assert record.metric_history("loss")["value"].tolist() == [1.0, 0.5, 1 / 3]  # exact

    out = tmp_path / "tb"
    (written,) = export_tensorboard(out, repo)
    expected, got = (
        _summaries(_accumulate(tmp_path / "ref" / "demo")),
        _summaries(_accumulate(written)),
    )
    for key, events in expected.items():
        assert got[key] == events, key
    assert {("images", "clip"), ("audio", "voice")} <= set(got)
    assert _accumulate(written).Graph() is not None


def test_two_writers_at_once_are_two_runs(repo: Path) -> None:
    from gitxp.tensorboard import SummaryWriter

    train, val = SummaryWriter("runs/exp/train"), SummaryWriter(log_dir="runs/exp/val")
    for step in range(3):
        train.add_scalar("loss", 1.0 + step, step)
        val.add_scalar("loss", 2.0 + step, step)
    train.close()
    val.close()
    assert train.run.id != val.run.id
    handle = gitxp.open(repo)
    for writer, base in ((train, 1.0), (val, 2.0)):
        record = handle.run(writer.run.id)
        assert record.experiment == "exp"  # writers under one directory share an experiment
        assert record.name == writer.log_dir.rsplit("/", 1)[-1]
        assert record.tags["tensorboard.group"] == "runs/exp"
        loss = record.metric_history("loss")
        assert loss["step"].tolist() == [0, 1, 2]
        assert loss["value"].tolist() == [base, base + 1, base + 2]

    with gitxp.start_run(experiment="outer") as outer:
        first, second = SummaryWriter(), SummaryWriter("runs/side")
        first.add_scalar("a", 1.0, 0)
        second.add_scalar("b", 1.0, 0)
        first.close()
        second.close()
    assert first.run is outer  # the active run is joined by one writer ...
    side = gitxp.open(repo).run(second.run.id)  # ... a second one gets a child run
    assert side.parent == outer.id and side.name == "side" and set(side.last_metrics) == {"b"}
    assert set(gitxp.open(repo).run(outer.id).last_metrics) == {"a"}


def test_tensorboardx_only_calls(repo: Path, tmp_path: Path) -> None:
    from gitxp.tensorboard import SummaryWriter

    writer = SummaryWriter(logdir="runs/tbx")
    assert writer.get_logdir() == writer.logdir == writer.log_dir == "runs/tbx"
    writer.add_scalar("x", 1.5, 0, None, "shown name", "what x is")
    writer.add_scalar("x", 2.5, 1, display_name="shown", summary_description="d")
    writer.add_scalars("pair", {"a": 1.0, "b": 2.0}, 3, walltime=T0)
    writer.export_scalars_to_json(tmp_path / "scalars.json")
    assert json.loads((tmp_path / "scalars.json").read_text()) == {
        "runs/tbx/pair/a": [[T0, 3, 1.0]],
        "runs/tbx/pair/b": [[T0, 3, 2.0]],
    }
    with writer.use_metadata(global_step=7, walltime=T0):
        writer.add_scalar("y", 3.0)
    first = writer.add_hparams({"lr": 0.1}, {"hp/acc": 0.1}, "positional")
    second = writer.add_hparams({"lr": 0.2}, {"hp/acc": 0.2}, name="keyword", global_step=4)
    third = writer.add_hparams({"lr": 0.3}, {"hp/acc": 0.3})  # named by the time
    with pytest.raises(GitxpError, match=r"file_writer is tensorboardX's: .*writer\.run"):
        writer.file_writer  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        writer.nonsense  # noqa: B018
    writer.close()
    writer.add_scalar("z", 1.0, 0)  # after close(), tensorboardX reopens: a new run
    writer.close()
    handle = gitxp.open(repo)
    record = handle.run(writer.run.id)
    assert record.tags["tensorboard.reopened_from"] != writer.run.id
    assert set(record.last_metrics) == {"z"}
    old = handle.run(record.tags["tensorboard.reopened_from"])
    assert old.metric_history("x")["value"].tolist() == [1.5, 2.5]
    assert old.metric_history("y")["step"].tolist() == [7]
    trials = [handle.run(i) for i in (first, second, third)]
    assert [t.name for t in trials[:2]] == ["positional", "keyword"]
    assert [t.params["lr"] for t in trials] == [0.1, 0.2, 0.3]
    assert trials[1].metric_history("hp/acc")["step"].tolist() == [4]
    assert all(t.parent == old.id for t in trials)


def test_export_gives_colliding_names_their_own_directories(repo: Path, tmp_path: Path) -> None:
    ids = []
    for value in (1.0, 2.0):
        with gitxp.start_run(experiment="e", name="same") as run:
            run.log_metric("m", value, 0)
            ids.append(run.id)
    out = tmp_path / "tb"
    dirs = export_tensorboard(out, repo)
    assert sorted(Path(d).name for d in dirs) == sorted(f"same_{i}" for i in ids)
    values = {Path(d).name: _accumulate(d).Tensors("m")[0].tensor_proto.double_val[0] for d in dirs}
    assert values == {f"same_{ids[0]}": 1.0, f"same_{ids[1]}": 2.0}
    stamp = {d: sorted(p.name for p in Path(d).iterdir()) for d in dirs}
    assert export_tensorboard(out, repo) == dirs  # unchanged runs are not written again
    assert {d: sorted(p.name for p in Path(d).iterdir()) for d in dirs} == stamp
    assert set(json.loads((out / MANIFEST).read_text())["runs"]) == set(ids)
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    assert len(import_tensorboard(out, other).imported) == 2


def test_bad_summaries_are_one_line_errors(repo: Path) -> None:
    from gitxp.errors import InvalidValueError
    from gitxp.tensorboard import SummaryWriter

    with SummaryWriter("runs/bad") as writer:
        calls = {
            "image 'i'": lambda: writer.add_image("i", np.zeros(5), 0),
            "embedding 'default'": lambda: writer.add_embedding(np.zeros((3, 2)), metadata=["a"]),
            "vid_tensor": lambda: writer.add_video("v", np.zeros((2, 2))),
            "snd_tensor": lambda: writer.add_audio("a", np.zeros((2, 2, 2))),
            "mesh 'm'": lambda: writer.add_mesh("m", np.zeros(3)),
            "add_hparams": lambda: writer.add_hparams([1], {}),  # type: ignore[arg-type]
        }
        for what, call in calls.items():
            with pytest.raises(InvalidValueError) as caught:
                call()
            assert str(caught.value).startswith(what) and "\n" not in str(caught.value)
        writer.add_pr_curve("pr", [0, 1, 1], [0.2, 0.9, 0.6], 0)  # plain lists are fine
        run_id = writer.run.id
    assert gitxp.open(repo).run(run_id).status == "FINISHED"


def test_a_writer_never_closed_keeps_everything(repo: Path) -> None:
    import subprocess
    import sys

    script = repo / "forgot.py"
    script.write_text(
        "from gitxp.tensorboard import SummaryWriter\n"
        "w = SummaryWriter('runs/forgot')\n"
        "w.add_scalar('loss', 0.5, 0)\n"
        "w.add_histogram_raw('h', 0.0, 1.0, 2, 1.0, 1.0, [0.5, 1.0], [1, 1], 0)\n"
        "print(w.run.id)\n"  # and no close(), as many torch scripts
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    record = gitxp.open(repo).run(done.stdout.strip())
    assert record.status == "FINISHED" and record.last_metrics == {"loss": 0.5}
    paths = {f["path"] for f in record.artifacts()}
    assert paths == {"tensorboard/histograms.parquet", "tensorboard/summaries.parquet"}


def test_import_keeps_the_projector_files_not_checkpoints(repo: Path, tmp_path: Path) -> None:
    logs = tmp_path / "lightning_logs" / "version_0"
    writer = tensorboardX.SummaryWriter(str(logs))
    writer.add_scalar("loss", 0.5, 0)
    writer.add_embedding(np.eye(3), metadata=["a", "b", "c"], global_step=2, tag="words")
    writer.close()
    (logs / "checkpoints").mkdir()
    (logs / "checkpoints" / "epoch=0.ckpt").write_bytes(b"weights")
    (logs / "hparams.yaml").write_text("lr: 0.1\n")
    import_tensorboard(tmp_path / "lightning_logs", repo)
    (row,) = gitxp.open(repo).rows()
    paths = {f["path"] for f in gitxp.open(repo).run(row["id"]).artifacts()}
    assert paths == {
        "tensorboard/logdir/projector_config.pbtxt",
        "tensorboard/logdir/00002/words/metadata.tsv",
        "tensorboard/logdir/00002/words/tensors.tsv",
    }


def test_writers_one_after_another_on_the_active_run_add_up(repo: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from gitxp.tensorboard import SummaryWriter

    with gitxp.start_run() as run:
        for tag in ("first", "second"):
            writer = SummaryWriter()
            writer.add_histogram_raw(tag, 0.0, 1.0, 2, 1.0, 1.0, [0.5, 1.0], [1, 1], 0)
            writer.add_image(tag, np.zeros((1, 2, 2)), 0)
            writer.close()
    record = gitxp.open(repo).run(run.id)
    record.download_artifacts("tensorboard", tmp_path / "got")
    hist = pq.read_table(tmp_path / "got/tensorboard/histograms.parquet")
    assert hist.column("tag").to_pylist() == ["first", "second"]
    assert {f["path"] for f in record.artifacts() if f["path"].endswith(".png")} == {
        "tensorboard/images/first/0.png",
        "tensorboard/images/second/0.png",
    }


def test_without_tensorboardx_scalars_and_text_still_work(repo: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorboardX', 'torch'):\n"
        "            raise ModuleNotFoundError(name, name=name)\n"
        "sys.meta_path.insert(0, Absent())\n"
        "from gitxp.errors import MissingExtraError\n"
        "from gitxp.tensorboard import SummaryWriter\n"
        "with SummaryWriter('runs/plain') as w:\n"
        "    w.add_scalar('loss', 0.25, 0)\n"
        "    w.add_text('remark', 'fine', 0)\n"
        "    try:\n"
        "        w.add_image('img', [[0.0]], 0)\n"
        "    except MissingExtraError as exc:\n"
        "        print(exc)\n"
        "print(w.run.id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    message, run_id = done.stdout.strip().splitlines()
    assert message.startswith("SummaryWriter's images, histograms, audio and other non-scalar")
    assert "pip install 'gitxp[tensorboard]'" in message
    record = gitxp.open(repo).run(run_id)
    assert record.last_metrics == {"loss": 0.25} and "**remark** (step 0): fine" in record.notes


def test_export_directories_are_distinct_for_every_run() -> None:
    from gitxp.integrations.tensorboard_export import run_dirs

    rows = [
        {"id": "A", "name": "a", "experiment": "e"},
        {"id": "B", "name": "trial", "experiment": "e", "parent": "A"},  # below its parent
        {"id": "C", "name": "a/trial", "experiment": "e"},  # would land on B's directory
        {"id": "D", "name": "x", "experiment": "e"},
        {"id": "E", "name": "X", "experiment": "e"},  # differs only by case
        {"id": "F", "name": "t", "experiment": "f", "parent": "not exported"},
        {"id": "G", "name": "../up", "experiment": None},
    ]
    assert run_dirs(rows) == {
        "A": "e/a",
        "B": "e/a/trial",
        "C": "e/a/trial_C",
        "D": "e/x_D",
        "E": "e/X_E",
        "F": "f/t",
        "G": "default/_/up",
    }
