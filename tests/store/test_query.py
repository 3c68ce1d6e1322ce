"""Listing and searching runs: DataFrames, the filter grammar, ordering, naming runs, the cache."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import gitxp
from gitxp.format import schema
from gitxp.store.filter import compile_filter
from gitxp.store.listing_cache import CACHE_FILE, CacheFile
from tests.gitutil import git
from tests.workflows_util import stderr_on_a_terminal


def _cache(repo: Path) -> CacheFile:
    """The listing cache of *repo* as the last listing left it."""
    cache = CacheFile.read(str(repo / ".git" / "gitxp" / CACHE_FILE), schema.limits_key())
    assert cache is not None
    return cache


@pytest.fixture
def runs(repo: Path) -> dict[str, str]:
    """Four finished runs with varied params, metrics and tags; name -> id."""
    specs = [
        (
            "alpha",
            "iris",
            {"lr": 0.1, "opt": "adam", "layers": 2},
            {"acc": 0.91, "loss": 0.3},
            {"team": "vision"},
        ),
        (
            "beta",
            "iris",
            {"lr": 0.01, "opt": "sgd", "layers": 3},
            {"acc": 0.85, "loss": 0.5},
            {"team": "nlp"},
        ),
        ("gamma", "mnist", {"lr": "0.5", "opt": "adam"}, {"acc": 0.97}, {}),
        (
            "delta",
            "mnist",
            {"lr": 1, "opt": "Adam W", "dropout": None},
            {"acc": float("nan")},
            {"team": "vision", "best": "yes"},
        ),
    ]
    ids = {}
    for name, exp, params, metrics, tags in specs:
        with gitxp.start_run(experiment=exp, name=name, params=params, tags=tags) as run:
            run.log_metrics(metrics)
        ids[name] = run.id
    return ids


def _names(flt: str, **kw: object) -> set[str]:
    return {r["name"] for r in gitxp.open().rows(filter=flt, **kw)}  # type: ignore[arg-type]


def test_runs_dataframe_columns_and_types(runs: dict[str, str]) -> None:
    df = gitxp.open().runs()
    assert list(df.columns[:7]) == [
        "id",
        "name",
        "experiment",
        "status",
        "start_time",
        "end_time",
        "code_commit",
    ]
    assert {"params.lr", "params.opt", "metrics.acc", "metrics.loss", "tags.team"} <= set(
        df.columns
    )
    assert len(df) == 4
    assert list(df["name"]) == ["delta", "gamma", "beta", "alpha"]  # newest first
    assert str(df["start_time"].dtype).startswith("datetime64")
    assert str(df["metrics.acc"].dtype) == "float64"
    alpha = df[df["name"] == "alpha"].iloc[0]
    assert alpha["params.lr"] == 0.1 and alpha["metrics.acc"] == 0.91
    assert math.isnan(df[df["name"] == "gamma"].iloc[0]["metrics.loss"])


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ("params.lr = '0.1'", {"alpha"}),  # MLflow style: a string literal
        ("params.lr = 0.1", {"alpha"}),
        ("params.lr > 0.05", {"alpha", "gamma", "delta"}),  # "0.5" is numeric too
        ("params.lr < 0.05", {"beta"}),
        ("params.opt = 'adam'", {"alpha", "gamma"}),
        ("params.opt != 'adam'", {"beta", "delta"}),
        ("params.opt LIKE 'a%'", {"alpha", "gamma"}),
        ("params.opt ILIKE 'a%'", {"alpha", "gamma", "delta"}),
        ("params.opt NOT LIKE 'a%'", {"beta", "delta"}),
        ("params.`opt` = 'Adam W'", {"delta"}),
        ("metrics.acc >= 0.9", {"alpha", "gamma"}),
        ("metrics.acc > 0.8 AND metrics.loss < 0.4", {"alpha"}),
        ("metrics.acc < 0.86 or tags.best = 'yes'", {"beta", "delta"}),
        ("not (tags.team = 'vision')", {"beta", "gamma"}),
        ("tags.team IS NULL", {"gamma"}),
        ("tags.team is not null and params.layers >= 2", {"alpha", "beta"}),
        ("params.dropout IS NULL", {"alpha", "beta", "gamma", "delta"}),
        ("attributes.status = 'FINISHED' and experiment = 'mnist'", {"gamma", "delta"}),
        ("attributes.run_name IN ('alpha', 'gamma', 'zeta')", {"alpha", "gamma"}),
        ("name NOT IN ('alpha')", {"beta", "gamma", "delta"}),
        ("(params.lr > 0.05 or params.layers = 3) and not params.opt = 'adam'", {"beta", "delta"}),
        ('tags.team = "nlp"', {"beta"}),
        ("metrics.missing > 0", set()),
        ("attributes.start_time > '2000-01-01'", {"alpha", "beta", "gamma", "delta"}),
    ],
)
def test_filter_grammar(runs: dict[str, str], flt: str, expected: set[str]) -> None:
    assert _names(flt) == expected


@pytest.mark.parametrize(
    ("flt", "column", "fragment"),
    [
        ("params.lr >", 12, "expected a value"),
        ("params.lr > 1 and", 18, "expected a field"),
        ("params.lr = 1 metrics.acc > 0", 15, "join conditions with and/or"),
        ("(params.lr = 1", 15, "expected ')'"),
        ("foo.bar = 1", 1, "unknown prefix 'foo'"),
        ("attributes.colour = 'red'", 12, "unknown attribute 'colour'"),
        ("params.lr ~ 1", 11, "unexpected character '~'"),
        ("params.lr IN 1", 14, "expected '(' after IN"),
        ("", 1, "the filter is empty"),
        ("params.lr is 1", 14, "expected NULL after IS"),
        ("params.x LIKE 3", 15, "LIKE needs a 'quoted pattern'"),
        ("lr = 1", 1, "unknown field 'lr'"),
    ],
)
def test_malformed_filter_points_at_the_position(flt: str, column: int, fragment: str) -> None:
    with pytest.raises(gitxp.FilterSyntaxError) as info:
        compile_filter(flt)
    assert info.value.position == column - 1
    assert f"column {column}" in str(info.value)
    assert fragment in str(info.value)


def test_order_by(runs: dict[str, str]) -> None:
    repo = gitxp.open()
    names = [r["name"] for r in repo.rows(order_by="metrics.acc DESC")]
    assert names == ["gamma", "alpha", "beta", "delta"]  # NaN sorts last
    names = [r["name"] for r in repo.rows(order_by=["params.opt", "metrics.acc DESC"])]
    assert names == ["delta", "gamma", "alpha", "beta"]
    assert list(repo.runs(order_by="name ASC")["name"]) == ["alpha", "beta", "delta", "gamma"]
    with pytest.raises(gitxp.FilterSyntaxError):
        repo.rows(order_by="metrics.acc sideways please")


def test_experiment_selection(runs: dict[str, str]) -> None:
    assert {r["name"] for r in gitxp.open().rows(experiment="iris")} == {"alpha", "beta"}
    assert gitxp.open().experiments() == ["iris", "mnist"]
    assert len(gitxp.open().runs(experiment="nope")) == 0


def test_run_by_full_id_prefix_or_name(runs: dict[str, str]) -> None:
    repo = gitxp.open()
    alpha = runs["alpha"]
    assert repo.run(alpha).name == "alpha"
    assert repo.run(alpha[-26:]).id == alpha
    assert repo.run(f"refs/gitxp/runs/{alpha}").id == alpha
    assert repo.run("alpha").id == alpha
    unique = next(
        alpha[:n] for n in range(4, 27) if sum(i.startswith(alpha[:n]) for i in runs.values()) == 1
    )
    assert repo.run(unique).id == alpha
    rec = repo.run("beta")
    assert rec.params == {"lr": 0.01, "opt": "sgd", "layers": 3}
    assert rec.tags == {"team": "nlp"} and rec.status == "FINISHED"


def test_ambiguous_and_unknown_run_references(runs: dict[str, str]) -> None:
    repo = gitxp.open()
    with gitxp.start_run(name="alpha"):
        pass
    with pytest.raises(gitxp.AmbiguousRunError) as info:
        repo.run("alpha")
    assert "matches 2 runs" in str(info.value) and runs["alpha"] in str(info.value)
    common = runs["alpha"][:4]
    if all(i.startswith(common) for i in runs.values()):
        with pytest.raises(gitxp.AmbiguousRunError, match="longer id prefix"):
            repo.run(common)
    with pytest.raises(gitxp.RunNotFoundError) as info2:
        repo.run("gama")
    assert "did you mean gamma" in str(info2.value)
    with pytest.raises(gitxp.InvalidValueError):
        repo.run("")


def test_metric_history_of_unknown_key_lists_known_keys(runs: dict[str, str]) -> None:
    with pytest.raises(gitxp.GitxpError, match=r"no metric 'los'.*acc, loss"):
        gitxp.open().run("alpha").metric_history("los")


def test_cache_is_used_refreshed_per_ref_and_rebuilt_when_corrupt(
    runs: dict[str, str], repo: Path
) -> None:
    cache = repo / ".git" / "gitxp" / CACHE_FILE
    gitxp.open().rows()
    assert _cache(repo).n == 4
    # A changed ref is picked up: tag a run by appending a commit to its ref with plain git
    alpha_ref = f"refs/gitxp/runs/{runs['alpha']}"
    tree = git(repo, "rev-parse", f"{alpha_ref}^{{tree}}").strip()
    meta = json.loads(git(repo, "show", f"{alpha_ref}:run.json"))
    meta["name"] = "alpha-renamed"
    blob = git(repo, "hash-object", "-w", "--stdin", input=json.dumps(meta)).strip()
    entries = git(repo, "ls-tree", tree)
    new_tree_text = "".join(
        (f"100644 blob {blob}\trun.json\n" if line.endswith("\trun.json") else line + "\n")
        for line in entries.splitlines()
    )
    new_tree = git(repo, "mktree", input=new_tree_text).strip()
    commit = git(repo, "commit-tree", new_tree, "-p", alpha_ref, "-m", "rename").strip()
    git(repo, "update-ref", alpha_ref, commit)
    assert "alpha-renamed" in {r["name"] for r in gitxp.open().rows()}
    # A corrupt cache is rebuilt silently
    cache.write_text("{not json")
    assert len(gitxp.open().rows()) == 4
    assert cache.read_bytes().startswith(b"gitxp-listing-cache 4\n") and _cache(repo).n == 4
    # A deleted run disappears
    git(repo, "update-ref", "-d", alpha_ref)
    assert {r["name"] for r in gitxp.open().rows()} == {"beta", "gamma", "delta"}


def test_cache_is_never_pushed(runs: dict[str, str], repo: Path, tmp_path: Path) -> None:
    gitxp.open().rows()
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "push", "-q", str(bare), "refs/gitxp/*:refs/gitxp/*")
    assert not (bare / "gitxp").exists()
    assert len(git(bare, "for-each-ref", "refs/gitxp/runs").splitlines()) == 4


def test_unreadable_run_ref_is_reported_and_listed_corrupt(
    runs: dict[str, str], repo: Path
) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "update-ref", "refs/gitxp/runs/01zzzzzzzzzzzzzzzzzzzzzzzz", head)
    repo_ = gitxp.open()
    rows = repo_.rows()
    assert len(rows) == 5
    assert [r["status"] for r in rows].count("CORRUPT") == 1
    assert "refs/gitxp/runs/01zzzzzzzzzzzzzzzzzzzzzzzz" in repo_.broken_runs


def test_settled_unchanged_ref_directory_is_not_listed_again(
    runs: dict[str, str], repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import time

    runs_dir = repo / ".git" / "refs" / "gitxp" / "runs"
    old = time.time() - 3600
    os.utime(runs_dir, (old, old))  # as if the last run was recorded an hour ago
    assert len(gitxp.open().rows()) == 4  # records the directory's stamp

    def no_listing(path: object) -> object:
        raise AssertionError(f"listed {path} although nothing changed")

    with monkeypatch.context() as mp:
        mp.setattr("gitxp.git.refs.os.scandir", no_listing)
        assert {r["name"] for r in gitxp.open().rows()} == {"alpha", "beta", "gamma", "delta"}

    # any real ref update renames a file into the directory and is seen at once
    beta_commit = git(repo, "rev-parse", f"refs/gitxp/runs/{runs['beta']}").strip()
    git(repo, "update-ref", f"refs/gitxp/runs/{runs['alpha']}", beta_commit)
    by_ref = {r["ref"]: r["name"] for r in gitxp.open().rows()}
    assert by_ref[f"refs/gitxp/runs/{runs['alpha']}"] == "beta"


def test_fresh_unchanged_refs_do_not_rewrite_the_cache_but_changes_show(
    runs: dict[str, str], repo: Path
) -> None:
    import os

    cache = repo / ".git" / "gitxp" / CACHE_FILE
    runs_dir = repo / ".git" / "refs" / "gitxp" / "runs"
    os.utime(runs_dir)  # a run recorded a moment ago: the directory's stamp is unsettled
    gitxp.open().rows()
    written = cache.stat().st_ino, cache.stat().st_mtime_ns
    gitxp.open().rows()
    assert (cache.stat().st_ino, cache.stat().st_mtime_ns) == written  # nothing new: no rewrite

    # a ref moved within the same unsettled moment is still seen, and the cache updated
    beta_commit = git(repo, "rev-parse", f"refs/gitxp/runs/{runs['beta']}").strip()
    git(repo, "update-ref", f"refs/gitxp/runs/{runs['alpha']}", beta_commit)
    by_ref = {r["ref"]: r["name"] for r in gitxp.open().rows()}
    assert by_ref[f"refs/gitxp/runs/{runs['alpha']}"] == "beta"
    assert _cache(repo).loose()[f"refs/gitxp/runs/{runs['alpha']}"][1] == beta_commit

    # once the stamp has settled it is written down, and the next listing skips the directory
    old = os.stat(runs_dir).st_mtime - 3600
    os.utime(runs_dir, (old, old))
    gitxp.open().rows()
    stamps = _cache(repo).header["dirs"]
    assert all(seen - mtime >= 2_000_000_000 for mtime, seen in stamps.values())


def test_two_run_refs_on_one_commit_are_both_listed(runs: dict[str, str], repo: Path) -> None:
    beta_commit = git(repo, "rev-parse", f"refs/gitxp/runs/{runs['beta']}").strip()
    copy = "refs/gitxp/runs/01zzzzzzzzzzzzzzzzzzzzzzzy"
    git(repo, "update-ref", copy, beta_commit)
    by_ref = {r["ref"]: r["name"] for r in gitxp.open().rows()}
    assert by_ref[copy] == by_ref[f"refs/gitxp/runs/{runs['beta']}"] == "beta"
    assert len(by_ref) == 5


def _three_runs_and_no_cache(repo: Path) -> None:
    for i in range(3):
        with gitxp.start_run(name=f"p{i}", snapshot=False) as run:
            run.log_metric("m", float(i))
    gitxp.open(repo).rows()
    (repo / ".git" / "gitxp" / CACHE_FILE).unlink()


def test_a_listing_that_reads_many_runs_reports_progress(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitxp.store import query

    _three_runs_and_no_cache(repo)
    monkeypatch.setattr(query, "PROGRESS_AFTER_SECONDS", 0.0)
    lines: list[str] = []
    assert len(gitxp.open(repo, progress=lines.append).rows()) == 3
    assert lines[0].startswith("Indexing runs: 33% (1/3)") and lines[0].endswith("\r")
    assert lines[-1] == "Indexing runs: 100% (3/3), done.\n"
    lines.clear()
    gitxp.open(repo, progress=lines.append).rows()  # every run is in the cache now
    assert lines == []
    monkeypatch.setattr(query, "PROGRESS_AFTER_SECONDS", 60.0)
    (repo / ".git" / "gitxp" / CACHE_FILE).unlink()
    gitxp.open(repo, progress=lines.append).rows()  # quick: nothing to report
    assert lines == []


def test_gitxp_log_shows_indexing_progress_only_on_a_terminal(repo: Path) -> None:
    import subprocess
    import sys

    _three_runs_and_no_cache(repo)
    code = (
        "import gitxp.store.query as q; q.PROGRESS_AFTER_SECONDS = 0\n"
        "from gitxp.cli.main import main; main(['log', '--oneline'])\n"
    )
    result, err = stderr_on_a_terminal([sys.executable, "-c", code], repo)
    assert result.returncode == 0
    assert "Indexing runs: 100% (3/3), done." in err
    assert len(result.stdout.decode().splitlines()) == 3 and b"Indexing" not in result.stdout
    (repo / ".git" / "gitxp" / CACHE_FILE).unlink()
    piped = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=60
    )
    assert piped.returncode == 0 and "Indexing" not in piped.stderr + piped.stdout
