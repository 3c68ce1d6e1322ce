"""`gitxp ui`'s server: the read-only JSON API, and its security rules, over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from gitxp.ui import UIServer
from gitxp.ui.server import allowed_host_names, host_allowed
from tests.ui_helpers import HOSTILE, get_json, request, served_repo


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UIServer, dict[str, str]]]:
    with served_repo(tmp_path_factory, "ui") as pair:
        yield pair


# -- the API -------------------------------------------------------------------
def test_runs_lists_pages_filters_and_sorts(served: tuple[UIServer, dict[str, str]]) -> None:
    server, ids = served
    data = get_json(server.port, "/api/runs")
    assert data["total"] == 3
    assert {r["id"] for r in data["rows"]} == set(ids.values())
    assert data["columns"]["params"] == ["batch_size", "lr", "optimizer"]
    assert "loss" in data["columns"]["metrics"]
    page = get_json(server.port, "/api/runs?limit=1&offset=1")
    assert page["total"] == 3 and len(page["rows"]) == 1
    filtered = get_json(server.port, "/api/runs?filter=" + quote("params.lr >= 0.1"))
    assert {r["id"] for r in filtered["rows"]} == {ids["plain"], ids["hostile"]}
    by_lr = get_json(server.port, "/api/runs?sort=params.lr&order=asc")
    assert [r["params"]["lr"] for r in by_lr["rows"]] == [0.01, 0.1, 0.3]
    assert get_json(server.port, "/api/runs?experiment=long")["total"] == 1
    exps = get_json(server.port, "/api/experiments")
    assert {e["name"]: e["runs"] for e in exps} == {"long": 1, "mnist": 2}


def test_a_bad_filter_is_a_400_that_points_at_the_problem(
    served: tuple[UIServer, dict[str, str]],
) -> None:
    server, _ = served
    status, _, body = request(server.port, "/api/runs?filter=" + quote("params.lr >>> 1"))
    assert status == 400
    assert "column" in json.loads(body)["error"]
    status, _, body = request(server.port, "/api/run?run=nosuchrun")
    assert status == 404 and "no run matches" in json.loads(body)["error"]


def test_run_detail_has_params_notes_env_history_and_artifacts(
    served: tuple[UIServer, dict[str, str]],
) -> None:
    server, ids = served
    run = get_json(server.port, f"/api/run?run={ids['plain']}")
    assert run["params"] == {"lr": 0.1, "batch_size": 32, "optimizer": "sgd"}
    assert "<script>alert(2)</script>" in run["notes"]  # data stays data; the page escapes it
    assert run["env"]["python"]["version"]
    assert run["history"]
    assert sorted(a["name"] for a in run["artifacts"]) == ["model.txt", "plots/roc.json"]
    hostile = get_json(server.port, "/api/run?run=" + quote(HOSTILE))
    assert hostile["name"] == HOSTILE


def test_a_long_series_comes_back_downsampled_and_zoom_gets_finer_data(
    served: tuple[UIServer, dict[str, str]],
) -> None:
    server, ids = served
    full = get_json(server.port, f"/api/series?run={ids['long']}&key=loss")
    assert full["total"] == 200_000 and full["nonfinite"] == 1
    assert 1000 <= len(full["value"]) <= 2002 and full["downsampled"]
    assert max(full["value"]) == 5.0  # the spike survived
    assert full["step"] == sorted(full["step"])
    zoom = get_json(server.port, f"/api/series?run={ids['long']}&key=loss&lo=1000&hi=1999")
    assert zoom["step"] == list(range(999, 2001))  # every point in view, plus one each side
    assert not zoom["downsampled"]
    lttb = get_json(server.port, f"/api/series?run={ids['long']}&key=loss&method=lttb&points=300")
    assert len(lttb["value"]) <= 300
    status, _, body = request(server.port, f"/api/series?run={ids['long']}&key=nope")
    assert status == 400 and "has no metric 'nope'" in json.loads(body)["error"]


def test_the_compare_view_reads_a_metric_of_many_runs_in_one_answer(
    served: tuple[UIServer, dict[str, str]],
) -> None:
    server, ids = served
    runs = ",".join([ids["plain"], ids["long"], ids["hostile"]])
    many = get_json(server.port, f"/api/series_many?runs={runs}&key=loss&points=500")
    assert [s["run"] for s in many["series"]] == [ids["plain"], ids["long"], ids["hostile"]]
    for answer in many["series"]:  # each exactly what /api/series answers for that run
        one = get_json(server.port, f"/api/series?run={answer['run']}&key=loss&points=500")
        assert answer == one
    zoom = get_json(server.port, f"/api/series_many?runs={runs}&key=loss&lo=1000&hi=1999")
    (long,) = [s for s in zoom["series"] if s["run"] == ids["long"]]
    assert long["step"] == list(range(999, 2001))
    # runs without the metric are left out; bad parameters are one-line 400s
    assert get_json(server.port, f"/api/series_many?runs={runs}&key=nope")["series"] == []
    status, _, body = request(server.port, "/api/series_many?key=loss")
    assert status == 400 and "runs" in json.loads(body)["error"]
    status, _, body = request(server.port, f"/api/series_many?runs={runs},nobody&key=loss")
    assert status in (400, 404) and "nobody" in json.loads(body)["error"]


def test_head_is_the_cheap_poll_of_a_run(served: tuple[UIServer, dict[str, str]]) -> None:
    server, ids = served
    head = get_json(server.port, f"/api/head?run={ids['plain']}")
    assert head == {
        "id": ids["plain"],
        "commit": get_json(server.port, f"/api/run?run={ids['plain']}")["commit"],
        "status": "FINISHED",
    }


def test_compare_lists_both_runs_and_the_params_that_differ(
    served: tuple[UIServer, dict[str, str]],
) -> None:
    server, ids = served
    data = get_json(server.port, f"/api/compare?runs={ids['plain']},{ids['hostile']}")
    assert [r["id"] for r in data["runs"]] == [ids["plain"], ids["hostile"]]
    assert data["differing_params"] == ["batch_size", "lr", "optimizer"]
    assert data["metrics"] == ["acc", "loss"]


def test_code_view_shows_the_snapshot_changes_and_diffs_against_head_and_runs(
    served: tuple[UIServer, dict[str, str]],
) -> None:
    server, ids = served
    code = get_json(server.port, f"/api/code?run={ids['hostile']}")
    assert code["commit"]["snapshot"] is True
    assert [f["path"] for f in code["files"]] == ["train.py"]
    _, headers, diff = request(server.port, f"/api/diff?run={ids['hostile']}")
    assert headers["content-type"].startswith("text/plain")
    assert b"+lr = 0.3  # tuned" in diff and b"--- a/train.py" in diff
    vs_run = get_json(server.port, f"/api/code?run={ids['hostile']}&against={ids['plain']}")
    assert [f["path"] for f in vs_run["files"]] == ["train.py"]
    vs_head = get_json(server.port, f"/api/code?run={ids['plain']}&against=HEAD")
    assert vs_head["files"] == []  # the plain run ran on HEAD itself


def test_artifacts_download_as_attachments_from_the_run_tree(
    served: tuple[UIServer, dict[str, str]],
) -> None:
    server, ids = served
    status, headers, body = request(
        server.port, f"/api/artifact?run={ids['plain']}&name=plots/roc.json"
    )
    assert status == 200 and body == b'{"auc": 0.9}'
    assert headers["content-disposition"].startswith("attachment;")
    assert headers["content-type"] == "application/octet-stream"
    assert "sandbox" in headers["content-security-policy"]


# -- security --------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    ["../run.json", "../params.json", "/etc/passwd", "plots/../../run.json", "a\\..\\b", ".git/x"],
)
def test_artifact_names_cannot_leave_the_artifacts_directory(
    served: tuple[UIServer, dict[str, str]], name: str
) -> None:
    server, ids = served
    status, _, body = request(server.port, f"/api/artifact?run={ids['plain']}&name={quote(name)}")
    assert status == 400
    assert b"run.json" not in body or b"not an artifact path" in body


@pytest.mark.parametrize(
    "path",
    [
        "/static/../server.py",
        "/static/..%2fserver.py",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/../../../../etc/passwd",
        "//etc/passwd",
        "/static//etc/passwd",
        "/vendor/../server.py",
        "/static/",
        "/server.py",
        "/.git/config",
    ],
)
def test_only_package_static_files_are_served(
    served: tuple[UIServer, dict[str, str]], path: str
) -> None:
    server, _ = served
    status, _, body = request(server.port, path)
    assert status == 404, (path, body[:200])


def test_static_files_plotly_and_security_headers(served: tuple[UIServer, dict[str, str]]) -> None:
    server, _ = served
    status, headers, body = request(server.port, "/")
    assert status == 200 and b"/static/app.js" in body
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("style-src")[0]
    assert "frame-ancestors 'none'" in csp
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = request(server.port, "/vendor/plotly.min.js")
    assert (
        status == 200
        and len(body) > 1_000_000
        and headers["content-type"].startswith("text/javascript")
    )
    status, headers, gz = request(
        server.port, "/vendor/plotly.min.js", headers={"Accept-Encoding": "gzip"}
    )
    assert headers.get("content-encoding") == "gzip" and len(gz) < len(body) / 2


@pytest.mark.parametrize(
    "host", ["evil.example:{port}", "attacker.com", "127.0.0.1:1", "localhost.evil.com:{port}", ""]
)
def test_a_foreign_host_header_is_refused(
    served: tuple[UIServer, dict[str, str]], host: str
) -> None:
    server, _ = served
    status, _, body = request(server.port, "/api/runs", host=host.format(port=server.port))
    assert status == 403 and b"Host header" in body
    assert request(server.port, "/", host=host.format(port=server.port))[0] == 403


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_local_host_headers_are_accepted(
    served: tuple[UIServer, dict[str, str]], host: str
) -> None:
    server, _ = served
    assert request(server.port, "/api/info", host=host.format(port=server.port))[0] == 200


def test_cross_site_api_requests_are_refused(served: tuple[UIServer, dict[str, str]]) -> None:
    server, _ = served
    status, _, _ = request(server.port, "/api/runs", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert request(server.port, "/api/runs", headers={"Sec-Fetch-Site": "same-origin"})[0] == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_nothing_but_get_and_head(served: tuple[UIServer, dict[str, str]], method: str) -> None:
    server, ids = served
    before = get_json(server.port, "/api/runs")
    status, headers, _ = request(server.port, f"/api/run?run={ids['plain']}", method=method)
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert get_json(server.port, "/api/runs") == before
    assert request(server.port, "/api/info", method="HEAD")[0] == 200


def test_host_rules_for_wider_binds() -> None:
    names = allowed_host_names("0.0.0.0")
    assert host_allowed("192.168.1.5:8765", names, 8765, local=False)  # IP literal: no rebinding
    assert host_allowed("localhost:8765", names, 8765, local=False)
    assert not host_allowed("evil.example:8765", names, 8765, local=False)
    local = allowed_host_names("127.0.0.1")
    assert not host_allowed("192.168.1.5:8765", local, 8765, local=True)
    assert host_allowed("[::1]:8765", local, 8765, local=True)


# -- the command --------------------------------------------------------------------
def test_gitxp_ui_warns_when_not_bound_to_loopback(repo: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitxp.cli.main", "ui", "--host", "0.0.0.0", "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stderr.readline()  # type: ignore[union-attr]
            lines.append(line)
            if "gitxp ui: serving" in line or not line:
                break
        text = "".join(lines)
        assert "warning: serving on 0.0.0.0" in text
        assert "gitxp ui: serving" in text and "http://127.0.0.1:" in text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_gitxp_ui_without_plotly_names_the_extra(
    repo: Path, runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitxp.cli.main import cli

    monkeypatch.setitem(sys.modules, "plotly", None)  # as if the extra were not installed
    result = runner.invoke(cli, ["ui", "--port", "0"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: gitxp ui needs plotly, which is not installed; install it with `pip install 'gitxp[ui]'`"
    ]


def test_the_page_scripts_never_parse_data_as_html() -> None:
    from gitxp.present.assets import STATIC_DIR

    for name in ("app.js", "common.js", "report.js"):
        code = (Path(STATIC_DIR) / name).read_text()
        code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("*"))
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, f"{name} uses {sink}"


def test_a_busy_port_is_a_one_line_error(served: tuple[UIServer, dict[str, str]], runner) -> None:
    from gitxp.cli.main import cli

    server, _ = served
    result = runner.invoke(cli, ["ui", "-C", server.repo.path, "--port", str(server.port)])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: cannot listen on 127.0.0.1:{server.port}")
    assert "--port 0" in result.output


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads thread masks from /proc")
def test_a_background_server_leaves_ctrl_c_to_the_main_thread(
    served: tuple[UIServer, dict[str, str]],
) -> None:
    import signal

    server, _ = served
    thread = server._thread
    assert thread is not None
    get_json(server.port, "/api/runs")  # the thread is serving: it masked signals first
    with open(f"/proc/self/task/{thread.native_id}/status") as f:
        blocked = int(next(x for x in f if x.startswith("SigBlk:")).split()[1], 16)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        assert blocked & (1 << (sig - 1)), sig.name
    assert not blocked & (1 << (signal.SIGSEGV - 1))
    assert thread.name == "gitxp-ui"  # named as gitxp's other threads are
