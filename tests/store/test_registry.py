"""The model registry against the real GTO: each reads the tags the other writes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import gitxp
from gitxp.errors import ModelNotFoundError, RegistryError, RunActiveError
from gitxp.format.registry import TAGS_PREFIX
from tests.gitutil import fsck, git

GTO = str(Path(sys.executable).with_name("gto"))


def _runs(count: int, experiment: str = "reg") -> list[str]:
    ids = []
    for i in range(count):
        with gitxp.start_run(experiment=experiment, name=f"r{i}", params={"i": i}) as run:
            run.log_metric("acc", 0.5 + i / 10)
            ids.append(run.id)
    return ids


def _gto_show(repo: Path, *args: str) -> object:
    """`gto show --json`, by the real gto command."""
    out = subprocess.run(
        [GTO, "show", *args, "--json"], cwd=repo, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def _gto_state(repo: Path, deprecated: bool = False) -> object:
    """What `gto show --json` prints, from gto's API (in process: faster than the command)."""
    from gto import api

    return api.show(repo, deprecated=deprecated)


def _next_second() -> None:
    """GTO orders events by tagger time (whole seconds): keep two GTO actions apart."""
    time.sleep(1.02 - time.time() % 1)


def _past_every_tag(repo: Path) -> None:
    """Wait until the clock is in a later second than every tag's tagger time, so that a
    GTO action made next is ordered after all of them (GTO orders by whole seconds)."""
    times = git(repo, "for-each-ref", "--format=%(taggerdate:unix)", "refs/tags").split()
    latest = max((int(t) for t in times if t), default=0)
    while time.time() < latest + 1:
        time.sleep(0.05)


@pytest.mark.slow
def test_gto_shows_what_gitxp_registers_and_assigns(repo: Path) -> None:
    r0, r1 = _runs(2)
    r = gitxp.open(repo)
    v1 = r.register_model("r0", "churn")
    v2 = r.register_model(r1, "churn", path=None)
    assert (v1.version, v2.version) == ("v0.0.1", "v0.0.2")
    assert v1.run_id == r0 and v1.commit == git(repo, "rev-parse", f"refs/gitxp/runs/{r0}").strip()
    r.assign_stage("churn", "prod", "v0.0.1")
    r.assign_stage("churn@v0.0.2", "staging")
    r.assign_stage("churn", "prod", "v0.0.2")
    assert sorted(git(repo, "tag", "-l").split()) == [
        "churn#prod#1",
        "churn#prod#3",
        "churn#staging#2",
        "churn@v0.0.1",
        "churn@v0.0.2",
    ]
    assert _gto_show(repo) == {
        "churn": {
            "version": "v0.0.2",
            "stage": {"prod": "v0.0.2", "staging": "v0.0.2"},
            "registered": True,
            "active": True,
        }
    }
    # the message keeps GTO's first line; gitxp's trailers follow
    message = git(repo, "tag", "-l", "--format=%(contents)", "churn@v0.0.1")
    assert message.startswith("Registering artifact churn version v0.0.1\n\nGitxp-Run: " + r0)
    r.unassign_stage("churn", "prod")  # prod goes back to v0.0.1, in GTO as in gitxp
    r.deregister_version("churn@v0.0.2")
    model = r.model("churn")
    assert model.stages["prod"].version == "v0.0.1" and "staging" not in model.stages
    assert model.latest is not None and model.latest.version == "v0.0.1"
    shown = _gto_state(repo)
    assert shown == {
        "churn": {"version": "v0.0.1", "stage": {"prod": "v0.0.1"}, "registered": True,
                  "active": True}
    }  # fmt: skip
    from gto import api

    gto_versions = api.show(repo, "churn")
    assert [(v["version"], [s["stage"] for s in v["stages"]]) for v in gto_versions] == [
        (v.version, v.stages) for v in r.model("churn").versions if v.active
    ]
    r.deprecate_model("churn")
    assert r.model("churn").deprecated
    # both tell the same history, in the same order
    gto_events = [e["ref"] for e in api.history(repo, "churn", ascending=True)]
    assert gto_events == [e.tag for e in r.model("churn").events]
    assert _gto_state(repo) == {}  # GTO hides deprecated models
    assert _gto_state(repo, deprecated=True)["churn"]["active"] is False  # type: ignore[index]
    fsck(repo)


