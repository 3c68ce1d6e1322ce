"""MLflow's fluent logging calls: params, metrics, tags and artifacts of the active run.

Each writes to the run mlflow_fluent.run_for picks: the active run (or the
active run with the given *run_id*), else a run started on the spot, as
MLflow does on the first logging call.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import GitxpError, InvalidValueError
from .mlflow_fluent import apply_tags, run_for, warn_once


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Record one param; returns the value, as MLflow does."""
    run_for("log_param").log_param(key, value)
    return value


def log_params(
    params: Mapping[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> None:
    """Record several params at once."""
    run_for("log_params", run_id).log_params(params)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    **_: Any,
) -> None:
    """Record one metric point (MLflow's optional dataset/model arguments are ignored)."""
    run_for("log_metric", run_id).log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    **_: Any,
) -> None:
    """Record several metrics at one step."""
    run_for("log_metrics", run_id).log_metrics(metrics, step, timestamp)


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> None:
    """Set one tag (MLflow's reserved ones set the run name, note or parent)."""
    apply_tags(run_for("set_tag"), {key: value})


def set_tags(tags: Mapping[str, Any], synchronous: bool | None = None) -> None:
    """Set several tags, as set_tag does."""
    apply_tags(run_for("set_tags"), tags)


def delete_tag(key: str) -> None:
    """Remove a tag from the active run (no error when it is not set)."""
    run = run_for("delete_tag")
    run._tags.pop(key, None)
    run._set_meta()


# -- artifacts ----------------------------------------------------------------------------------
def _artifact_name(artifact_path: str | None, filename: str) -> str:
    """The artifact name of *filename* under *artifact_path* (at the root without one)."""
    if artifact_path:
        return f"{artifact_path.strip('/')}/{filename}"
    return filename


def log_artifact(
    local_path: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Store a file among the run's artifacts (under *artifact_path* when given)."""
    path = os.fspath(local_path)
    run_for("log_artifact", run_id).log_artifact(
        path, _artifact_name(artifact_path, os.path.basename(path))
    )


def log_artifacts(
    local_dir: str | os.PathLike[str], artifact_path: str | None = None, run_id: str | None = None
) -> None:
    """Store every file below *local_dir* (under *artifact_path* when given)."""
    run = run_for("log_artifacts", run_id)
    root = os.fspath(local_dir)
    if not os.path.isdir(root):
        raise InvalidValueError("local_dir", f"{root} is not a directory")
    if artifact_path and artifact_path.strip("/"):
        run.log_artifact(root, artifact_path.strip("/"))
        return
    # no artifact path: the directory's contents land at the artifact root, entry by entry
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_symlink():
            run.log_artifact(entry.path, entry.name)


def _log_bytes(call: str, data: bytes, artifact_file: str, run_id: str | None = None) -> None:
    """Store *data* as the artifact *artifact_file* of the run *call* writes to."""
    from ..store.artifacts import log_content

    log_content(run_for(call, run_id)._writer, data, artifact_file)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    """Store *text* as the artifact *artifact_file*."""
    run_for("log_text", run_id).log_text(text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    """Store *dictionary* as JSON, or YAML when *artifact_file* ends in .yaml/.yml."""
    run_for("log_dict", run_id).log_dict(dictionary, artifact_file)


def log_figure(
    figure: Any, artifact_file: str, *, save_kwargs: dict[str, Any] | None = None, **_: Any
) -> None:
    """Store a matplotlib figure (or a plotly one as .html) as an image artifact."""
    import io

    buf = io.BytesIO()
    if hasattr(figure, "savefig"):
        ext = os.path.splitext(artifact_file)[1].lstrip(".") or "png"
        figure.savefig(buf, format=ext, **(save_kwargs or {}))
        data = buf.getvalue()
    elif hasattr(figure, "to_html"):
        data = figure.to_html(**(save_kwargs or {})).encode("utf-8")
    else:
        raise InvalidValueError(
            "figure", f"expected a matplotlib or plotly figure, got {type(figure).__name__}"
        )
    _log_bytes("log_figure", data, artifact_file)


def log_image(image: Any, artifact_file: str, **_: Any) -> None:
    """Store a numpy array or PIL image as a PNG artifact (needs Pillow)."""
    import io

    try:
        from PIL import Image
    except ImportError:
        raise GitxpError("log_image() needs Pillow; install pillow") from None
    img = image if hasattr(image, "save") else Image.fromarray(image)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    _log_bytes("log_image", buf.getvalue(), artifact_file)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The URI of the active run's artifacts (``runs:/<id>/<path>``), as MLflow names them."""
    run = run_for("get_artifact_uri")
    return f"runs:/{run.id}/{artifact_path.strip('/')}" if artifact_path else f"runs:/{run.id}"


def autolog(*args: Any, **kwargs: Any) -> None:
    """Accepted so scripts run, but nothing is logged automatically: log explicitly."""
    warn_once(
        "autolog",
        "gitxp.mlflow: autolog() records nothing; log params and metrics explicitly "
        "(gitxp.log_classification logs a classifier's metrics in one call)",
    )
