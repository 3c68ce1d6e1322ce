"""TensorBoard event files in and out: `gitxp import tensorboard` and `gitxp export tensorboard`.

Both use the `tensorboard` package's own code (the `tensorboard` extra):
its `EventFileLoader` reads every event file, with its compatibility layer
turning old `simple_value` scalars and new tensor-encoded scalars into one
form; its `EventFileWriter` writes what TensorBoard and tensorboardX write.

Import: one gitxp run per directory holding event files (TensorBoard's own
notion of a run), named after the directory relative to LOGDIR. Scalars keep
their steps and wall times; hparams become params; text summaries go to the
run's notes. The source id is the directory plus a digest of its event file
names, so importing the same log directory again adds nothing.

Export: one directory per run, `OUTDIR/<experiment>/<run name>_<id prefix>/`,
with every metric point as a scalar, the params as hparams and the notes as
text — open it with `tensorboard --logdir OUTDIR`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import GitxpError, InvalidValueError
from .mlflow_import import ImportResult, SourceRun, write_runs

SOURCE_PREFIX = "tensorboard:"
EVENT_MARK = "tfevents"
_BAD_KEY = re.compile(r"[^\w\-. /:+=@,]")


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise GitxpError(
            "reading and writing TensorBoard event files needs the tensorboard package: "
            "pip install 'gitxp[tensorboard]'"
        ) from None


def clean_key(tag: str) -> str:
    """A TensorBoard tag as a gitxp metric key (characters gitxp refuses become '_')."""
    key = _BAD_KEY.sub("_", tag.strip()).strip("/") or "_"
    return re.sub("/{2,}", "/", key)


def event_dirs(logdir: str) -> dict[str, list[str]]:
    """Run directory (relative to *logdir*, '.' for itself) -> its event files, sorted."""
    out: dict[str, list[str]] = {}
    for base, dirs, files in os.walk(logdir):
        dirs.sort()
        events = sorted(os.path.join(base, f) for f in files if EVENT_MARK in f)
        if events:
            rel = os.path.relpath(base, logdir).replace(os.sep, "/")
            out[rel] = events
    return out


def _hparam_value(value: Any) -> Any:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None


def read_run_dir(files: list[str]) -> dict[str, Any]:
    """Scalars, hparams, texts and the time span of one run directory's event files."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata as hp_metadata
    from tensorboard.util import tensor_util

    scalars: dict[str, tuple[list[int], list[int], list[float]]] = {}
    params: dict[str, Any] = {}
    texts: list[str] = []
    first: float | None = None
    last: float | None = None
    for path in files:
        plugin_of: dict[str, str] = {}  # a tag's metadata comes with its first value only
        for event in EventFileLoader(path).Load():
            wall = event.wall_time
            first = wall if first is None else min(first, wall)
            last = wall if last is None else max(last, wall)
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
                    plugin_of[value.tag] = value.metadata.plugin_data.plugin_name
                plugin = plugin_of.get(value.tag, "")
                if plugin == hp_metadata.PLUGIN_NAME:
                    if value.tag == hp_metadata.SESSION_START_INFO_TAG:
                        info = hp_metadata.parse_session_start_info_plugin_data(
                            value.metadata.plugin_data.content
                        )
                        for name, hp in info.hparams.items():
                            params[name] = _hparam_value(hp)
                    continue
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor") and plugin == "scalars":
                    number = float(tensor_util.make_ndarray(value.tensor).reshape(-1)[0])
                elif value.HasField("tensor") and plugin == "text":
                    array = tensor_util.make_ndarray(value.tensor).reshape(-1)
                    body = "\n".join(
                        x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x)
                        for x in array
                    )
                    texts.append(f"**{value.tag}** (step {event.step}): {body}")
                    continue
                else:
                    continue  # images, histograms, audio...: not metrics
                steps, stamps, values = scalars.setdefault(clean_key(value.tag), ([], [], []))
                steps.append(int(event.step))
                stamps.append(round(wall * 1000))
                values.append(number)
    return {"scalars": scalars, "params": params, "texts": texts, "first": first, "last": last}


def read_logdir(logdir: str, experiment: str) -> Iterator[SourceRun]:
    """One `SourceRun` per event-file directory below *logdir*."""
    _require_tensorboard()
    if not os.path.isdir(logdir):
        raise InvalidValueError("LOGDIR", f"{logdir} is not a directory")
    dirs = event_dirs(logdir)
    if not dirs:
        raise GitxpError(f"no TensorBoard event files (*tfevents*) below {logdir}")
    root_name = os.path.basename(os.path.abspath(logdir)) or "run"
    for rel, files in dirs.items():
        digest = hashlib.sha1("\n".join(os.path.basename(f) for f in files).encode()).hexdigest()[
            :16
        ]
        data = read_run_dir(files)
        name = root_name if rel == "." else rel
        start = None if data["first"] is None else round(data["first"] * 1000)
        end = None if data["last"] is None else round(data["last"] * 1000)
        notes = "\n\n".join(data["texts"])
        yield SourceRun(
            run_id=f"{rel}@{digest}",
            experiment=experiment,
            name=name,
            status="FINISHED",
            start_time=start,
            end_time=end,
            user=None,
            params={k: v for k, v in data["params"].items() if v is not None},
            tags={"tensorboard.logdir": rel},
            metrics=lambda d=data: d["scalars"],  # type: ignore[misc]
            artifacts=None,
            notes=notes or None,
            typed=True,
        )


