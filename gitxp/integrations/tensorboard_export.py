"""`gitxp export tensorboard`: runs as TensorBoard event files, every summary as it was logged.

    OUTDIR/<experiment>/<run name>/events.out.tfevents.<time>.<host>...gitxp
    OUTDIR/<experiment>/<parent name>/<child name>/...   an add_hparams trial, below its run

A run's name may hold '/', which becomes directories, as TensorBoard shows
run names. Runs whose directories would collide (same experiment, same
name) each get `<name>_<run id>`: no run is ever left out or merged.

Each run directory gets, written with the `tensorboard` package's own
`EventFileWriter`: every metric point as a float64 tensor of the scalars
plugin (TensorBoard's own scalar format, so values round-trip exactly)
with its step and wall time; the params as hparams; the notes as text; and
every summary and graph event kept under the run's `tensorboard/` artifact
(images, audio, video, histograms, text, PR curves, meshes, ...) exactly as
logged, plus the projector's files. A manifest (`_gitxp_tensorboard.json`)
remembers the commit of each run written, so exporting again rewrites only
runs that changed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidValueError
from .tensorboard import EVENT_MARK, _require_tensorboard
from .tensorboard_summaries import LOGDIR_FILES, ROOT, read_events, safe_part, tag_path

MANIFEST = "_gitxp_tensorboard.json"
SUFFIX = ".gitxp"  # the event files this export writes end so


def run_dirs(rows: list[dict[str, Any]]) -> dict[str, str]:
    """Run id -> its directory below OUTDIR (relative, '/'-separated), distinct for every run."""
    by_id = {r["id"]: r for r in rows}
    wanted: dict[str, tuple[str, str]] = {}  # id -> (where it goes, its own part)
    for row in rows:
        parent = row.get("parent")
        base = "" if parent in by_id else safe_part(row.get("experiment") or "default")
        wanted[row["id"]] = (base, tag_path(str(row.get("name") or row["id"])))
    taken: dict[tuple[str, str, str], int] = {}
    for row in rows:
        base, part = wanted[row["id"]]
        key = (base, str(row.get("parent") if not base else ""), part.lower())
        taken[key] = taken.get(key, 0) + 1
    out: dict[str, str] = {}

    def resolve(run_id: str, depth: int = 0) -> str:
        if run_id in out:
            return out[run_id]
        base, part = wanted[run_id]
        row = by_id[run_id]
        key = (base, str(row.get("parent") if not base else ""), part.lower())
        if taken[key] > 1:
            part = f"{part}_{run_id}"
        if not base:
            parent_dir = resolve(row["parent"], depth + 1) if depth < 50 else "_"
            out[run_id] = f"{parent_dir}/{part}"
        else:
            out[run_id] = f"{base}/{part}"
        return out[run_id]

    used: set[str] = set()
    for run_id in by_id:
        path = resolve(run_id)
        if path.lower() in used:  # "a/trial" named so, beside a's own trial "trial"
            out[run_id] = path = f"{path}_{run_id}"
        used.add(path.lower())
    return out


def _hparams_events(params: Mapping[str, Any], metric_keys: list[str], start: float) -> list[Any]:
    """The hparams plugin's experiment and session-start summaries for *params*."""
    from google.protobuf import struct_pb2
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
    from tensorboard.plugins.hparams import metadata as hp_metadata

    def hp_value(v: Any) -> Any:
        if isinstance(v, bool):
            return struct_pb2.Value(bool_value=v)
        if isinstance(v, (int, float)):
            return struct_pb2.Value(number_value=float(v))
        if isinstance(v, str):
            return struct_pb2.Value(string_value=v)
        return struct_pb2.Value(string_value=json.dumps(v))

    experiment = api_pb2.Experiment(
        hparam_infos=[api_pb2.HParamInfo(name=k) for k in params],
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=k)) for k in metric_keys],
    )
    start_info = plugin_data_pb2.SessionStartInfo(start_time_secs=start)
    for k, v in params.items():
        start_info.hparams[k].CopyFrom(hp_value(v))
    events = []
    for tag, content in (
        (hp_metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)),
        (
            hp_metadata.SESSION_START_INFO_TAG,
            plugin_data_pb2.HParamsPluginData(session_start_info=start_info),
        ),
    ):
        value = summary_pb2.Summary.Value(
            tag=tag,
            metadata=hp_metadata.create_summary_metadata(content),
            tensor=hp_metadata.NULL_TENSOR,
        )
        summary = summary_pb2.Summary(value=[value])
        events.append(event_pb2.Event(wall_time=start, summary=summary))
    return events