@pytest.mark.slow
def test_gitxp_reads_what_gto_writes(repo: Path) -> None:
    from gto import api

    r0, r1, r2 = _runs(3)
    tip = {rid: git(repo, "rev-parse", f"refs/gitxp/runs/{rid}").strip() for rid in (r0, r1, r2)}
    api.register(repo, "churn", tip[r0])
    api.register(repo, "churn", tip[r1], bump_minor=True)
    api.register(repo, "churn", tip[r2])
    api.assign(repo, "churn", "prod", version="v0.0.1")
    api.assign(repo, "churn", "staging", version="v0.1.0")
    _next_second()
    api.deregister(repo, "churn", version="v0.1.1")
    api.unassign(repo, "churn", stage="staging", version="v0.1.0")
    r = gitxp.open(repo)
    model = r.model("churn")
    assert [(v.version, v.active) for v in model.versions] == [
        ("v0.1.1", False),
        ("v0.1.0", True),
        ("v0.0.1", True),
    ]
    assert {s: v.version for s, v in model.stages.items()} == {"prod": "v0.0.1"}
    assert r.run("churn#prod").id == r0
    assert r.run("churn@latest").id == r1
    assert r.run("churn@v0.1.0").id == r1  # GTO's tag has no trailer: read from the run's tree
    with pytest.raises(ModelNotFoundError, match="deregistered"):
        r.run("churn@v0.1.1")
    with pytest.raises(ModelNotFoundError, match="stage 'staging'"):
        r.run("churn#staging")
    # gitxp continues where GTO stopped, with GTO's counter
    r.assign_stage("churn", "prod", "v0.1.0")
    assert "churn#prod#4" in git(repo, "tag", "-l").split()  # GTO wrote #1 to #3
    assert _gto_state(repo)["churn"]["stage"]["prod"] == "v0.1.0"  # type: ignore[index]
    # gitxp stamped #4 up to a second ahead of the clock; in a tie of seconds GTO (and
    # gitxp with it) puts the deprecation before the assignment, so wait past every tag
    _past_every_tag(repo)
    subprocess.run([GTO, "deprecate", "churn"], cwd=repo, check=True, capture_output=True)
    assert r.model("churn").deprecated
    assert r.model_rows()[0]["deprecated"] is True
    fsck(repo)


def test_a_removed_run_is_still_reachable_through_its_version(repo: Path) -> None:
    (r0,) = _runs(1)
    r = gitxp.open(repo)
    r.register_model(r0, "churn")
    r.assign_stage("churn", "prod", "v0.0.1")
    gitxp.rm(r0, repo=repo)
    gitxp.gc(grace_days=0, repo=repo)
    git(repo, "gc", "-q", "--prune=now")
    assert git(repo, "for-each-ref", "refs/gitxp/") == ""
    r = gitxp.open(repo)
    record = r.run("churn#prod")
    assert record.id == r0 and record.params == {"i": 0}
    assert r.run(r0).id == r0  # by id too: the version's tag names the run
    assert r.version_rows("churn")[0]["removed"] is True
    assert r.version_rows("churn")[0]["metrics"] == {"acc": 0.5}
    assert len(record.metrics()) == 1
    before = git(repo, "for-each-ref")
    for change in (lambda: gitxp.rename(r0, "b"), lambda: gitxp.rm("churn#prod")):
        with pytest.raises(gitxp.RunNotFoundError, match="can be read but not changed"):
            change()
    assert git(repo, "for-each-ref") == before
    fsck(repo)


def test_precedence_a_model_reference_wins_over_a_run_name(repo: Path) -> None:
    with gitxp.start_run(name="churn@v0.0.1") as named:
        pass
    (r0,) = _runs(1)
    r = gitxp.open(repo)
    assert r.run("churn@v0.0.1").id == named.id  # no model churn yet: the run name
    r.register_model(r0, "churn")
    assert r.run("churn@v0.0.1").id == r0  # now the model reference wins


def _refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def test_bad_actions_write_nothing(repo: Path) -> None:
    r0, r1 = _runs(2)
    r = gitxp.open(repo)
    r.register_model(r0, "churn")
    before = _refs(repo)
    cases = [
        (lambda: r.register_model("no-such-run", "churn"), "no run matches"),
        (lambda: r.register_model(r1, "churn", version="1.0.0"), "not a version"),
        (lambda: r.register_model(r1, "churn", version="v0.0.1"), "already exists"),
        (lambda: r.register_model(r0, "churn"), "already churn@v0.0.1"),
        (lambda: r.register_model(r1, "-churn"), "cannot name a model"),
        (lambda: r.register_model(r1, "churn", path="nothing/"), "no artifact"),
        (lambda: r.register_model(r1, "churn", version="v1.0.0", bump="minor"), "not both"),
        (lambda: r.assign_stage("nope", "prod", "v0.0.1"), "no model matches 'nope'"),
        (lambda: r.assign_stage("churn", "prod", "v9.9.9"), "no version v9.9.9"),
        (lambda: r.assign_stage("churn", "pr od", "v0.0.1"), "cannot name a stage"),
        (lambda: r.unassign_stage("churn", "prod"), "stage 'prod'"),
        (lambda: r.deregister_version("churn", "v0.0.9"), "no version v0.0.9"),
        (lambda: r.deprecate_model("nope"), "no model matches"),
        (lambda: r.run("churn#prod"), "stage 'prod'"),
    ]
    for call, message in cases:
        with pytest.raises(gitxp.GitxpError, match=message):
            call()
    assert _refs(repo) == before
    git(repo, "tag", "churn@v0.0.2")  # lightweight: no registry tag, but the name is taken
    before = _refs(repo)
    with pytest.raises(RegistryError, match="no annotated tag"):
        r.register_model(r1, "churn")
    assert _refs(repo) == before
    git(repo, "tag", "-d", "churn@v0.0.2")
    git(repo, "tag", "-a", "-m", "x", "churn@v0.0.2")  # GTO-style, on a commit that is no run
    with pytest.raises(RegistryError, match="not a gitxp run"):
        r.run("churn@v0.0.2")
    assert r.register_model(r1, "churn").version == "v0.0.3"  # v0.0.2 is taken


