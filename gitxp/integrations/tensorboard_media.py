"""Building the non-scalar summaries of `SummaryWriter`: images, figures, video, audio,
histograms, PR curves, meshes, custom scalars, embeddings and graphs.

Each function turns what a training script passes (numpy arrays, torch
tensors, matplotlib figures, a torch model) into TensorBoard's own summary
protocol buffers, made by tensorboardX's `summary` module (or
`torch.utils.tensorboard`'s where tensorboardX is missing), so a summary is
byte for byte what those writers would write. `SummaryStore` then keeps it.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import InvalidValueError, MissingExtraError


def backend() -> Any:
    """The module that makes summaries: tensorboardX.summary, or torch.utils.tensorboard's."""
    try:
        from tensorboardX import summary

        return summary
    except ImportError:
        pass
    try:
        from torch.utils.tensorboard import summary as torch_summary

        return torch_summary
    except ImportError:
        raise MissingExtraError(
            "SummaryWriter's images, histograms, audio and other non-scalar calls",
            "tensorboardX",
            "tensorboard",
        ) from None


def _make(what: str, tag: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
    """The `Summary.Value`s *call* makes; what it refuses is one line naming the summary."""
    try:
        return list(call(*args, **kwargs).value)
    except (AssertionError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidValueError(f"{what} {tag!r}", f"cannot be made: {reason}") from None


def image(tag: str, tensor: Any, dataformats: str, rescale: float = 1) -> list[Any]:
    """An image (or a grid, for NCHW/NHWC batches) as PNG."""
    return _make(
        "image", tag, backend().image, tag, tensor, rescale=rescale, dataformats=dataformats
    )


def image_boxes(
    tag: str, tensor: Any, boxes: Any, dataformats: str, rescale: float, labels: Any
) -> list[Any]:
    """An image with bounding boxes drawn on it."""
    api = backend()
    return _make(
        "image", tag, api.image_boxes, tag, tensor, boxes, rescale, dataformats, labels=labels
    )


def figure_array(figure: Any, close: bool) -> Any:
    """A matplotlib figure (or a list of them) rendered to a uint8 HWC (or NHWC) array."""
    import numpy as np

    if isinstance(figure, (list, tuple)):
        return np.stack([figure_array(f, close) for f in figure])
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        raise MissingExtraError("SummaryWriter.add_figure", "matplotlib", "plot") from None
    canvas = FigureCanvasAgg(figure)
    canvas.draw()  # type: ignore[no-untyped-call]
    rgba = canvas.buffer_rgba()  # type: ignore[no-untyped-call]
    array = np.asarray(rgba)[:, :, :3].copy()
    if close:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return array


def video(tag: str, tensor: Any, fps: float) -> list[Any]:
    """A video (N, T, C, H, W) as an animated GIF image, as TensorBoard shows video."""
    import numpy as np

    try:
        from PIL import Image
    except ImportError:
        raise MissingExtraError("SummaryWriter.add_video", "Pillow", "plot") from None
    frames = _video_frames(np.asarray(_numpy(tensor)))
    pictures = [Image.fromarray(f[:, :, 0] if f.shape[2] == 1 else f) for f in frames]
    out = io.BytesIO()
    pictures[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=pictures[1:],
        duration=max(1, round(1000 / fps)),
        loop=0,
    )
    _t, h, w, c = frames.shape
    pb = backend().Summary
    picture = pb.Image(height=h, width=w, colorspace=c, encoded_image_string=out.getvalue())
    return [pb.Value(tag=tag, image=picture)]


def _numpy(x: Any) -> Any:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return x


def _video_frames(v: Any) -> Any:
    """(N, T, C, H, W) -> (T, H', W', C) uint8 frames, the batch laid out as a grid."""
    import numpy as np

    if v.ndim != 5:
        raise InvalidValueError("vid_tensor", f"shape {v.shape}: expected (N, T, C, H, W)")
    if v.dtype != np.uint8:
        v = (np.clip(v, 0, 1) * 255).astype(np.uint8)
    n, t, c, h, w = v.shape
    cols = 2 ** int(np.ceil(np.log2(n) / 2)) if n > 1 else 1
    rows = int(np.ceil(n / cols))
    grid = np.zeros((t, c, rows * h, cols * w), dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, cols)
        grid[:, :, r * h : (r + 1) * h, col * w : (col + 1) * w] = v[i]
    return grid.transpose(0, 2, 3, 1)


def audio(tag: str, tensor: Any, sample_rate: int) -> list[Any]:
    """A clip of samples in [-1, 1], shape (L,) or (1, L), as 16-bit mono WAV (torch's form)."""
    import wave

    import numpy as np

    samples = np.asarray(_numpy(tensor), dtype=np.float64).squeeze()
    if samples.ndim != 1:
        raise InvalidValueError("snd_tensor", f"shape {samples.shape}: expected (L,) or (1, L)")
    pcm = (np.clip(samples, -1, 1) * np.iinfo(np.int16).max).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    pb = backend().Summary
    clip = pb.Audio(
        sample_rate=sample_rate,
        num_channels=1,
        length_frames=len(pcm),
        encoded_audio_string=out.getvalue(),
        content_type="audio/wav",
    )
    return [pb.Value(tag=tag, audio=clip)]


def histogram(tag: str, values_: Any, bins: Any, max_bins: int | None) -> list[Any]:
    """A histogram of *values_* (TensorBoard's `HistogramProto`); bins="tensorflow" are
    TensorFlow's exponential buckets, as torch and tensorboardX use."""
    if isinstance(bins, str) and bins == "tensorflow":
        bins = _tensorflow_bins()
    return _make("histogram", tag, backend().histogram, tag, values_, bins, max_bins=max_bins)


def _tensorflow_bins() -> list[float]:
    v, buckets = 1e-12, []
    while v < 1e20:
        buckets.append(v)
        v *= 1.1
    return [-b for b in reversed(buckets)] + [0.0] + buckets


def histogram_raw(tag: str, *numbers: Any) -> list[Any]:
    """A histogram given as min, max, num, sum, sum_squares, bucket limits and counts."""
    return _make("histogram", tag, backend().histogram_raw, tag, *numbers)


def pr_curve(tag: str, labels: Any, predictions: Any, num_thresholds: int, weights: Any) -> Any:
    """A precision-recall curve (the pr_curves plugin's tensor)."""
    import numpy as np

    labels, predictions = np.asarray(_numpy(labels)), np.asarray(_numpy(predictions))
    api = backend()
    return _make("PR curve", tag, api.pr_curve, tag, labels, predictions, num_thresholds, weights)


def pr_curve_raw(tag: str, counts: Sequence[Any], num_thresholds: int, weights: Any) -> Any:
    """A precision-recall curve from tp, fp, tn, fn, precision and recall arrays."""
    api = backend()
    return _make("PR curve", tag, api.pr_curve_raw, tag, *counts, num_thresholds, weights)


def mesh(tag: str, vertices: Any, colors: Any, faces: Any, config: Any) -> list[Any]:
    """A 3D mesh or point cloud (the mesh plugin's tensors)."""
    return _make("mesh", tag, backend().mesh, tag, vertices, colors, faces, config)


def custom_scalars(layout: Any) -> list[Any]:
    """The custom-scalars layout (the charts TensorBoard draws from several tags)."""
    return _make("custom scalars layout", "", backend().custom_scalars, layout)


def text(tag: str, text_string: str) -> list[Any]:
    """A text summary (Markdown, the text plugin's tensor)."""
    return _make("text", tag, backend().text, tag, text_string)


def embedding_files(
    mat: Any, metadata: Any, label_img: Any, step: int, tag: str, header: Any, config: str
) -> Iterator[tuple[str, bytes]]:
    """The projector files of one `add_embedding`, as (path in the log directory, content).

    The files are those tensorboardX writes (`<step>/<tag>/tensors.tsv`,
    `metadata.tsv`, `sprite.png`); `projector_config.pbtxt` is *config* with
    this embedding appended.
    """
    try:
        from tensorboardX import embedding
        from tensorboardX.x2num import make_np
    except ImportError:
        raise MissingExtraError(
            "SummaryWriter.add_embedding", "tensorboardX", "tensorboard"
        ) from None
    from .tensorboard_summaries import safe_part

    mat = make_np(mat)
    if mat.ndim != 2:
        raise InvalidValueError("mat", f"shape {mat.shape}: expected (points, dimensions)")
    subdir = f"{str(step).zfill(5)}/{safe_part(tag)}"
    with tempfile.TemporaryDirectory(prefix="gitxp-embedding-") as tmp:
        target = os.path.join(tmp, subdir)
        os.makedirs(target)
        if config:
            with open(os.path.join(tmp, "projector_config.pbtxt"), "w") as f:
                f.write(config)
        try:
            if metadata is not None:
                if len(metadata) != mat.shape[0]:
                    raise ValueError(f"{len(metadata)} labels for {mat.shape[0]} points")
                embedding.make_tsv(metadata, target, metadata_header=header)
            if label_img is not None:
                embedding.make_sprite(label_img, target)
            embedding.make_mat(mat, target)
            embedding.append_pbtxt(metadata, label_img, tmp, subdir, step, tag)
        except (AssertionError, ValueError, TypeError, IndexError) as exc:
            raise InvalidValueError(f"embedding {tag!r}", f"cannot be made: {exc}") from None
        for base, _dirs, files in os.walk(tmp):
            for name in sorted(files):
                full = os.path.join(base, name)
                with open(full, "rb") as f:
                    yield os.path.relpath(full, tmp).replace(os.sep, "/"), f.read()


def graph_events(model: Any, input_to_model: Any, verbose: bool, strict: bool) -> list[Any]:
    """A torch model's graph as TensorBoard's events: the GraphDef and its RunMetadata."""
    try:
        from torch.utils.tensorboard._pytorch_graph import graph
    except ImportError:
        raise MissingExtraError(
            "SummaryWriter.add_graph", "torch", "tensorboard", "install torch and tensorboard"
        ) from None
    from tensorboard.compat.proto import event_pb2

    graph_def, step_stats = graph(model, input_to_model, verbose, strict)  # type: ignore[no-untyped-call]
    tagged = event_pb2.TaggedRunMetadata(tag="step1", run_metadata=step_stats.SerializeToString())
    return [
        event_pb2.Event(graph_def=graph_def.SerializeToString()),
        event_pb2.Event(tagged_run_metadata=tagged),
    ]
