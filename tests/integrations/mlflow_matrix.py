"""Generate docs/mlflow.md's API status matrix by calling every MLflow tracking/registry call.

`python -m tests.integrations.mlflow_matrix plugin REPO` calls each public
tracking, registry and model function of `mlflow.__all__` and each public
`MlflowClient` method against MLflow with `gitxp:REPO` as tracking and
registry URI; `... builtin REPO` calls the same names on `gitxp.mlflow`'s
built-in subset. Arguments are made from the parameters' names (a run id for
`run_id`, the registered model for `name`, ...). Each writes JSON (name ->
status) to the file named third. `table(plugin, builtin)` renders the Markdown table;
tests/integrations/test_mlflow_matrix.py compares it with docs/mlflow.md.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
import sys
import tempfile
from typing import Any

MODULES = ("mlflow.tracking.fluent", "mlflow.tracking._model_registry", "mlflow.tracking._tracking")
SKIP = {"run", "doctor", "login", "evaluate", "start_span", "trace"}  # not tracking calls
LAST = ("delete_", "end_run", "restore_")
BEGIN, END = "<!-- mlflow-matrix:begin -->", "<!-- mlflow-matrix:end -->"
EXTRA = {"set_experiment": {"experiment_name": "chosen"}}  # optional arguments a call needs
WORKS, RAISES, MISSING = "works", "MlflowException", "—"


def fluent_names() -> list[str]:
    import mlflow

    out = []
    for name in mlflow.__all__:
        obj = getattr(mlflow, name, None)
        module = getattr(obj, "__module__", "") or ""
        if inspect.isfunction(obj) and module.startswith(MODULES) and name not in SKIP:
            out.append(name)
    return sorted(out, key=lambda n: (n.startswith(LAST), n))


def client_names() -> list[str]:
    from mlflow import MlflowClient

    names = [n for n in dir(MlflowClient) if not n.startswith("_")]
    names = [n for n in names if inspect.isfunction(getattr(MlflowClient, n))]
    return sorted(names, key=lambda n: (n.startswith(LAST), n))


def _values(ctx: dict[str, Any]) -> dict[str, Any]:
    """Argument values by parameter name."""
    tmp = ctx["tmp"]
    path = os.path.join(tmp, "a.txt")
    with open(path, "w") as handle:
        handle.write("a")
    return {
        "run_id": ctx["run"],
        "experiment_id": ctx["experiment"],
        "experiment_ids": [ctx["experiment"]],
        "name": "m",
        "key": "k",
        "value": 1,
        "metrics": {"mm": 1.0},
        "params": {"pp": "1"},
        "tags": {"tt": "v"},
        "path": "a.txt",
        "local_path": path,
        "local_dir": tmp,
        "artifact_file": "f.txt",
        "text": "hi",
        "dictionary": {"a": 1},
        "model_uri": "models:/m/1",
        "src_model_uri": "models:/m/1",
        "dst_name": "m-copy",
        "source": f"runs:/{ctx['run']}/model",
        "version": "1",
        "alias": "champion",
        "model_id": ctx["model_id"],
        "new_name": "m-renamed",
        "stage": "Production",
        "status": "FINISHED",
        "data": {"a": [1, 2]},
        "image": ctx["image"],
        "figure": None,
        "uri": ctx["uri"],
    }


def _call(target: Any, name: str, values: dict[str, Any], fixed: dict[str, Any]) -> str:
    """Call *name* on *target* with arguments made from its parameters' names; its status."""
    func = getattr(target, name, None)
    if func is None:
        return MISSING
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        params = []  # type: ignore[assignment]
    kwargs = {}
    for p in params:
        if p.default is inspect.Parameter.empty and p.kind in (
            p.POSITIONAL_OR_KEYWORD,
            p.KEYWORD_ONLY,
        ):
            if p.name not in values:
                return f"not called (needs {p.name})"
            kwargs[p.name] = fixed.get(name, {}).get(p.name, values[p.name])
    kwargs.update(EXTRA.get(name, {}))
    signal.alarm(30)
    try:
        func(**kwargs)
    except Exception as exc:  # the status is the kind of failure
        if isinstance(exc, AttributeError) and "built-in MLflow subset" in str(exc):
            return MISSING
        if any(c.__name__ in ("MlflowException", "GitxpError") for c in type(exc).__mro__):
            return RAISES
        return f"fails ({type(exc).__name__})"
    finally:
        signal.alarm(0)
    return WORKS


