"""TensorBoard event files in: `gitxp import tensorboard` (the export is tensorboard_export.py).

Uses the `tensorboard` package's own reader (the `tensorboard` extra): its
`LegacyEventFileLoader` yields every event exactly as written, old
`simple_value` scalars and new tensor-encoded ones alike.

One gitxp run per directory holding event files (TensorBoard's own notion
of a run), named after the directory relative to LOGDIR. Scalars keep their
steps and wall times (float32 and float64 values exactly); hparams become
params; text summaries go to the run's notes. Every other summary (images,
audio, video, histograms, text, PR curves, meshes, custom scalars, any
plugin's), the graph events and the projector's files (embeddings:
`projector_config.pbtxt` and the files it names) are kept under the run's
`tensorboard/` artifact by `SummaryStore`. The source id is the directory plus a digest of its event
file names, so importing the same log directory again adds nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from ..errors import GitxpError, InvalidValueError
from .mlflow_import import ImportResult, SourceRun, write_runs
from .tensorboard_summaries import LOGDIR_FILES, ROOT, SummaryStore, tag_path

SOURCE_PREFIX = "tensorboard:"
EVENT_MARK = "tfevents"
PROJECTOR_CONFIG = "projector_config.pbtxt"
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


def _scalar(value: Any, plugin: str) -> float | None:
    """The number of a scalar summary (old `simple_value` or a scalars-plugin tensor), or None."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if value.HasField("tensor") and plugin == "scalars":
        from tensorboard.util import tensor_util

        return float(tensor_util.make_ndarray(value.tensor).reshape(-1)[0])
    return None


def read_run_dir(files: list[str], store: SummaryStore | None = None) -> dict[str, Any]:
    """Scalars, hparams, texts and the time span of one run directory's event files.

    Every other summary and graph event goes to *store* (dropped without one).
    """
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader
    from tensorboard.plugins.hparams import metadata as hp_metadata

    store = store or SummaryStore(lambda path, data: None)
    scalars: dict[str, tuple[list[int], list[int], list[float]]] = {}
    params: dict[str, Any] = {}
    texts: list[str] = []
    first: float | None = None
    last: float | None = None
    for path in files:
        store.new_file()
        for event in LegacyEventFileLoader(path).Load():  # as written: nothing converted
            wall = event.wall_time
            first = wall if first is None else min(first, wall)
            last = wall if last is None else max(last, wall)
            if not event.HasField("summary"):
                store.add_event(event)
                continue
            for value in event.summary.value:
                plugin = store.plugin_of(value)
                if plugin == hp_metadata.PLUGIN_NAME:
                    if value.tag == hp_metadata.SESSION_START_INFO_TAG:
                        info = hp_metadata.parse_session_start_info_plugin_data(
                            value.metadata.plugin_data.content
                        )
                        for name, hp in info.hparams.items():
                            params[name] = _hparam_value(hp)
                    continue
                number = _scalar(value, plugin)
                if number is None:
                    if store.add_value(value, int(event.step), wall) == "text":
                        body = store.texts[-1]["text"]
                        texts.append(f"**{value.tag}** (step {event.step}): {body}")
                    continue
                steps, stamps, values = scalars.setdefault(clean_key(value.tag), ([], [], []))
                steps.append(int(event.step))
                stamps.append(round(wall * 1000))
                values.append(number)
    return {"scalars": scalars, "params": params, "texts": texts, "first": first, "last": last}


_PROJECTOR_PATH = re.compile(r'(?:tensor_path|metadata_path|image_path)\s*:\s*"((?:[^"\\]|\\.)*)"')


def _projector_files(logdir: str, rel: str) -> list[str]:
    """The projector's files of run directory *rel* (relative to it): its
    `projector_config.pbtxt` and the tensors, metadata and sprites it names.
    Other files (checkpoints beside the event files, say) are not TensorBoard's."""
    root = os.path.join(logdir, rel)
    config = os.path.join(root, PROJECTOR_CONFIG)
    if not os.path.isfile(config):
        return []
    with open(config, encoding="utf-8", errors="replace") as f:
        named = _PROJECTOR_PATH.findall(f.read())
    out = [PROJECTOR_CONFIG]
    for name in named:
        path = os.path.normpath(os.path.join(root, name))
        inside = os.path.commonpath([os.path.abspath(root), os.path.abspath(path)])
        if inside == os.path.abspath(root) and os.path.isfile(path) and not os.path.islink(path):
            out.append(os.path.relpath(path, root).replace(os.sep, "/"))
    return sorted(set(out))


def _run_store(scratch: str, logdir: str, rel: str) -> SummaryStore:
    """A store writing a run's summaries below *scratch* (copied into the run at import)."""

    def put(path: str, data: bytes) -> None:
        target = os.path.join(scratch, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as f:
            f.write(data)

    store = SummaryStore(put)
    for name in _projector_files(logdir, rel):
        with open(os.path.join(logdir, rel, name), "rb") as f:
            put(f"{LOGDIR_FILES}/{tag_path(name)}", f.read())
    return store


def _copier(scratch: str) -> Callable[[str], bool]:
    def copy(dst: str) -> bool:
        if not os.path.isdir(os.path.join(scratch, ROOT)):
            return False
        shutil.copytree(os.path.join(scratch, ROOT), os.path.join(dst, ROOT))
        return True

    return copy


def read_logdir(logdir: str, experiment: str, scratch: str | None = None) -> Iterator[SourceRun]:
    """One `SourceRun` per event-file directory below *logdir*; their non-scalar summaries
    are written below *scratch* (dropped when None) until the runs are written."""
    _require_tensorboard()
    if not os.path.isdir(logdir):
        raise InvalidValueError("LOGDIR", f"{logdir} is not a directory")
    dirs = event_dirs(logdir)
    if not dirs:
        raise GitxpError(f"no TensorBoard event files (*tfevents*) below {logdir}")
    root_name = os.path.basename(os.path.abspath(logdir)) or "run"
    for n, (rel, files) in enumerate(dirs.items()):
        digest = hashlib.sha1("\n".join(os.path.basename(f) for f in files).encode()).hexdigest()[
            :16
        ]
        store, artifacts = None, None
        if scratch is not None:
            run_scratch = os.path.join(scratch, str(n))
            store = _run_store(run_scratch, logdir, rel)
            artifacts = _copier(run_scratch)
        data = read_run_dir(files, store)
        if store is not None:
            store.save_tables()
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
            artifacts=artifacts,
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

    Scalars become metric points, hparams params, text notes; images, audio,
    video, histograms, text, PR curves, meshes, graphs and the projector's
    files are kept under each run's `tensorboard/` artifact.
    """
    path = os.fspath(logdir)
    exp = experiment or os.path.basename(os.path.abspath(path)) or "tensorboard"
    with tempfile.TemporaryDirectory(prefix="gitxp-tb-import-") as scratch:
        runs = list(read_logdir(path, exp, scratch))
        return write_runs(runs, repo, SOURCE_PREFIX, "tensorboard", None, progress)