def import_tensorboard(
    logdir: str | os.PathLike[str],
    repo: str | os.PathLike[str] = ".",
    *,
    experiment: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> ImportResult:
    """Import every event-file directory below *logdir* as a run (into *experiment*,
    default: the log directory's name). Directories imported before are skipped.
    """
    path = os.fspath(logdir)
    exp = experiment or os.path.basename(os.path.abspath(path)) or "tensorboard"
    runs = list(read_logdir(path, exp))
    return write_runs(runs, repo, SOURCE_PREFIX, "tensorboard", None, progress)


# -- export -----------------------------------------------------------------------------------------
def _safe_component(text: str) -> str:
    cleaned = re.sub(r"[^\w\-.=+,@]", "_", text).strip(".") or "_"
    return cleaned[:100]


def _hparams_event(params: dict[str, Any], metric_keys: list[str], start: float) -> Any:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.plugins.hparams import metadata as hp_metadata

    def hp_value(v: Any) -> Any:
        from google.protobuf import struct_pb2

        if isinstance(v, bool):
            return struct_pb2.Value(bool_value=v)
        if isinstance(v, (int, float)):
            return struct_pb2.Value(number_value=float(v))
        if isinstance(v, str):
            return struct_pb2.Value(string_value=v)
        import json

        return struct_pb2.Value(string_value=json.dumps(v))

    events = []
    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=k) for k in params],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metric_keys],
    )
    start_info = plugin_data_pb2.SessionStartInfo(start_time_secs=start)
    for k, v in params.items():
        start_info.hparams[k].CopyFrom(hp_value(v))
    for tag, content in (
        (hp_metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
        (
            hp_metadata.SESSION_START_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(session_start_info=start_info),
        ),
    ):
        summary = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(
                    tag=tag,
                    metadata=hp_metadata.create_summary_metadata(content),
                    tensor=hp_metadata.NULL_TENSOR,
                )
            ]
        )
        events.append(event_pb2.Event(wall_time=start, summary=summary))
    return events


def export_tensorboard(
    outdir: str | os.PathLike[str],
    repo: str | os.PathLike[str] = ".",
    *,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
) -> list[str]:
    """Write event files for each run under *outdir*; returns the run directories written."""
    _require_tensorboard()
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.text import metadata as text_metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    from ..store.repo import open as open_repo

    out = os.fspath(outdir)
    written = []
    with open_repo(repo) as handle:
        for row in handle.rows(filter, experiment):
            record = handle.run(row["id"])
            exp = _safe_component(record.experiment or "default")
            name = _safe_component(f"{record.name}_{record.id[:8]}")
            run_dir = os.path.join(out, exp, name)
            if os.path.isdir(run_dir) and any(EVENT_MARK in f for f in os.listdir(run_dir)):
                written.append(run_dir)  # exported before: the run is immutable once ended
                continue
            points = record.metrics()
            start = (record.start_time or 0) / 1000
            writer = EventFileWriter(run_dir, max_queue_size=1000, flush_secs=3600)
            try:
                if record.params:
                    keys = sorted(set(points["key"])) if len(points) else []
                    for event in _hparams_event(record.params, keys, start):
                        writer.add_event(event)
                for key, step, ts, value in zip(
                    points["key"], points["step"], points["timestamp"], points["value"], strict=True
                ):
                    summary = summary_pb2.Summary(
                        value=[summary_pb2.Summary.Value(tag=key, simple_value=float(value))]
                    )
                    writer.add_event(
                        event_pb2.Event(wall_time=ts / 1000, step=int(step), summary=summary)
                    )
                if record.notes:
                    text = summary_pb2.Summary.Value(
                        tag="notes",
                        metadata=text_metadata.create_summary_metadata(
                            display_name="notes", description=""
                        ),
                        tensor=tensor_util.make_tensor_proto([record.notes.encode()], shape=(1,)),
                    )
                    writer.add_event(
                        event_pb2.Event(
                            wall_time=start, step=0, summary=summary_pb2.Summary(value=[text])
                        )
                    )
            finally:
                writer.close()
            written.append(run_dir)
    return written
