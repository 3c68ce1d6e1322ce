"""`gitxp import mlflow`: copy runs out of an MLflow store into gitxp, nothing lost, idempotently.

Two readers produce the same `SourceRun`s:

- `read_mlruns(path)`: MLflow's plain-file layout (`mlruns/<experiment>/<run>/
  meta.yaml, params/, metrics/, tags/, artifacts/`), read directly, with no
  MLflow installed;
- `read_with_client(uri)`: any store MLflow can open (sqlite, a server,
  databricks, ...), through MLflow's own `MlflowClient` (the `mlflow` extra).

Each imported run keeps its name, params, tags, notes, status, start and end
times, user and full metric histories (steps and timestamps); MLflow's
reserved tags become gitxp concepts (run name, notes, parent run). Its
run.json records ``source: "mlflow:<run id>"``, and a run whose source is
already in the repository is skipped, so importing twice adds nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import GitxpError, InvalidValueError
from ..format.ids import usable_run_name
from .mlflow_entities import TAG_NOTE, TAG_PARENT, TAG_RUN_NAME, TAG_USER

# MLflow's RunStatus numbers, as the file store writes them
_STATUS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_RESERVED = {TAG_RUN_NAME, TAG_NOTE, TAG_PARENT, TAG_USER}
_GIT_COMMIT_TAG = "mlflow.source.git.commit"
SOURCE_PREFIX = "mlflow:"

Progress = Callable[[int, int, str], None]


@dataclass
class SourceRun:
    """One run as read from an MLflow store, before it is written to gitxp."""

    run_id: str
    experiment: str
    name: str
    status: str
    start_time: int | None
    end_time: int | None
    user: str | None
    params: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # key -> (steps, timestamps, values); loaded when the run is written
    metrics: Callable[[], dict[str, tuple[list[int], list[int], list[float]]]] = dict
    # copies the run's artifacts into a directory; None when there are none
    artifacts: Callable[[str], bool] | None = None
    notes: str | None = None
    # params already typed (TensorBoard hparams); MLflow's are text to be typed back
    typed: bool = False


@dataclass
class ImportResult:
    """What an import did: (source id, gitxp id) pairs created, and source ids skipped."""

    imported: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": [{"source": s, "id": i} for s, i in self.imported],
            "skipped": list(self.skipped),
        }


# -- reading the plain-file layout ------------------------------------------------------------
def _yaml_scalar(text: str) -> Any:
    text = text.strip()
    if text in ("null", "~", ""):
        return None
    if text == "[]":
        return []
    if text == "{}":
        return {}
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return json.loads(text)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


def read_meta_yaml(path: str) -> dict[str, Any]:
    """The flat `meta.yaml` MLflow writes (PyYAML when installed, else a small reader)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        import yaml
    except ImportError:
        out: dict[str, Any] = {}
        key = None
        for line in text.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in " \t" and key is not None:  # a folded long value
                out[key] = f"{out[key]} {line.strip()}".strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip()
            out[key] = _yaml_scalar(value)
        return out
    data = yaml.safe_load(text)
    return data if isinstance(data, dict) else {}


def _key_files(directory: str) -> Iterator[tuple[str, str]]:
    """(key, file path) of each file below *directory*, in order; keys with '/' are nested.

    MLflow's params/, tags/ and metrics/ keep one file per key. A missing
    directory has none.
    """
    if not os.path.isdir(directory):
        return
    for base, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(base, name)
            yield os.path.relpath(full, directory).replace(os.sep, "/"), full


def _read_values(directory: str) -> dict[str, str]:
    """params/ or tags/: the text of each key's file."""
    out: dict[str, str] = {}
    for key, full in _key_files(directory):
        with open(full, encoding="utf-8") as f:
            out[key] = f.read()
    return out