def _timeout(signum: int, frame: Any) -> None:
    raise TimeoutError("call took over 30 s")


def _setup_plugin(repo: str) -> tuple[Any, Any, dict[str, Any]]:
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    mlflow.set_tracking_uri(f"gitxp:{repo}")
    X = np.array([-2, -1, 0, 1]).reshape(-1, 1)
    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5)
        mlflow.log_param("p0", 1)
        info = mlflow.sklearn.log_model(
            LogisticRegression().fit(X, [0, 0, 1, 1]), name="model", pip_requirements=[]
        )
    mlflow.register_model(f"runs:/{run.info.run_id}/model", "m")
    mlflow.MlflowClient().set_registered_model_alias("m", "champion", "1")
    ctx = {
        "run": run.info.run_id,
        "experiment": run.info.experiment_id,
        "model_id": info.model_id,
        "uri": f"gitxp:{repo}",
    }
    return mlflow, mlflow.MlflowClient(), ctx


def _setup_builtin(repo: str) -> tuple[Any, Any, dict[str, Any]]:
    os.chdir(repo)
    import gitxp.mlflow as mlflow

    with mlflow.start_run() as run:
        mlflow.log_metric("acc", 0.5)
        mlflow.log_param("p0", 1)
    ctx = {
        "run": run.info.run_id,
        "experiment": run.info.experiment_id,
        "model_id": "m-none",
        "uri": repo,
    }
    return mlflow, mlflow.MlflowClient(), ctx


def collect(mode: str, repo: str) -> dict[str, str]:
    """name -> status of every call, in *mode* (plugin or builtin)."""
    import numpy as np

    signal.signal(signal.SIGALRM, _timeout)
    module, client, ctx = (_setup_plugin if mode == "plugin" else _setup_builtin)(repo)
    ctx["tmp"] = tempfile.mkdtemp()
    ctx["image"] = np.zeros((2, 2, 3), dtype=np.uint8)
    values = _values(ctx)
    fixed = {"create_experiment": {"name": "made"}, "set_experiment": {}}
    out = {}
    for name in fluent_names():
        out[f"mlflow.{name}"] = _call(module, name, values, fixed)
        while module.active_run() is not None:
            module.end_run()
    for name in client_names():
        out[f"MlflowClient.{name}"] = _call(client, name, values, fixed)
    return out


def table(plugin: dict[str, str], builtin: dict[str, str]) -> str:
    """The Markdown table of both statuses, between its markers."""
    lines = [
        BEGIN,
        "| call | MLflow + `gitxp:` plugin | `gitxp.mlflow` built-in subset |",
        "| --- | --- | --- |",
    ]
    for name in plugin:
        lines.append(f"| `{name}` | {plugin[name]} | {builtin.get(name, MISSING)} |")
    lines.append(END)
    return "\n".join(lines) + "\n"


def _repository(path: str) -> str:
    import subprocess

    os.makedirs(path)
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


def generate() -> str:
    """The table, from both modes run at once in subprocesses (fresh repositories)."""
    import subprocess

    tmp = tempfile.mkdtemp()
    procs, outs = {}, {}
    for mode in ("plugin", "builtin"):
        repo = _repository(os.path.join(tmp, mode))
        outs[mode] = os.path.join(tmp, f"{mode}.json")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITXP_ML"))}
        if mode == "builtin":
            env["GITXP_MLFLOW"] = "builtin"
        procs[mode] = subprocess.Popen(
            [sys.executable, "-m", "tests.integrations.mlflow_matrix", mode, repo, outs[mode]],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    for mode, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        if proc.returncode != 0:
            raise RuntimeError(f"{mode} matrix failed: {err[-2000:]}")
    with open(outs["plugin"]) as p, open(outs["builtin"]) as b:
        return table(json.load(p), json.load(b))


def replace_block(text: str, block: str) -> str:
    """*text* (docs/mlflow.md) with its matrix replaced by *block*."""
    start, end = text.index(BEGIN), text.index(END) + len(END) + 1
    return text[:start] + block + text[end:]


if __name__ == "__main__":
    if sys.argv[1] == "docs":  # python -m tests.integrations.mlflow_matrix docs
        DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "mlflow.md")
        with open(DOC) as handle:
            current = handle.read()
        with open(DOC, "w") as handle:
            handle.write(replace_block(current, generate()))
    else:
        result = collect(sys.argv[1], sys.argv[2])
        with open(sys.argv[3], "w") as handle:
            json.dump(result, handle)
