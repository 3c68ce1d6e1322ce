"""`gitxp diff` and `gitxp compare`: what differs between runs, in every format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gitxp
from tests.gitutil import GIT_ENV, git
from tests.workflows_util import child_env, write
from tests.workflows_util import gitxp as run_gitxp

SCRIPT = """\
import gitxp
run = gitxp.active_run()
for step, value in enumerate(run.params["curve"]):
    gitxp.log_metric("loss", value, step=step)
if run.params.get("extra"):
    gitxp.log_metric("extra_metric", 1.0)
"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs of fit.py with different params, code, tags, notes and environment (built once)."""
    repo = tmp_path_factory.mktemp("diff") / "project"
    repo.mkdir()
    home = tmp_path_factory.mktemp("home")
    base = {k: v for k, v in child_env(**GIT_ENV, HOME=str(home)).items()}
    for key in ("GITXP_RUN_ID", "GITXP_RUN_REPO", "GITXP_EXPERIMENT"):
        base.pop(key, None)
    git(repo, "init", "-q", "-b", "main")
    write(repo / "fit.py", SCRIPT)
    git(repo, "add", "fit.py")
    git(repo, "commit", "-qm", "fit")
    a = run_gitxp(
        repo, "run", "-n", "a", "-p", "lr=0.1", "-p", "old=1", "-p", "curve=[4, 2, 1]",
        "-t", "who=ada", "-m", "first try", "--", "python", "fit.py",
        env={**base, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert a.returncode == 0, a.stderr
    (repo / "fit.py").write_text(SCRIPT + "# tuned\n")
    write(repo / "new_module.py", "X = 1\n")
    b = run_gitxp(
        repo, "run", "-n", "b", "-p", "lr=0.3", "-p", "extra=true", "-p", "curve=[4, 0.5]",
        "-t", "who=bob", "--", "python", "fit.py",
        env={**base, "OMP_NUM_THREADS": "4"},
    )  # fmt: skip
    assert b.returncode == 0, b.stderr
    return repo


def test_diff_reports_params_metrics_env_code_tags_notes(two_runs: Path) -> None:
    d = gitxp.diff("a", "b", code=True, repo=two_runs)
    assert d.params["changed"] == {"lr": [0.1, 0.3], "curve": [[4, 2, 1], [4, 0.5]]}
    assert d.params["added"] == {"extra": True}
    assert d.params["removed"] == {"old": 1}
    loss = next(m for m in d.metrics if m["key"] == "loss")
    assert loss["last"]["a"] == 1.0 and loss["last"]["b"] == 0.5
    assert loss["last"]["abs"] == -0.5 and loss["last"]["rel"] == -0.5
    assert loss["min"] == {"a": 1.0, "b": 0.5, "abs": -0.5, "rel": -0.5}
    assert loss["max"]["abs"] == 0.0
    extra = next(m for m in d.metrics if m["key"] == "extra_metric")
    assert extra["only_in"] == "b" and extra["last"]["abs"] is None
    assert d.env["variables"]["changed"]["OMP_NUM_THREADS"] == ["1", "4"]
    assert {f["path"]: f["change"] for f in d.code["files"]} == {
        "fit.py": "modified",
        "new_module.py": "added",
    }
    expected = git(two_runs, "diff", d.a["code_commit"], d.b["code_commit"], "--", "fit.py")
    assert "+# tuned" in d.code["patch"] and "+# tuned" in expected
    assert d.tags["changed"] == {"who": ["ada", "bob"]}
    assert d.notes == {"a": "first try", "b": ""}


def test_diff_cli_formats(two_runs: Path) -> None:
    text = run_gitxp(two_runs, "diff", "a", "b")
    assert text.returncode == 0, text.stderr
    assert "code: 2 files changed" in text.stdout
    assert "-0.5 (-50.0%)" in text.stdout
    assert "variables: OMP_NUM_THREADS  1" in text.stdout
    assert "diff --git" not in text.stdout
    with_code = run_gitxp(two_runs, "diff", "a", "b", "--code")
    assert "diff --git a/fit.py b/fit.py" in with_code.stdout and "+# tuned" in with_code.stdout
    md = run_gitxp(two_runs, "diff", "a", "b", "--format", "md", "--code")
    assert md.stdout.startswith("## a vs b")
    assert "| lr | 0.1 | 0.3 |" in md.stdout and "```diff" in md.stdout
    data = json.loads(run_gitxp(two_runs, "diff", "a", "b", "--format", "json").stdout)
    assert set(data) == {"a", "b", "params", "metrics", "env", "code", "tags", "notes"}
    assert data["params"]["changed"]["lr"] == [0.1, 0.3]
    same = run_gitxp(two_runs, "diff", "a", "a")
    assert "code: identical" in same.stdout and "Params" not in same.stdout
    missing = run_gitxp(two_runs, "diff", "a", "nope")
    assert missing.returncode == 1 and "no run matches 'nope'" in missing.stderr


def test_compare_side_by_side(two_runs: Path) -> None:
    c = gitxp.compare(["a", "b"], repo=two_runs)
    fields = dict(c.rows)
    assert fields["params.lr"] == [0.1, 0.3]
    assert "status" not in fields  # both FINISHED: only changed fields by default
    assert fields["metrics.loss"] == [1.0, 0.5]
    c_all = gitxp.compare(["a", "b"], only_changed=False, repo=two_runs)
    assert dict(c_all.rows)["status"] == ["FINISHED", "FINISHED"]
    ordered = gitxp.compare(["a", "b"], sort_by="metrics.loss ASC", repo=two_runs)
    assert [r["name"] for r in ordered.runs] == ["b", "a"]
    table = run_gitxp(two_runs, "compare", "a", "b", "-s", "params.lr DESC")
    assert table.returncode == 0, table.stderr
    header = table.stdout.splitlines()[0].split()
    assert header == ["field", "b", "a"]
    data = json.loads(run_gitxp(two_runs, "compare", "a", "b", "--format", "json").stdout)
    assert data["fields"]["tags.who"] == ["ada", "bob"]
    with pytest.raises(gitxp.UsageError):
        gitxp.compare(["a"], repo=two_runs)
    bad = run_gitxp(two_runs, "compare", "a", "b", "-s", "loss")
    assert bad.returncode == 2 and "metrics.KEY" in bad.stderr
