"""Shared pieces of the UI tests: a repository with a few interesting runs, raw HTTP."""

from __future__ import annotations

import http.client
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import gitxp
from gitxp.ui.server import UIServer

HOSTILE = "<img src=x onerror=alert(1)>"


def make_runs(path: Path, long_points: int = 200_000) -> dict[str, str]:
    """Three runs in *path*: a plain one, one with a hostile name on dirty code, a long series.

    Returns {label: run id}.
    """
    ids = {}
    with gitxp.start_run(
        experiment="mnist",
        name="swift-otter",
        params={"lr": 0.1, "batch_size": 32, "optimizer": "sgd"},
        tags={"team": "vision"},
        notes=(
            "# Result\nLoss went **down**.\n<script>alert(2)</script>\n"
            "[docs](https://example.org/x) [bad](javascript:alert(3))"
        ),
        repo=path,
    ) as run:
        steps = np.arange(100)
        run.log_metric_array("loss", 2.0 * np.exp(-steps / 20) + 0.1)
        for s in range(0, 100, 10):
            run.log_metric("acc", 0.5 + s / 250, step=s)
        outside = Path(tempfile.mkdtemp(prefix="gitxp-ui-artifacts-"))
        (outside / "model.txt").write_text("weights v1\n")
        (outside / "plots").mkdir()
        (outside / "plots" / "roc.json").write_text('{"auc": 0.9}')
        run.log_artifact(outside / "model.txt")
        run.log_artifact(outside / "plots")
        ids["plain"] = run.id
    (path / "train.py").write_text("print('training')\nlr = 0.3  # tuned\n")
    with gitxp.start_run(
        experiment="mnist",
        name="hostile",  # given HOSTILE below: start_run refuses it, as it refuses all
        params={"lr": 0.3, "batch_size": 64, "optimizer": HOSTILE},
        tags={"note": HOSTILE},
        repo=path,
    ) as run:
        steps = np.arange(100)
        run.log_metric_array("loss", 2.0 * np.exp(-steps / 8) + 0.2)
        for s in range(0, 100, 10):
            run.log_metric("acc", 0.6 + s / 300, step=s)
        ids["hostile"] = run.id
    _give_name(path, run.id, HOSTILE)
    with gitxp.start_run(
        experiment="long", name="long-series", params={"lr": 0.01}, repo=path, snapshot=False
    ) as run:
        x = np.arange(long_points, dtype=np.float64)
        y = 1 / np.sqrt(x + 1)
        y[long_points // 3] = 5.0  # a spike the downsampled curve must keep
        y[7] = np.nan
        run.log_metric_array("loss", y)
        ids["long"] = run.id
    return ids


def _give_name(path: Path, run_id: str, name: str) -> None:
    """Name a run *name* unchecked, as a run pulled from elsewhere or an older gitxp may be."""
    from gitxp.store.edit import edit_run

    with gitxp.open(path) as repo:
        ref, tip = repo.resolve(run_id)
        edit_run(repo.git, ref, tip, "rename", lambda state: state.meta.update(name=name))


def request(
    port: int,
    path: str,
    method: str = "GET",
    host: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request (so tests control the Host header and the exact path)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def get_json(port: int, path: str) -> Any:
    status, _, body = request(port, path)
    assert status == 200, body
    return json.loads(body)


@contextmanager
def served_repo(
    tmp_path_factory: pytest.TempPathFactory, label: str
) -> Iterator[tuple[UIServer, dict[str, str]]]:
    """A repository with make_runs()'s runs, served by a UIServer on a free port."""
    from tests.gitutil import GIT_ENV, git

    path = tmp_path_factory.mktemp(label) / "project"
    path.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in GIT_ENV.items():
            mp.setenv(k, v)
        git(path, "init", "-q", "-b", "main")
        (path / "train.py").write_text("print('training')\n")
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "initial")
        ids = make_runs(path)
    server = UIServer(str(path), port=0).start()
    try:
        yield server, ids
    finally:
        server.close()
