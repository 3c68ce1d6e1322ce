"""The TensorBoard summaries that are not scalars, kept in a run without losing anything.

Images, image grids, figures, video, audio, histograms, text, PR curves,
meshes, custom-scalar layouts, graphs and any other plugin's summaries are
stored under the run's `tensorboard/` artifact (docs/format.md has the
contract):

    tensorboard/summaries.parquet        the index: one row per summary, in logged order
    tensorboard/images/<tag>/<step>.png  image payloads (.jpg when JPEG)
    tensorboard/video/<tag>/<step>.gif   video (TensorBoard's animated GIF images)
    tensorboard/audio/<tag>/<step>.wav   audio clips
    tensorboard/graphs/<step>.pb         graph events: GraphDef (and .meta.pb, .runmeta.pb)
    tensorboard/histograms.parquet       tag, step, wall_time, min, max, num, sum,
                                         sum_squares, bucket_limit, bucket
    tensorboard/text.parquet             tag, step, wall_time, text

The index row keeps the summary's own protocol buffer (TensorBoard's
`Summary.Value`, or the `Event` for graphs) with its large payload moved out
to the files it names, so `gitxp export tensorboard` writes back exactly what
was logged. `SummaryStore` is shared by the `SummaryWriter` look-alike and by
`gitxp import tensorboard`; `read_events` rebuilds the events for the export.
"""

from __future__ import annotations

import io
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

ROOT = "tensorboard"
INDEX = f"{ROOT}/summaries.parquet"
HISTOGRAMS = f"{ROOT}/histograms.parquet"
TEXT = f"{ROOT}/text.parquet"
LOGDIR_FILES = f"{ROOT}/logdir"  # the projector's files (embeddings) of a log directory
SAVE_SECONDS = 30.0  # the tables are saved this often while a writer logs (and at exit)

# graph-like events carry no summary: the field holding the payload, and its file extension
EVENT_FIELDS = {"graph": ("graph_def", "pb"), "meta_graph": ("meta_graph_def", "meta.pb")}
_UNSAFE = re.compile(r"[^\w\-.=+,@]")
_MAGIC = ((b"\x89PNG", "png"), (b"GIF8", "gif"), (b"\xff\xd8", "jpg"), (b"RIFF", "wav"))


def safe_part(text: str) -> str:
    """*text* as one safe path component of an artifact name."""
    cleaned = _UNSAFE.sub("_", text).strip(".") or "_"
    return cleaned[:100]


def tag_path(tag: str) -> str:
    """A summary tag as a relative path (its '/' kept as directories)."""
    return "/".join(safe_part(p) for p in tag.split("/") if p) or "_"


def _extension(data: bytes) -> str:
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    return "bin"