def _read_metric_files(directory: str) -> dict[str, tuple[list[int], list[int], list[float]]]:
    """metrics/: each key's (steps, timestamps, values), one `timestamp value [step]` a line."""
    out: dict[str, tuple[list[int], list[int], list[float]]] = {}
    for key, full in _key_files(directory):
        steps: list[int] = []
        stamps: list[int] = []
        values: list[float] = []
        with open(full, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 2:
                    continue
                stamps.append(int(parts[0]))
                values.append(float(parts[1]))
                steps.append(int(parts[2]) if len(parts) > 2 else 0)
        out[key] = (steps, stamps, values)
    return out


def _local_path(uri: str) -> str | None:
    """The local directory of a file: URI or plain path, else None."""
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith("file:"):
        return uri[len("file:") :]
    if "://" in uri or re.match(r"^[a-z][a-z0-9+.-]+:", uri):
        return None
    return uri


def _experiment_name(name: str, experiment_id: str) -> str:
    # MLflow's default experiment is gitxp's default one, as in gitxp.mlflow
    return "default" if experiment_id == "0" and name == "Default" else name


def _copy_tree(src: str) -> Callable[[str], bool]:
    def copy(dst: str) -> bool:
        if not os.path.isdir(src) or not any(os.scandir(src)):
            return False
        shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=False)
        return True

    return copy


def read_mlruns(path: str, experiments: list[str] | None = None) -> Iterator[SourceRun]:
    """The active runs of an `mlruns/` directory, oldest first (no MLflow needed)."""
    if not os.path.isdir(path):
        raise InvalidValueError("tracking URI", f"{path} is not a directory")
    found_any = False
    runs: list[SourceRun] = []
    for exp_dir in sorted(os.scandir(path), key=lambda e: e.name):
        meta_file = os.path.join(exp_dir.path, "meta.yaml")
        if not exp_dir.is_dir() or exp_dir.name.startswith(".") or not os.path.isfile(meta_file):
            continue
        found_any = True
        exp_meta = read_meta_yaml(meta_file)
        if exp_meta.get("lifecycle_stage", "active") != "active":
            continue
        exp_id = str(exp_meta.get("experiment_id", exp_dir.name))
        exp_name = str(exp_meta.get("name") or exp_id)
        if experiments and exp_name not in experiments and exp_id not in experiments:
            continue
        for run_dir in sorted(os.scandir(exp_dir.path), key=lambda e: e.name):
            run_meta_file = os.path.join(run_dir.path, "meta.yaml")
            if not run_dir.is_dir() or not os.path.isfile(run_meta_file):
                continue
            meta = read_meta_yaml(run_meta_file)
            if "run_id" not in meta and "run_uuid" not in meta:
                continue  # MLflow 3 keeps logged models beside runs
            if meta.get("lifecycle_stage", "active") != "active":
                continue
            status = meta.get("status")
            tags = _read_values(os.path.join(run_dir.path, "tags"))
            metrics_dir = os.path.join(run_dir.path, "metrics")
            runs.append(
                SourceRun(
                    run_id=str(meta.get("run_id") or meta.get("run_uuid")),
                    experiment=_experiment_name(exp_name, exp_id),
                    name=str(meta.get("run_name") or tags.get(TAG_RUN_NAME) or ""),
                    status=_STATUS.get(status, str(status))
                    if isinstance(status, int)
                    else str(status),
                    start_time=meta.get("start_time"),
                    end_time=meta.get("end_time"),
                    user=meta.get("user_id") or tags.get(TAG_USER),
                    params=_read_values(os.path.join(run_dir.path, "params")),
                    tags=tags,
                    metrics=lambda d=metrics_dir: _read_metric_files(d),  # type: ignore[misc]
                    artifacts=_copy_tree(os.path.join(run_dir.path, "artifacts")),
                )
            )
    if not found_any:
        raise GitxpError(
            f"{path} is not an MLflow file store (no <experiment>/meta.yaml in it); "
            "give the mlruns directory, or a URI MLflow's client can open"
        )
    runs.sort(key=lambda r: (r.start_time or 0, r.run_id))
    yield from runs


