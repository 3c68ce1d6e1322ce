"""`SummaryWriter` with the interface of torch.utils.tensorboard / tensorboardX, recording a gitxp run.

    from gitxp.tensorboard import SummaryWriter   # instead of torch.utils.tensorboard

    train = SummaryWriter("runs/resnet/train")   # a run named train (experiment resnet)
    val = SummaryWriter("runs/resnet/val")       # another run, never mixed with the first
    for step in range(100):
        train.add_scalar("loss", loss, step)
        train.add_histogram("fc.weight", weights, step)
    train.add_hparams({"lr": 0.1}, {"hparam/acc": 0.9})   # a child run, as in TensorBoard
    train.close(); val.close()

Each writer is its own run. It records into the active gitxp run when there
is one that no other open writer holds (and leaves ending it to its owner);
otherwise it starts a run (a child of the active run, if any) named after
the last part of its log directory, in the experiment named after the
directory above it, and ends it on `close()`. Scalars become metric points
(step and wall time kept); text goes to the notes; every other summary
(images, figures, video, audio, histograms, PR curves, meshes, embeddings,
graphs) is kept under the run's `tensorboard/` artifact by `SummaryStore`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import GitxpError, InvalidValueError, MissingExtraError
from . import tensorboard_media as media
from . import tensorboard_runs as runs
from .tensorboard import clean_key
from .tensorboard_summaries import LOGDIR_FILES

if TYPE_CHECKING:
    from ..tracking.run import Run

__all__ = ["SummaryWriter"]

log = logging.getLogger("gitxp.integrations.tensorboard_writer")

# tensorboardX attributes that have no gitxp counterpart, and what to use instead
_NO_SUCH = {
    "file_writer": "gitxp writes no event files; the run is writer.run "
    "(gitxp export tensorboard writes event files)",
    "all_writers": "gitxp writes no event files; add_scalars logs '<main_tag>/<tag>' metrics",
}


class SummaryWriter:
    """Records TensorBoard summaries into a gitxp run: one run per writer."""

    def __init__(
        self,
        log_dir: str | os.PathLike[str] | None = None,
        comment: str = "",
        purge_step: int | None = None,
        max_queue: int = 10,
        flush_secs: int = 120,
        filename_suffix: str = "",
        write_to_disk: bool = True,
        *,
        logdir: str | os.PathLike[str] | None = None,
        experiment: str | None = None,
        repo: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        if log_dir is not None and logdir is not None and os.fspath(log_dir) != os.fspath(logdir):
            raise InvalidValueError("logdir", "give log_dir or logdir (tensorboardX), not both")
        given = log_dir if log_dir is not None else logdir
        self._given_dir = given is not None
        if given is None:  # torch and tensorboardX: runs/<date>_<host><comment>
            stamp = time.strftime("%b%d_%H-%M-%S")
            given = os.path.join("runs", f"{stamp}_{socket.gethostname()}{comment}")
        self.log_dir = os.fspath(given)
        self._comment = comment
        self._experiment = experiment
        self._repo = repo
        if kwargs:
            log.debug("SummaryWriter: ignoring %s", ", ".join(sorted(kwargs)))
        self.purge_step = purge_step  # each writer is a new run: nothing earlier to purge
        self.scalar_dict: dict[str, list[list[float]]] = {}
        self._default: dict[str, Any] = {}
        self._projector = ""
        self._closed = True
        self._reopened_from: str | None = None
        self._open()

    # -- which run ---------------------------------------------------------------------------
    def _open(self) -> None:
        from ..tracking import fluent as tracking

        active = tracking.active_run()
        if active is not None and runs.claim(active):
            self.run, self._owned = active, False
        else:
            self.run, self._owned = self._start(active), True
        self._store = runs.hold(self.run)
        self._closed = False

    def _start(self, active: Run | None) -> Run:
        name, experiment, group = runs.place(self.log_dir if self._given_dir else None)
        if self._comment and (name or not self._given_dir):
            name = f"{name or ''}{self._comment}".strip() or None
        if self._experiment is not None:
            experiment = self._experiment
        elif active is not None:
            experiment = active.experiment
        elif os.environ.get("GITXP_EXPERIMENT"):
            experiment = None  # the environment decides, as for every run
        tags = {"tensorboard.logdir": self.log_dir}
        if group:
            tags["tensorboard.group"] = group
        if self._reopened_from:
            tags["tensorboard.reopened_from"] = self._reopened_from
        repo = self._repo
        if repo is None and active is not None:
            repo = active._git.root  # a child run lives beside its parent
        parent = active.id if active is not None else None
        return runs.new_run(repo, experiment, name, tags, parent)

    def _live(self) -> Run:
        """The run to record into; after `close()` a new one, as tensorboardX reopens."""
        if self._closed:
            self._reopened_from = self.run.id
            self._open()
        return self.run

    def _at(self, global_step: Any, walltime: float | None) -> tuple[int, float]:
        step = _step(global_step)
        if step is None:
            step = self._default.get("global_step") or 0
        wall = walltime if walltime is not None else self._default.get("walltime")
        return step, float(time.time() if wall is None else wall)

    def _keep(self, summaries: list[Any], global_step: Any, walltime: float | None) -> None:
        self._live()
        step, wall = self._at(global_step, walltime)
        for value in summaries:
            self._store.add_value(value, step, wall)
        self._store.save_due()

    # -- scalars, hparams, text ----------------------------------------------------------------
    def add_scalar(
        self,
        tag: str,
        scalar_value: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        new_style: bool | str = False,
        double_precision: bool = False,
        display_name: str = "",
        summary_description: str = "",
    ) -> None:
        """Record one point of the metric *tag* (tensorboardX's display_name and
        summary_description are accepted; TensorBoard shows the tag)."""
        value = scalar_value.item() if hasattr(scalar_value, "item") else scalar_value
        step = _step(global_step)
        if step is None:
            step = _step(self._default.get("global_step"))
        if walltime is None:
            walltime = self._default.get("walltime")
        self._live().log_metric(clean_key(tag), value, step, _ms(walltime))

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: Mapping[str, Any],
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Record several related metrics, each as ``<main_tag>/<tag>``."""
        wall = time.time() if walltime is None else walltime
        for tag, value in tag_scalar_dict.items():
            self.add_scalar(f"{main_tag}/{tag}", value, global_step, wall)
            number = float(value.item() if hasattr(value, "item") else value)
            key = f"{self.log_dir}/{main_tag}/{tag}"
            self.scalar_dict.setdefault(key, []).append([wall, _step(global_step) or 0, number])

    def export_scalars_to_json(self, path: str | os.PathLike[str]) -> None:
        """tensorboardX's: write the `add_scalars` values so far as JSON
        (``{"<logdir>/<main_tag>/<tag>": [[wall time, step, value], ...]}``), then forget them."""
        import json

        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.scalar_dict, f)
        self.scalar_dict = {}

    def add_hparams(
        self,
        hparam_dict: Mapping[str, Any],
        metric_dict: Mapping[str, Any],
        hparam_domain_discrete: Any = None,
        run_name: str | None = None,
        global_step: int | None = None,
        *,
        name: str | None = None,
    ) -> str:
        """Record one hyperparameter trial as a child run, as TensorBoard does: named
        *run_name* (torch) or *name* (tensorboardX) or the time, holding the hparams as
        params and *metric_dict* as metrics. Returns the child run's id."""
        if isinstance(hparam_domain_discrete, str):  # tensorboardX: (hparams, metrics, name)
            name, hparam_domain_discrete = hparam_domain_discrete, None
        if not isinstance(hparam_dict, Mapping) or not isinstance(metric_dict, Mapping):
            raise InvalidValueError("add_hparams", "hparam_dict and metric_dict must be dicts")
        run = self._live()
        label = name or run_name or str(time.time())
        tags = {"tensorboard.logdir": f"{self.log_dir}/{label}"}
        params = {k: _plain(v) for k, v in hparam_dict.items()}
        child = runs.new_run(
            self._repo or run._git.root, run.experiment, label, tags, run.id, params
        )
        try:
            step = _step(global_step)
            for key, value in metric_dict.items():
                child.log_metric(clean_key(key), _plain(value), step)
        except BaseException as exc:
            child.end("FAILED", f"{type(exc).__name__}: {exc}")
            raise
        child.end()
        return child.id

    def add_text(
        self,
        tag: str,
        text_string: str,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Append text to the run's notes (headed by its tag and step) and keep the summary."""
        step = "" if global_step is None else f" (step {global_step})"
        self._live().note(f"**{tag}**{step}: {text_string}")
        try:
            summaries = media.text(tag, text_string)
        except MissingExtraError:
            return  # without tensorboardX the notes hold the text
        self._keep(summaries, global_step, walltime)

    # -- images, figures, video, audio -------------------------------------------------------
    def add_image(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "CHW",
    ) -> None:
        """Keep an image as PNG: `tensorboard/images/<tag>/<step>.png`."""
        self._keep(media.image(tag, img_tensor, dataformats), global_step, walltime)

    def add_images(
        self,
        tag: str,
        img_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """Keep a batch of images as one grid image, as TensorBoard shows it."""
        self._keep(media.image(tag, img_tensor, dataformats), global_step, walltime)

    def add_image_with_boxes(
        self,
        tag: str,
        img_tensor: Any,
        box_tensor: Any,
        global_step: int | None = None,
        walltime: float | None = None,
        rescale: float = 1,
        dataformats: str = "CHW",
        labels: Any = None,
    ) -> None:
        """Keep an image with its bounding boxes drawn."""
        made = media.image_boxes(tag, img_tensor, box_tensor, dataformats, rescale, labels)
        self._keep(made, global_step, walltime)

    def add_figure(
        self,
        tag: str,
        figure: Any,
        global_step: int | None = None,
        close: bool = True,
        walltime: float | None = None,
    ) -> None:
        """Keep a matplotlib figure (or a list of them, as a grid) as a PNG image."""
        array = media.figure_array(figure, close)
        formats = "NHWC" if array.ndim == 4 else "HWC"
        self._keep(media.image(tag, array, formats), global_step, walltime)

    def add_video(
        self,
        tag: str,
        vid_tensor: Any,
        global_step: int | None = None,
        fps: float = 4,
        walltime: float | None = None,
    ) -> None:
        """Keep a video (N, T, C, H, W) as an animated GIF: `tensorboard/video/<tag>/<step>.gif`."""
        self._keep(media.video(tag, vid_tensor, fps), global_step, walltime)

    def add_audio(
        self,
        tag: str,
        snd_tensor: Any,
        global_step: int | None = None,
        sample_rate: int = 44100,
        walltime: float | None = None,
    ) -> None:
        """Keep a sound clip as WAV: `tensorboard/audio/<tag>/<step>.wav`."""
        self._keep(media.audio(tag, snd_tensor, sample_rate), global_step, walltime)

    # -- histograms, curves, meshes, layouts -------------------------------------------------
    def add_histogram(
        self,
        tag: str,
        values: Any,
        global_step: int | None = None,
        bins: Any = "tensorflow",
        walltime: float | None = None,
        max_bins: int | None = None,
    ) -> None:
        """Keep a histogram of *values* (a row of `tensorboard/histograms.parquet`)."""
        self._keep(media.histogram(tag, values, bins, max_bins), global_step, walltime)

    def add_histogram_raw(
        self,
        tag: str,
        min: float,
        max: float,
        num: int,
        sum: float,
        sum_squares: float,
        bucket_limits: Any,
        bucket_counts: Any,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Keep a histogram given by its buckets."""
        numbers = (min, max, num, sum, sum_squares, bucket_limits, bucket_counts)
        self._keep(media.histogram_raw(tag, *numbers), global_step, walltime)

    def add_pr_curve(
        self,
        tag: str,
        labels: Any,
        predictions: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        """Keep a precision-recall curve (TensorBoard's pr_curves summary)."""
        made = media.pr_curve(tag, labels, predictions, num_thresholds, weights)
        self._keep(made, global_step, walltime)

    def add_pr_curve_raw(
        self,
        tag: str,
        true_positive_counts: Any,
        false_positive_counts: Any,
        true_negative_counts: Any,
        false_negative_counts: Any,
        precision: Any,
        recall: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
        weights: Any = None,
        walltime: float | None = None,
    ) -> None:
        """Keep a precision-recall curve given by its counts."""
        counts = (
            true_positive_counts,
            false_positive_counts,
            true_negative_counts,
            false_negative_counts,
            precision,
            recall,
        )
        self._keep(media.pr_curve_raw(tag, counts, num_thresholds, weights), global_step, walltime)

    def add_mesh(
        self,
        tag: str,
        vertices: Any,
        colors: Any = None,
        faces: Any = None,
        config_dict: Any = None,
        global_step: int | None = None,
        walltime: float | None = None,
    ) -> None:
        """Keep a 3D mesh or point cloud (TensorBoard's mesh summaries)."""
        made = media.mesh(tag, vertices, colors, faces, config_dict)
        self._keep(made, global_step, walltime)

    def add_custom_scalars(self, layout: Mapping[str, Any]) -> None:
        """Keep the custom-scalars layout: {category: {title: ["Multiline"|"Margin", tags]}}."""
        self._keep(media.custom_scalars(layout), 0, None)

    def add_custom_scalars_multilinechart(
        self, tags: list[str], category: str = "default", title: str = "untitled"
    ) -> None:
        """A custom-scalars chart drawing *tags* together."""
        self.add_custom_scalars({category: {title: ["Multiline", tags]}})

    def add_custom_scalars_marginchart(
        self, tags: list[str], category: str = "default", title: str = "untitled"
    ) -> None:
        """A custom-scalars chart of a value and its lower and upper bound (three tags)."""
        if len(tags) != 3:
            raise InvalidValueError("tags", "a margin chart takes three tags: value, lower, upper")
        self.add_custom_scalars({category: {title: ["Margin", tags]}})

    # -- embeddings and graphs ---------------------------------------------------------------
    def add_embedding(
        self,
        mat: Any,
        metadata: Any = None,
        label_img: Any = None,
        global_step: int | None = None,
        tag: str = "default",
        metadata_header: Any = None,
    ) -> None:
        """Keep an embedding in the projector's files: `tensorboard/logdir/<step>/<tag>/...`."""
        self._live()
        step = _step(global_step) or 0
        made = media.embedding_files(
            mat, metadata, label_img, step, tag, metadata_header, self._projector
        )
        for rel, data in made:
            if rel == "projector_config.pbtxt":
                self._projector = data.decode()
            self._store.put(f"{LOGDIR_FILES}/{rel}", data)

    def add_graph(
        self,
        model: Any,
        input_to_model: Any = None,
        verbose: bool = False,
        use_strict_trace: bool = True,
    ) -> None:
        """Keep a torch model's graph (GraphDef), traced with *input_to_model*."""
        self._live()
        for event in media.graph_events(model, input_to_model, verbose, use_strict_trace):
            event.wall_time = time.time()
            self._store.add_event(event)

    def add_onnx_graph(self, onnx_model_file: str, walltime: float | None = None) -> None:
        """tensorboardX's: an ONNX model's graph (needs the onnx package)."""
        self._foreign_graph("onnx", "load_onnx_graph", onnx_model_file, walltime)

    def add_openvino_graph(self, xmlname: str, walltime: float | None = None) -> None:
        """tensorboardX's: an OpenVINO model's graph."""
        self._foreign_graph("openvino", "load_openvino_graph", xmlname, walltime)

    def _foreign_graph(self, kind: str, loader: str, path: str, walltime: float | None) -> None:
        import importlib

        try:
            load = getattr(importlib.import_module(f"tensorboardX.{kind}_graph"), loader)
            graph = load(path)
        except ImportError as exc:
            raise MissingExtraError(
                f"SummaryWriter.add_{kind}_graph", exc.name or kind, "tensorboard"
            ) from None
        from tensorboard.compat.proto import event_pb2

        self._live()
        wall = time.time() if walltime is None else walltime
        event = event_pb2.Event(wall_time=wall, graph_def=graph.SerializeToString())
        self._store.add_event(event)

    # -- lifecycle ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def use_metadata(
        self, *, global_step: int | None = None, walltime: float | None = None
    ) -> Iterator[SummaryWriter]:
        """tensorboardX's: the step and wall time of every call inside the block."""
        if global_step is None and walltime is None:
            raise InvalidValueError("use_metadata", "give global_step or walltime")
        self._default = {"global_step": global_step, "walltime": walltime}
        try:
            yield self
        finally:
            self._default = {}

    @property
    def logdir(self) -> str:
        """tensorboardX's name for `log_dir`."""
        return self.log_dir

    def get_logdir(self) -> str:
        """The log directory the writer was given (or torch's default, runs/<time>_<host>)."""
        return self.log_dir

    def flush(self) -> None:
        """Commit what was logged so far (a checkpoint of the run)."""
        if not self._closed:
            self._store.save_tables()
            self.run.checkpoint()

    def close(self) -> None:
        """End the run if this writer started it; otherwise just checkpoint."""
        self._finish("FINISHED", None)

    def _finish(self, status: str, error: str | None) -> None:
        if self._closed:
            return
        try:
            self._store.save_tables()
        finally:
            self._release()
            if self._owned:
                self.run.end(status, error)
            else:
                self.run.checkpoint()

    def _release(self) -> None:
        self._closed = True
        runs.release(self.run, ended=self._owned)

    def __enter__(self) -> SummaryWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            status = "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"
            self._finish(status, f"{exc_type.__name__}: {exc}")

    def __getattr__(self, name: str) -> Any:
        if name in _NO_SUCH:
            raise GitxpError(f"SummaryWriter.{name} is tensorboardX's: {_NO_SUCH[name]}")
        raise AttributeError(f"'SummaryWriter' object has no attribute {name!r}")


def _step(step: Any) -> int | None:
    if step is None:
        return None
    return int(step.item() if hasattr(step, "item") else step)


def _ms(walltime: float | None) -> int | None:
    return None if walltime is None else round(float(walltime) * 1000)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value