def _scalar_events(points: Any) -> Any:
    """Every metric point as a float64 scalar tensor (metadata on each tag's first value)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, types_pb2
    from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
    from tensorboard.plugins.scalar import metadata as scalar_metadata

    seen: set[str] = set()
    shape = TensorShapeProto()
    for key, step, ts, value in zip(
        points["key"], points["step"], points["timestamp"], points["value"], strict=True
    ):
        tensor = tensor_pb2.TensorProto(
            dtype=types_pb2.DT_DOUBLE, tensor_shape=shape, double_val=[float(value)]
        )
        out = summary_pb2.Summary.Value(tag=key, tensor=tensor)
        if key not in seen:
            seen.add(key)
            out.metadata.CopyFrom(scalar_metadata.create_summary_metadata("", ""))
        yield event_pb2.Event(
            wall_time=int(ts) / 1000, step=int(step), summary=summary_pb2.Summary(value=[out])
        )


def _notes_event(notes: str, start: float) -> Any:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.text import metadata as text_metadata
    from tensorboard.util import tensor_util

    text = summary_pb2.Summary.Value(
        tag="notes",
        metadata=text_metadata.create_summary_metadata(display_name="notes", description=""),
        tensor=tensor_util.make_tensor_proto([notes.encode()], shape=(1,)),
    )
    return event_pb2.Event(wall_time=start, step=0, summary=summary_pb2.Summary(value=[text]))


def _clear(run_dir: str) -> None:
    """Remove the event files an earlier export wrote into *run_dir* (nothing else)."""
    if os.path.isdir(run_dir):
        for name in os.listdir(run_dir):
            if EVENT_MARK in name and name.endswith(SUFFIX):
                os.remove(os.path.join(run_dir, name))


def write_run(record: Any, run_dir: str) -> None:
    """Write the event files (and projector files) of one run into *run_dir*."""
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    _clear(run_dir)
    points = record.metrics()
    start = (record.start_time or 0) / 1000
    has_summaries = any(f["path"].startswith(f"{ROOT}/") for f in record.artifacts())
    writer = EventFileWriter(run_dir, max_queue_size=1000, flush_secs=3600, filename_suffix=SUFFIX)
    try:
        if record.params:
            keys = sorted(set(points["key"])) if len(points) else []
            for event in _hparams_events(record.params, keys, start):
                writer.add_event(event)
        for event in _scalar_events(points):
            writer.add_event(event)
        if record.notes:
            writer.add_event(_notes_event(record.notes, start))
        if has_summaries:
            with tempfile.TemporaryDirectory(prefix="gitxp-tb-export-") as tmp:
                record.download_artifacts(ROOT, tmp)
                for event in read_events(tmp):
                    writer.add_event(event)
                files = os.path.join(tmp, *LOGDIR_FILES.split("/"))
                if os.path.isdir(files):
                    shutil.copytree(files, run_dir, dirs_exist_ok=True)
    finally:
        writer.close()


def _load_manifest(path: str) -> dict[str, dict[str, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            runs = json.load(f).get("runs", {})
        return runs if isinstance(runs, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}


def export_tensorboard(
    outdir: str | os.PathLike[str],
    repo: str | os.PathLike[str] = ".",
    *,
    filter: str | None = None,
    experiment: str | list[str] | None = None,
) -> list[str]:
    """Write event files for each run under *outdir*; returns the run directories written
    (or found unchanged since the last export)."""
    _require_tensorboard()
    from ..store.repo import open as open_repo

    out = os.path.abspath(os.fspath(outdir))
    if os.path.exists(out) and not os.path.isdir(out):
        raise InvalidValueError("OUTDIR", f"{out} exists and is not a directory")
    os.makedirs(out, exist_ok=True)
    manifest_path = os.path.join(out, MANIFEST)
    done = _load_manifest(manifest_path)
    written = []
    with open_repo(repo) as handle:
        rows = handle.rows(filter, experiment)
        dirs = run_dirs(rows)
        for row in rows:
            rel = dirs[row["id"]]
            run_dir = os.path.join(out, *rel.split("/"))
            before = done.get(row["id"])
            if before and before.get("dir") != rel:
                _clear(os.path.join(out, *str(before.get("dir", "")).split("/")))
            elif before and before.get("commit") == row["commit"] and os.path.isdir(run_dir):
                written.append(run_dir)
                continue
            write_run(handle.run(row["id"]), run_dir)
            done[row["id"]] = {"dir": rel, "commit": row["commit"]}
            written.append(run_dir)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", dir=out)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"runs": done}, f)
    os.replace(tmp, manifest_path)
    return written