# -- reading through MLflow's client -----------------------------------------------------------
def read_with_client(uri: str, experiments: list[str] | None = None) -> Iterator[SourceRun]:
    """The active runs of any store MLflow's own client can open, oldest first."""
    try:
        from mlflow.entities import ViewType
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise GitxpError(
            f"reading {uri!r} needs MLflow's client: pip install 'gitxp[mlflow]' "
            "(a plain mlruns/ directory is read without it)"
        ) from None
    local = _local_path(uri)
    if local is not None and os.path.isdir(local):
        # MLflow refuses its own file store unless asked; reading it is all we do
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=uri)
    exps = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    chosen = [
        e
        for e in exps
        if not experiments or e.name in experiments or str(e.experiment_id) in experiments
    ]
    if experiments and not chosen:
        known = ", ".join(sorted(e.name for e in exps)) or "none"
        raise GitxpError(f"no experiment {experiments} in {uri} (it has: {known})")
    runs: list[SourceRun] = []
    for exp in chosen:
        token = None
        while True:
            page = client.search_runs(
                [exp.experiment_id],
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                page_token=token,
            )
            for r in page:
                runs.append(_client_run(client, r, _experiment_name(exp.name, exp.experiment_id)))
            token = page.token
            if not token:
                break
    runs.sort(key=lambda r: (r.start_time or 0, r.run_id))
    yield from runs


def _client_run(client: Any, run: Any, experiment: str) -> SourceRun:
    info, data = run.info, run.data
    run_id = info.run_id

    def metrics() -> dict[str, tuple[list[int], list[int], list[float]]]:
        out = {}
        for key in data.metrics:
            history = client.get_metric_history(run_id, key)
            out[key] = (
                [int(m.step) for m in history],
                [int(m.timestamp) for m in history],
                [float(m.value) for m in history],
            )
        return out

    def artifacts(dst: str) -> bool:
        if not client.list_artifacts(run_id):
            return False
        with tempfile.TemporaryDirectory(prefix="gitxp-mlflow-") as tmp:
            local = client.download_artifacts(run_id, "", tmp)
            shutil.copytree(local, dst, dirs_exist_ok=True, symlinks=False)
        return True

    return SourceRun(
        run_id=run_id,
        experiment=experiment,
        name=info.run_name or data.tags.get(TAG_RUN_NAME) or "",
        status=str(info.status),
        start_time=info.start_time,
        end_time=info.end_time,
        user=info.user_id or data.tags.get(TAG_USER),
        params=dict(data.params),
        tags=dict(data.tags),
        metrics=metrics,
        artifacts=artifacts,
    )


# -- writing ----------------------------------------------------------------------------------------
def typed_param(text: str) -> Any:
    """MLflow stores params as text: give back numbers when the text is exactly a number's."""
    if re.fullmatch(r"-?\d+", text):
        value: Any = int(text)
    elif re.fullmatch(r"-?\d+\.\d+(e-?\d+)?", text):
        value = float(text)
    else:
        return text
    return value if str(value) == text else text


def imported_sources(repo: Any, prefix: str) -> dict[str, str]:
    """Source id -> gitxp run id for every run already imported from *prefix* sources."""
    return {
        r["source"]: r["id"]
        for r in repo.rows()
        if isinstance(r.get("source"), str) and r["source"].startswith(prefix)
    }


def write_run(
    root: str,
    src: SourceRun,
    source: str,
    experiment: str,
    parent: str | None,
    tool: str,
) -> str:
    """Record one source run as a finished gitxp run; returns its id."""
    from ..format import storage
    from ..git.repository import GitRepo
    from ..tracking.options import RunOptions
    from ..tracking.run import Run

    git = GitRepo.discover(root)  # the run closes it when it ends
    notes = src.notes or src.tags.get(TAG_NOTE) or None
    tags = {k: v for k, v in src.tags.items() if k not in _RESERVED}
    code_commit = src.tags.get(_GIT_COMMIT_TAG)
    extra: dict[str, Any] = {"user": src.user, "email": None, "host": None, "pid": None}
    extra["source"] = source
    if src.start_time is not None:
        extra["start_time"] = int(src.start_time)
        extra["heartbeat_time"] = int(src.end_time or src.start_time)
    if parent:
        extra["parent"] = parent
    known_code = None
    if code_commit and git.ids.is_id(code_commit) and git.has_object(code_commit):
        # the recorded commit exists here: the run hangs off the code it really ran
        known_code = code_commit
        extra["branch"] = None
    options = RunOptions(
        experiment=experiment,
        name=usable_run_name(src.name),  # "run 1" -> run-1: names must be shell-safe
        params=dict(src.params)
        if src.typed
        else {k: typed_param(v) for k, v in src.params.items()},
        tags=tags,
        notes=notes,
        checkpoint_seconds=3600,
        snapshot=False,
        command={"source": f"{tool} import", "argv": [], "cwd": ".", "script": None},
        extra_meta=extra,
        code_commit=known_code,
    )
    run = Run(git, options)
    try:
        run._writer.put_file(
            storage.ENV_FILE,
            storage.dumps(
                {"imported_from": source, "note": f"the environment of {tool} runs is unknown"}
            ),
        )
        for key, (steps, stamps, values) in src.metrics().items():
            run.log_metric_array(key, values, steps, stamps)
        if src.artifacts is not None:
            _import_artifacts(run, src.artifacts)
    except BaseException:
        run.end("FAILED", f"import from {source} failed", end_time=src.end_time)
        raise
    status = src.status
    error = None
    if status not in ("FINISHED", "FAILED", "KILLED"):
        error = f"was {status} in {tool} when imported (no end recorded)"
        status = "FAILED"
        run.set_tag("gitxp.source_status", src.status)
    run.end(status, error, end_time=src.end_time)
    return run.id