class SummaryStore:
    """Collects the non-scalar summaries of one run.

    *put(path, data)* stores one artifact file (a path below the run's
    artifacts, starting with `tensorboard/`); payloads are put as they come,
    the tables by `save_tables()`, which then calls *publish* (if given) to
    hand everything put so far to the run.
    """

    def __init__(
        self, put: Callable[[str, bytes], None], publish: Callable[[], None] | None = None
    ) -> None:
        self._put = put
        self._publish = publish
        self.rows: list[dict[str, Any]] = []
        self.histograms: list[dict[str, Any]] = []
        self.texts: list[dict[str, Any]] = []
        self._plugin: dict[str, str] = {}
        self._used: set[str] = set()
        self._lock = threading.RLock()
        self._dirty = False
        self._saved_at = time.monotonic()

    def new_file(self) -> None:
        """An event file starts: its tags carry their metadata again."""
        self._plugin.clear()

    def save_tables(self) -> None:
        """Put the index and the histogram and text tables and publish, when anything was
        added since last time."""
        with self._lock:
            if self._dirty:
                for path, data in self.tables().items():
                    self._put(path, data)
                if self._publish is not None:
                    self._publish()
                self._dirty = False
            self._saved_at = time.monotonic()

    def put(self, path: str, data: bytes) -> None:
        """Store a file of the summaries that is no summary (the projector's files)."""
        with self._lock:
            self._dirty = True
            self._put(path, data)

    def save_due(self, seconds: float = SAVE_SECONDS) -> None:
        """Save the tables when they were last saved more than *seconds* ago, so a writer
        never closed loses at most that much of them."""
        if self._dirty and time.monotonic() - self._saved_at > seconds:
            self.save_tables()

    def plugin_of(self, value: Any) -> str:
        """The plugin of *value*'s tag (its metadata comes with the tag's first value only)."""
        if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
            self._plugin[value.tag] = value.metadata.plugin_data.plugin_name
        return self._plugin.get(value.tag, "")

    def _file(self, folder: str, tag: str, step: int, data: bytes, ext: str = "") -> str:
        base = f"{ROOT}/{folder}/{tag_path(tag)}/{step}" if tag else f"{ROOT}/{folder}/{step}"
        ext = ext or _extension(data)
        path, n = f"{base}.{ext}", 1
        while path in self._used:
            n += 1
            path = f"{base}-{n}.{ext}"
        self._used.add(path)
        self._put(path, data)
        return path

    def add_value(self, value: Any, step: int, wall_time: float) -> str:
        """Keep one `Summary.Value` (changed: its payloads move to files); returns its kind."""
        with self._lock:
            self._dirty = True
            return self._add_value(value, step, wall_time)

    def _add_value(self, value: Any, step: int, wall_time: float) -> str:
        plugin = self.plugin_of(value)
        kind, payloads = _take_payloads(value, plugin)
        folder = {"image": "images", "video": "video", "audio": "audio"}.get(kind, kind)
        files = [self._file(folder, value.tag, step, data) for data in payloads]
        if kind == "histogram":
            self.histograms.append(_histogram_row(value, step, wall_time))
        elif kind == "text":
            self.texts.append(
                {"tag": value.tag, "step": step, "wall_time": wall_time, "text": text_of(value)}
            )
        self.rows.append(
            {
                "kind": kind,
                "tag": value.tag,
                "step": step,
                "wall_time": wall_time,
                "files": files,
                "proto": value.SerializeToString(),
            }
        )
        return kind

    def add_event(self, event: Any) -> bool:
        """Keep a graph event (GraphDef, MetaGraphDef, tagged RunMetadata); False for others."""
        with self._lock:
            self._dirty = True
            return self._add_event(event)

    def _add_event(self, event: Any) -> bool:
        step = int(event.step)
        if event.HasField("tagged_run_metadata"):
            meta = event.tagged_run_metadata
            data, meta.run_metadata = meta.run_metadata, b""
            kind, tag = "run_metadata", meta.tag
            files = [self._file("graphs", "", step, data, "runmeta.pb")]
        else:
            found = [k for k, (field, _) in EVENT_FIELDS.items() if event.HasField(field)]
            if not found:
                return False
            kind, tag = found[0], ""
            field, suffix = EVENT_FIELDS[kind]
            data = getattr(event, field)
            event.ClearField(field)
            files = [self._file("graphs", "", step, data, suffix)]
        self.rows.append(
            {
                "kind": kind,
                "tag": tag,
                "step": step,
                "wall_time": float(event.wall_time),
                "files": files,
                "proto": event.SerializeToString(),
            }
        )
        return True

    def tables(self) -> dict[str, bytes]:
        """The index and the histogram and text tables as Parquet files, by artifact path."""
        out = {}
        for path, rows, schema in (
            (INDEX, self.rows, _INDEX_SCHEMA),
            (HISTOGRAMS, self.histograms, _HISTOGRAM_SCHEMA),
            (TEXT, self.texts, _TEXT_SCHEMA),
        ):
            if rows:
                out[path] = _parquet(rows, schema())
        return out


def _take_payloads(value: Any, plugin: str) -> tuple[str, list[bytes]]:
    """The kind of *value* and its large payloads, which are cleared from it."""
    if value.HasField("image"):
        data = value.image.encoded_image_string
        value.image.encoded_image_string = b""
        return ("video" if data.startswith(b"GIF8") else "image"), [data]
    if value.HasField("audio"):
        data = value.audio.encoded_audio_string
        value.audio.encoded_audio_string = b""
        return "audio", [data]
    if value.HasField("histo"):
        return "histogram", []
    if not value.HasField("tensor"):
        return "other", []
    strings = value.tensor.string_val
    if plugin == "images":  # [width, height, encoded image...]
        data = list(strings[2:])
        del strings[2:]
        return ("video" if data and data[0].startswith(b"GIF8") else "image"), data
    if plugin == "audio":  # [[wav, label], ...]: the labels stay in the proto
        step = 2 if _audio_has_labels(value.tensor) else 1
        data = [strings[i] for i in range(0, len(strings), step)]
        for i in range(0, len(strings), step):
            strings[i] = b""
        return "audio", data
    if plugin == "histograms":
        return "histogram", []
    if plugin == "text":
        return "text", []
    return "tensor", []


def _audio_has_labels(tensor: Any) -> bool:
    dims = tensor.tensor_shape.dim
    return len(dims) == 2 and dims[1].size == 2