def test_a_running_run_cannot_be_registered(repo: Path) -> None:
    run = gitxp.start_run(name="live")
    try:
        with pytest.raises(RunActiveError, match="still RUNNING"):
            gitxp.open(repo).register_model("live", "churn")
        assert git(repo, "tag", "-l") == ""
    finally:
        run.end()


def test_models_and_versions_as_dataframes(repo: Path) -> None:
    _runs(2)
    r = gitxp.open(repo)
    r.register_model("r0", "churn")
    r.register_model("r1", "churn", bump="major")
    r.assign_stage("churn", "prod", "v1.0.0")
    frame = r.models()
    assert list(frame["name"]) == ["churn"] and frame.loc[0, "latest"] == "v1.0.0"
    assert frame.loc[0, "stages.prod"] == "v1.0.0" and frame.loc[0, "versions"] == 2
    versions = r.model_versions("churn")
    assert list(versions["version"]) == ["v1.0.0", "v0.0.1"]
    assert list(versions["metrics.acc"]) == [0.6, 0.5]
    assert list(versions["run_name"]) == ["r1", "r0"]
    assert TAGS_PREFIX + "churn@v1.0.0" in _refs(repo)


REGISTER_AT = """\
import sys, time
import gitxp
from gitxp.store import registry_actions
repo = gitxp.open(".")
ref, tip = repo.resolve(sys.argv[1])
start = float(sys.argv[2])
time.sleep(max(0.0, start - time.time()))  # all processes register at once
print(registry_actions.register(repo.git, "churn", sys.argv[1], tip).version)
"""


@pytest.mark.slow
def test_parallel_registrations_each_get_their_own_version(repo: Path) -> None:
    from tests.workflows_util import child_env

    ids = _runs(4)
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER_AT, rid, str(start)],
            cwd=repo,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rid in ids
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert sorted(out.strip() for out, _ in outputs) == ["v0.0.1", "v0.0.2", "v0.0.3", "v0.0.4"]
    model = gitxp.open(repo).model("churn")
    assert sorted(v.run_id or "" for v in model.versions) == sorted(ids)
    fsck(repo)


def test_a_sha256_repository_gets_the_same_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s256"
    path.mkdir()
    git(path, "init", "-q", "--object-format=sha256")
    git(path, "commit", "-q", "--allow-empty", "-m", "init")
    monkeypatch.chdir(path)
    (r0,) = _runs(1)
    r = gitxp.open(path)
    v = r.register_model(r0, "churn")
    r.assign_stage("churn@v0.0.1", "prod")
    assert len(v.commit) == 64 and r.run("churn#prod").id == r0
    assert git(path, "rev-parse", "churn#prod#1^{commit}").strip() == v.commit
    fsck(path)


def test_hostile_or_foreign_tags_are_ignored_or_refused_not_fatal(repo: Path) -> None:
    (r0,) = _runs(1)
    blob = git(repo, "hash-object", "-w", "--stdin", input="not a commit").strip()
    git(repo, "tag", "-a", "-m", "x", "churn@v0.0.7", blob)  # tags a blob: not a version
    git(repo, "tag", "-a", "-m", "x\n\nGitxp-Run: ../../etc\nGitxp-Path: \x1b[2J", "churn@v0.0.8")
    git(repo, "tag", "-a", "-m", "x", "churn@created")  # GTO's, carries no action
    git(repo, "tag", "-a", "-m", "x", "release-1.0")  # somebody's release tag
    r = gitxp.open(repo)
    model = r.model("churn")
    assert [(v.version, v.run_id, v.path) for v in model.versions] == [("v0.0.8", None, None)]
    with pytest.raises(RegistryError, match="not a gitxp run"):
        r.run("churn@v0.0.8")  # it tags HEAD, a code commit
    assert r.register_model(r0, "churn").version == "v0.0.9"
    assert r.model("churn").latest.run_id == r0  # type: ignore[union-attr]
    fsck(repo)


def test_a_deregistered_run_is_registered_again_as_its_version(repo: Path) -> None:
    r0, r1 = _runs(2)
    r = gitxp.open(repo)
    r.register_model(r0, "churn")
    r.register_model(r1, "churn")
    r.deregister_version("churn@v0.0.1")
    with pytest.raises(RegistryError, match="registered again as that"):
        r.register_model(r0, "churn", bump="minor")
    again = r.register_model(r0, "churn")
    assert again.version == "v0.0.1" and again.active
    assert "churn@v0.0.1#2" in git(repo, "tag", "-l").split()  # as `gto register --force`
    assert _gto_state(repo)["churn"]["version"] == "v0.0.2"  # type: ignore[index]
    from gto import api

    assert [v["version"] for v in api.show(repo, "churn")] == ["v0.0.2", "v0.0.1"]
    assert [v.version for v in r.model("churn").versions if v.active] == ["v0.0.2", "v0.0.1"]