def _import_artifacts(run: Any, copy: Callable[[str], bool]) -> None:
    with tempfile.TemporaryDirectory(prefix="gitxp-import-") as tmp:
        if not copy(tmp):
            return
        # each top-level file or directory becomes one artifact of the same name
        for entry in sorted(os.scandir(tmp), key=lambda e: e.name):
            if not entry.is_symlink():
                run.log_artifact(entry.path, entry.name)


def import_mlflow(
    tracking_uri: str,
    experiment: str | list[str] | None = None,
    repo: str | os.PathLike[str] = ".",
    *,
    into: str | None = None,
    reader: str = "auto",
    progress: Progress | None = None,
) -> ImportResult:
    """Copy the runs of an MLflow store into the git repository at *repo*.

    *tracking_uri*: an `mlruns/` directory (read directly) or any URI MLflow's
    client opens (`sqlite:///mlflow.db`, `http://host:5000`, ...). *experiment*
    limits the import to experiments with these names (or ids); *into* puts
    every run in one gitxp experiment instead of its MLflow one. *reader* is
    "auto", "files" (the directory layout, no MLflow) or "client".
    Runs imported before are skipped.
    """
    if reader not in ("auto", "files", "client"):
        raise InvalidValueError("reader", f"{reader!r} must be auto, files or client")
    wanted = [experiment] if isinstance(experiment, str) else experiment
    local = _local_path(tracking_uri)
    if reader == "files" or (reader == "auto" and local is not None and os.path.isdir(local)):
        if local is None:
            raise InvalidValueError("tracking URI", f"{tracking_uri!r} is not a local directory")
        source_runs = list(read_mlruns(local, wanted))
    elif reader == "auto" and local is not None:
        if not re.match(r"^[a-z]+:", tracking_uri):
            raise InvalidValueError("tracking URI", f"{tracking_uri} does not exist")
        source_runs = list(read_with_client(tracking_uri, wanted))
    else:
        source_runs = list(read_with_client(tracking_uri, wanted))
    return write_runs(source_runs, repo, SOURCE_PREFIX, "mlflow", into, progress)


def write_runs(
    source_runs: list[SourceRun],
    repo: str | os.PathLike[str],
    prefix: str,
    tool: str,
    into: str | None,
    progress: Progress | None,
) -> ImportResult:
    """Write source runs not imported before (parents before children); shared by importers."""
    from ..store.repo import open as open_repo

    with open_repo(repo) as r:
        done = imported_sources(r, prefix)
        root = r.path
    result = ImportResult()
    total = len(source_runs)
    # parents first, so a child can point at its parent's gitxp id
    pending = sorted(source_runs, key=lambda s: (TAG_PARENT in s.tags, s.start_time or 0))
    for i, src in enumerate(pending, 1):
        source = f"{prefix}{src.run_id}"
        if progress is not None:
            progress(i, total, src.name or src.run_id)
        if source in done:
            result.skipped.append(source)
            continue
        parent_src = src.tags.get(TAG_PARENT)
        parent = done.get(f"{prefix}{parent_src}") if parent_src else None
        new_id = write_run(root, src, source, into or src.experiment, parent, tool)
        done[source] = new_id
        result.imported.append((source, new_id))
    return result