def _refill(value: Any, plugin: str, payloads: list[bytes]) -> None:
    """Put the payloads `_take_payloads` moved out back into *value*."""
    if not payloads:
        return
    if value.HasField("image"):
        value.image.encoded_image_string = payloads[0]
    elif value.HasField("audio"):
        value.audio.encoded_audio_string = payloads[0]
    elif plugin == "images":
        value.tensor.string_val.extend(payloads)
    elif plugin == "audio":
        step = 2 if _audio_has_labels(value.tensor) else 1
        for n, i in enumerate(range(0, len(value.tensor.string_val), step)):
            value.tensor.string_val[i] = payloads[n]


def text_of(value: Any) -> str:
    """The text of a text-plugin summary (several strings joined by newlines)."""
    return "\n".join(x.decode("utf-8", "replace") for x in value.tensor.string_val)


def _histogram_row(value: Any, step: int, wall_time: float) -> dict[str, Any]:
    row: dict[str, Any] = {"tag": value.tag, "step": step, "wall_time": wall_time}
    if value.HasField("histo"):
        h = value.histo
        row.update(min=h.min, max=h.max, num=h.num, sum=h.sum, sum_squares=h.sum_squares)
        row.update(bucket_limit=list(h.bucket_limit), bucket=list(h.bucket))
        return row
    from tensorboard.util import tensor_util  # tensor-form histograms come from event files

    array = tensor_util.make_ndarray(value.tensor).reshape(-1, 3)  # [left, right, count]
    lefts, rights, counts = array[:, 0].tolist(), array[:, 1].tolist(), array[:, 2].tolist()
    row.update(
        min=lefts[0] if lefts else None,
        max=rights[-1] if rights else None,
        num=float(sum(counts)),
        sum=None,
        sum_squares=None,
        bucket_limit=rights,
        bucket=counts,
    )
    return row


def _INDEX_SCHEMA() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("kind", pa.string()),
            ("tag", pa.string()),
            ("step", pa.int64()),
            ("wall_time", pa.float64()),
            ("files", pa.list_(pa.string())),
            ("proto", pa.binary()),
        ]
    )


def _HISTOGRAM_SCHEMA() -> Any:
    import pyarrow as pa

    number = [(n, pa.float64()) for n in ("min", "max", "num", "sum", "sum_squares")]
    return pa.schema(
        [
            ("tag", pa.string()),
            ("step", pa.int64()),
            ("wall_time", pa.float64()),
            *number,
            ("bucket_limit", pa.list_(pa.float64())),
            ("bucket", pa.list_(pa.float64())),
        ]
    )


def _TEXT_SCHEMA() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("tag", pa.string()),
            ("step", pa.int64()),
            ("wall_time", pa.float64()),
            ("text", pa.string()),
        ]
    )


def _parquet(rows: list[dict[str, Any]], schema: Any) -> bytes:
    """*rows* (dicts with the columns of *schema*) as a Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: [row[name] for row in rows] for name in schema.names}
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), sink, compression="zstd")
    return sink.getvalue()


# -- reading back (export) --------------------------------------------------------------------
def read_events(root: str) -> Iterator[Any]:
    """The events kept under *root* (a downloaded `tensorboard/` artifact's parent), in order.

    Each is TensorBoard's `Event` with its payloads restored from the files.
    """
    import pyarrow.parquet as pq
    from tensorboard.compat.proto import event_pb2, summary_pb2

    index = os.path.join(root, INDEX)
    if not os.path.isfile(index):
        return
    plugins: dict[str, str] = {}
    for row in pq.read_table(index).to_pylist():
        payloads = []
        for rel in row["files"]:
            with open(os.path.join(root, rel), "rb") as f:
                payloads.append(f.read())
        kind = row["kind"]
        if kind in EVENT_FIELDS or kind == "run_metadata":
            event = event_pb2.Event.FromString(row["proto"])
            if kind == "run_metadata":
                event.tagged_run_metadata.run_metadata = payloads[0]
            else:
                setattr(event, EVENT_FIELDS[kind][0], payloads[0])
            yield event
            continue
        value = summary_pb2.Summary.Value.FromString(row["proto"])
        if value.HasField("metadata") and value.metadata.plugin_data.plugin_name:
            plugins[value.tag] = value.metadata.plugin_data.plugin_name
        _refill(value, plugins.get(value.tag, ""), payloads)
        yield event_pb2.Event(
            wall_time=row["wall_time"], step=row["step"], summary=summary_pb2.Summary(value=[value])
        )
