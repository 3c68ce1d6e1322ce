"""Recording runs: what lands in git, statuses, params, metrics, and bad input."""

from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

import gitxp
from tests.gitutil import fsck, git, run_refs


def _tip(repo: Path, run_id: str) -> str:
    return git(repo, "rev-parse", f"refs/gitxp/runs/{run_id}").strip()


def test_run_is_a_commit_on_its_own_ref_readable_by_git(repo: Path) -> None:
    with gitxp.start_run(experiment="iris", name="baseline", params={"lr": 0.1}) as run:
        run.log_metric("loss", 0.5)
        run.log_metric("loss", 0.25)
    assert run_refs(repo) == [f"refs/gitxp/runs/{run.id}"]
    params = json.loads(git(repo, "show", f"refs/gitxp/runs/{run.id}:params.json"))
    assert params == {"lr": 0.1}
    meta = json.loads(git(repo, "show", f"refs/gitxp/runs/{run.id}:run.json"))
    assert meta["status"] == "FINISHED" and meta["name"] == "baseline"
    assert meta["experiment"] == "iris" and meta["format"] == 1
    log = git(repo, "log", "--format=%s%n%b", f"refs/gitxp/runs/{run.id}")
    assert "gitxp: run baseline FINISHED" in log
    assert "params: lr=0.1" in log and "metrics: loss=0.25" in log
    assert f"Gitxp-Run: {run.id}" in log
    fsck(repo)


def test_first_parent_chain_reaches_head_when_clean(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    with gitxp.start_run() as run:
        run.log_metric("x", 1)
    chain = git(repo, "rev-list", "--first-parent", f"refs/gitxp/runs/{run.id}").split()
    assert head in chain
    assert gitxp.open().run(run.id).code_commit == head


def test_a_run_ending_within_its_start_delay_is_one_commit(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD").strip()
    with gitxp.start_run(name="quick") as run:
        run.log_metric("x", 1)
        assert git(repo, "for-each-ref", f"refs/gitxp/runs/{run.id}").strip() == ""
    chain = git(repo, "rev-list", "--first-parent", f"refs/gitxp/runs/{run.id}").split()
    assert chain == [_tip(repo, run.id), head]
    assert git(repo, "log", "-1", "--format=%s", chain[0]).startswith("gitxp: run quick FINISHED")
    fsck(repo)


def test_a_longer_run_is_published_by_its_start_delay(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITXP_START_DELAY", "0.2")
    with gitxp.start_run(name="slow") as run:
        ref = f"refs/gitxp/runs/{run.id}"
        deadline = time.time() + 10
        while time.time() < deadline and not git(repo, "for-each-ref", ref).strip():
            time.sleep(0.05)
        # another process (git here) sees the RUNNING run with no call from this thread
        assert git(repo, "log", "-1", "--format=%s", ref).startswith("gitxp: start run slow")
        live = json.loads(git(repo, "show", f"{ref}:run.json"))
        assert live["status"] == "RUNNING" and live["checkpoint_seconds"] == 30
        assert live["heartbeat_time"] >= live["start_time"]
    assert len(git(repo, "rev-list", "--first-parent", ref).split()) == 3  # end, start, HEAD
    # liveness fields are for crash detection while RUNNING: the end commit drops them
    final = json.loads(git(repo, "show", f"{ref}:run.json"))
    assert final["status"] == "FINISHED"
    assert "heartbeat_time" not in final and "checkpoint_seconds" not in final


def test_a_reader_in_the_same_process_sees_a_run_at_once(repo: Path) -> None:
    with gitxp.start_run(name="live") as run:
        run.log_metric("m", 0.5)
        assert gitxp.open().run("live").status == "RUNNING"  # found by name: the listing
        assert gitxp.open().run(run.id).metric_history("m")["value"].tolist() == [0.5]
        assert git(repo, "log", "-1", "--format=%s", f"refs/gitxp/runs/{run.id}").startswith(
            "gitxp: start run live"
        )
    assert gitxp.open().run(run.id).status == "FINISHED"


def test_start_delay_zero_commits_at_start(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITXP_START_DELAY", "0")
    with gitxp.start_run(name="eager") as run:
        assert git(repo, "log", "-1", "--format=%s", f"refs/gitxp/runs/{run.id}").startswith(
            "gitxp: start run eager"
        )
    monkeypatch.setenv("GITXP_START_DELAY", "later")
    with pytest.raises(gitxp.InvalidValueError, match="GITXP_START_DELAY"):
        gitxp.start_run()
    assert run_refs(repo) == [f"refs/gitxp/runs/{run.id}"]  # the refused run left nothing


def test_recording_never_touches_head_index_branches_or_files(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    before = (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "status", "--porcelain"),
        git(repo, "for-each-ref", "refs/heads"),
        (repo / ".git" / "index").read_bytes(),
    )
    with gitxp.start_run(params={"a": 1}) as run:
        run.log_metric("m", 1.0)
    after = (
        git(repo, "rev-parse", "HEAD"),
        git(repo, "status", "--porcelain"),
        git(repo, "for-each-ref", "refs/heads"),
        (repo / ".git" / "index").read_bytes(),
    )
    assert before == after
    assert (repo / "train.py").read_text() == "print('changed')\n"


@pytest.mark.parametrize(
    ("exc", "status"), [(ValueError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")]
)
def test_exception_statuses_and_propagation(repo: Path, exc: BaseException, status: str) -> None:
    with pytest.raises(type(exc)), gitxp.start_run(name="doomed") as run:
        run.log_metric("loss", 1.0)
        raise exc
    record = gitxp.open().run(run.id)
    assert record.status == status
    assert record.last_metrics == {"loss": 1.0}
    if status == "FAILED":
        assert record.meta["error"] == "ValueError: boom"


def test_params_keep_json_types_and_numpy_values(repo: Path) -> None:
    params = {
        "int": 3,
        "float": 0.25,
        "bool": True,
        "str": "adam",
        "none": None,
        "list": [1, 2.5, "x"],
        "nested": {"a": {"b": [True, None]}},
        "np_int": np.int64(7),
        "np_float": np.float32(0.5),
        "np_array": np.array([1, 2, 3]),
        "np_bool": np.bool_(False),
    }
    with gitxp.start_run(params=params) as run:
        pass
    got = gitxp.open().run(run.id).params
    assert got == {
        "int": 3,
        "float": 0.25,
        "bool": True,
        "str": "adam",
        "none": None,
        "list": [1, 2.5, "x"],
        "nested": {"a": {"b": [True, None]}},
        "np_int": 7,
        "np_float": 0.5,
        "np_array": [1, 2, 3],
        "np_bool": False,
    }
    assert type(got["int"]) is int and type(got["np_int"]) is int and type(got["bool"]) is bool


def test_numpy_tags_are_stored_as_the_text_of_their_value(repo: Path) -> None:
    with gitxp.start_run() as run:
        run.set_tags({"f": np.float32(0.5), "i": np.int64(7), "b": np.bool_(True)})
        run.set_tag("one", np.array([3]))
    tags = gitxp.open().run(run.id).tags
    assert {k: tags[k] for k in ("f", "i", "b", "one")} == {
        "f": "0.5",
        "i": "7",
        "b": "True",
        "one": "3",
    }


def test_param_logged_twice_with_another_value_names_both(repo: Path) -> None:
    with gitxp.start_run() as run:
        run.log_param("lr", 0.1)
        run.log_param("lr", 0.1)  # same value: fine
        with pytest.raises(gitxp.ParamConflictError) as info:
            run.log_param("lr", 0.2)
    message = str(info.value)
    assert "'lr'" in message and "0.1" in message and "0.2" in message
    assert gitxp.open().run(run.id).params == {"lr": 0.1}


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("obj", object(), "cannot store a object"),
        ("nan", float("nan"), "not a finite number"),
        ("big", np.zeros(5000), "too large for a param"),
        ("", 1, "1 to 250 characters"),
        ("bad\nkey", 1, "use letters"),
        (3, 1, "keys must be strings"),
    ],
)
def test_bad_params_are_clear_errors(repo: Path, key: object, value: object, fragment: str) -> None:
    with gitxp.start_run() as run:
        with pytest.raises(gitxp.InvalidValueError) as info:
            run.log_param(key, value)  # type: ignore[arg-type]
        assert fragment in str(info.value)


def test_metrics_keep_nan_and_infinities_and_auto_increment_steps(repo: Path) -> None:
    with gitxp.start_run() as run:
        for v in (1.0, float("nan"), float("inf"), float("-inf"), 2):
            run.log_metric("m", v)
        run.log_metric("other", 5, step=10)
        run.log_metric("other", 6)
        run.log_metrics({"a": 1, "b": np.float32(2.5)}, step=3)
    rec = gitxp.open().run(run.id)
    hist = rec.metric_history("m")
    assert list(hist["step"]) == [0, 1, 2, 3, 4]
    values = list(hist["value"])
    assert values[0] == 1.0 and math.isnan(values[1])
    assert values[2] == math.inf and values[3] == -math.inf and values[4] == 2.0
    assert list(rec.metric_history("other")["step"]) == [10, 11]
    frame = rec.metrics()
    assert list(frame.columns) == ["key", "step", "timestamp", "value"]
    assert str(frame["step"].dtype) == "int64" and str(frame["timestamp"].dtype) == "int64"
    assert str(frame["value"].dtype) == "float64"
    assert set(frame["key"]) == {"m", "other", "a", "b"}
    summary = rec.summary["m"]
    assert summary["count"] == 5 and summary["last"] == 2.0
    assert summary["min"] == -math.inf and summary["max"] == math.inf


def test_timestamps_are_milliseconds_utc(repo: Path) -> None:
    before = int(time.time() * 1000)
    with gitxp.start_run() as run:
        run.log_metric("m", 1.0)
        run.log_metric("m", 2.0, timestamp=1_700_000_000_000)
    after = int(time.time() * 1000)
    ts = list(gitxp.open().run(run.id).metric_history("m")["timestamp"])
    assert before <= ts[0] <= after
    assert ts[1] == 1_700_000_000_000


def test_vectorised_logging_of_a_numpy_array(repo: Path) -> None:
    values = np.linspace(0, 1, 10_000)
    with gitxp.start_run() as run:
        run.log_metric("m", -1.0)
        run.log_metric_array("m", values)
        run.log_metric_array("n", [1, 2, 3], steps=[5, 6, 7])
    rec = gitxp.open().run(run.id)
    hist = rec.metric_history("m")
    assert len(hist) == 10_001
    assert list(hist["step"][:3]) == [0, 1, 2]
    np.testing.assert_array_equal(hist["value"].to_numpy()[1:], values)
    assert list(rec.metric_history("n")["step"]) == [5, 6, 7]


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda r: r.log_metric("m", "high"), "is not a number"),
        (lambda r: r.log_metric("m", None), "is not a number"),
        (lambda r: r.log_metric("m", 1.0, step=1.5), "step must be an integer"),
        (lambda r: r.log_metric("m", 1.0, step=2**70), "does not fit in int64"),
        (lambda r: r.log_metric("", 1.0), "1 to 250 characters"),
        (lambda r: r.log_metrics([1, 2]), "expected a dict"),
        (lambda r: r.log_metric_array("m", ["a", "b"]), "values must be numbers"),
        (lambda r: r.log_metric_array("m", [1, 2], steps=[1]), "1 steps given for 2 values"),
        (lambda r: r.log_metric_array("m", None), "values must be numbers, got None"),
        (lambda r: r.log_artifact(None), "artifact path: None"),
        (lambda r: r.set_tag("t", object()), "tag values are strings"),
        (lambda r: r.set_tag("t", np.array([1, 2])), "tag values are strings, got ndarray"),
        (lambda r: r.set_tag("t", np.add), "tag values are strings, got ufunc"),
        (lambda r: r.note(3), "notes are text"),
    ],
)
def test_bad_metric_input_is_a_clear_error(repo: Path, call, fragment: str) -> None:  # type: ignore[no-untyped-def]
    with gitxp.start_run() as run:
        with pytest.raises(gitxp.GitxpError) as info:
            call(run)
        assert fragment in str(info.value)
        # every method the message suggests exists
        for name in re.findall(r"\b((?:log|set)_[a-z_]+)\b", str(info.value)):
            assert callable(getattr(run, name, None)), f"the message suggests {name}()"


def test_logging_after_end_is_an_error(repo: Path) -> None:
    with gitxp.start_run() as run:
        run.log_metric("m", 1)
    with pytest.raises(gitxp.RunFinishedError):
        run.log_metric("m", 2)
    with pytest.raises(gitxp.RunFinishedError):
        run.log_param("p", 1)
    run.end()  # ending twice is harmless


def test_module_level_twins_act_on_the_active_run(repo: Path) -> None:
    assert gitxp.active_run() is None
    with pytest.raises(gitxp.NoActiveRunError, match="start_run"):
        gitxp.log_metric("m", 1)
    with gitxp.start_run(experiment="exp") as run:
        assert gitxp.active_run() is run
        gitxp.log_param("p", 1)
        gitxp.log_params({"q": "x"})
        gitxp.log_metric("m", 1.5, step=2)
        gitxp.log_metrics({"a": 1.0})
        gitxp.log_metric_array("arr", [1, 2])
        gitxp.set_tag("t", "v")
        gitxp.set_tags({"u": 3})
        gitxp.note("first")
        gitxp.note("second")
    assert gitxp.active_run() is None
    rec = gitxp.open().run(run.id)
    assert rec.params == {"p": 1, "q": "x"}
    assert rec.tags == {"t": "v", "u": "3"}
    assert rec.notes == "first\n\nsecond"
    assert rec.last_metrics == {"a": 1.0, "arr": 2.0, "m": 1.5}


def test_end_run_without_context_manager(repo: Path) -> None:
    run = gitxp.start_run(name="manual")
    gitxp.log_metric("m", 1)
    gitxp.end_run()
    assert gitxp.open().run("manual").status == "FINISHED"
    assert run.status == "FINISHED"


def test_checkpoint_when_buffer_bound_is_passed(repo: Path) -> None:
    with gitxp.start_run(buffer_points=100) as run:
        for i in range(250):
            run.log_metric("m", i)
        tree = git(repo, "ls-tree", "-r", "--name-only", f"refs/gitxp/runs/{run.id}")
        assert tree.count("metrics/part-") == 2  # two checkpoints already committed
        mid = gitxp.open().run(run.id)
        assert mid.status == "RUNNING" and len(mid.metric_history("m")) == 200
    final = gitxp.open().run(run.id)
    assert len(final.metric_history("m")) == 250
    tree = git(repo, "ls-tree", "-r", "--name-only", f"refs/gitxp/runs/{run.id}")
    assert tree.count("metrics/part-") == 1  # parts are merged when the run ends
    fsck(repo)


def test_checkpoint_on_a_timer(repo: Path) -> None:
    with gitxp.start_run(checkpoint_seconds=0.2) as run:
        run.log_metric("m", 1.0)
        ref = f"refs/gitxp/runs/{run.id}"
        deadline = time.time() + 10
        subjects: list[str] = []
        while time.time() < deadline and not subjects:
            if git(repo, "for-each-ref", ref).strip():
                subjects = git(repo, "log", "--format=%s", ref).splitlines()
            time.sleep(0.05)
        # the timer made the first commit (start, holding the point) with no call
        # from this thread, then a checkpoint for a point logged after it
        assert subjects[0].startswith("gitxp: start run")
        assert len(gitxp.open().run(run.id).metric_history("m")) == 1
        run.log_metric("m", 2.0)
        deadline = time.time() + 10
        while time.time() < deadline and "checkpoint" not in git(
            repo, "log", "-1", "--format=%s", ref
        ):
            time.sleep(0.05)
        assert "checkpoint" in git(repo, "log", "-1", "--format=%s", ref)


def test_checkpoint_seconds_from_environment(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITXP_CHECKPOINT_SECONDS", "7.5")
    with gitxp.start_run() as run:
        assert run.checkpoint_seconds == 7.5
    monkeypatch.setenv("GITXP_CHECKPOINT_SECONDS", "soon")
    with pytest.raises(gitxp.InvalidValueError, match="GITXP_CHECKPOINT_SECONDS"):
        gitxp.start_run()


def test_run_in_repository_without_commits(empty_repo: Path) -> None:
    (empty_repo / "train.py").write_text("print(1)\n")
    with gitxp.start_run() as run:
        run.log_metric("m", 1)
    rec = gitxp.open().run(run.id)
    files = git(empty_repo, "ls-tree", "-r", "--name-only", rec.code_commit or "")
    assert files.split() == ["train.py"]
    fsck(empty_repo)


def test_outside_a_repository_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    with pytest.raises(gitxp.NotARepositoryError, match="git init"):
        gitxp.start_run()


def test_author_falls_back_to_os_user_without_git_identity(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(key)
    with gitxp.start_run() as run:
        pass
    meta = gitxp.open().run(run.id).meta
    assert meta["user"] and "@" in meta["email"]
    git(repo, "config", "user.name", "Grace")
    git(repo, "config", "user.email", "grace@example.com")
    with gitxp.start_run() as run2:
        pass
    assert gitxp.open().run(run2.id).meta["user"] == "Grace"
    author = git(repo, "log", "-1", "--format=%an <%ae>", f"refs/gitxp/runs/{run2.id}")
    assert author.strip() == "Grace <grace@example.com>"


def test_a_config_change_is_seen_by_the_next_run_of_the_same_process(repo: Path) -> None:
    # gitxp keeps parsed git config per process until a config file changes
    with gitxp.start_run() as before:
        pass
    git(repo, "remote", "add", "origin", "https://example.com/team/first.git")
    with gitxp.start_run() as first:
        pass
    git(repo, "remote", "set-url", "origin", "https://example.com/team/second.git")
    with gitxp.start_run() as second:
        pass
    from gitxp.git.refs import update_ref
    from gitxp.git.repository import GitRepo

    probe = GitRepo(str(repo))
    umask = os.umask(0o022)
    try:
        update_ref(probe, "refs/gitxp/probe/a", None, tip := _tip(repo, before.id), "probe")
        git(repo, "config", "core.sharedRepository", "group")
        update_ref(probe, "refs/gitxp/probe/b", None, tip, "probe")
    finally:
        os.umask(umask)
        probe.close()
    logs = repo / ".git" / "logs" / "refs" / "gitxp" / "probe"
    # group-writable as git makes files in a shared repository, once it is one
    assert [(logs / n).stat().st_mode & 0o060 for n in "ab"] == [0o040, 0o060]
    remotes = [gitxp.open().run(r.id).env["git"]["remote"] for r in (before, first, second)]
    assert remotes == [
        None,
        "https://example.com/team/first.git",
        "https://example.com/team/second.git",
    ]
    fsck(repo)


def test_environment_is_recorded_with_secrets_redacted(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gitxp.tracking.environment as environment

    monkeypatch.setattr(environment, "_cached", None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "abc")
    monkeypatch.setenv("TORCH_HOME", "https://user:pw@example.com/x")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's
    monkeypatch.setenv("TF_VAR_db_pass", "hunter2")  # Terraform's, not TensorFlow's
    monkeypatch.setenv("TF_VAR_region", "eu-west-1")
    git(repo, "remote", "add", "origin", "https://bob:s3cret@example.com/team/proj.git")
    with gitxp.start_run() as run:
        pass
    env = gitxp.open().run(run.id).env
    assert env["python"]["version"].count(".") == 2
    assert "numpy" in {k.lower() for k in env["packages"]}
    assert env["variables"]["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert env["variables"]["SLURM_JOB_ID"] == "4242"
    assert env["variables"]["HF_TOKEN"] == "[redacted]"
    assert env["variables"]["TORCH_HOME"] == "[redacted]"
    assert "AWS_SECRET_ACCESS_KEY" not in env["variables"]
    assert env["variables"]["TF_CPP_MIN_LOG_LEVEL"] == "2"
    assert not [name for name in env["variables"] if name.startswith("TF_VAR_")]
    assert set(env["redacted"]) == {"HF_TOKEN", "TORCH_HOME"}
    assert env["git"]["remote"] == "https://example.com/team/proj.git"
    raw = git(repo, "show", f"refs/gitxp/runs/{run.id}:env.json")
    assert "s3cret" not in raw and "hf_abcdef" not in raw and "hunter2" not in raw
    monkeypatch.setattr(environment, "_cached", None)


def test_loose_objects_are_written_as_git_writes_them(repo: Path) -> None:
    with gitxp.start_run(params={"a": 1}) as run:
        run.log_metric("m", 1.0)
    objects = repo / ".git" / "objects"
    assert not list(objects.glob("*/tmp_obj_*"))  # temporary files renamed into place
    tip = _tip(repo, run.id)
    for spec in (tip, f"{tip}^{{tree}}", f"{tip}:params.json"):
        sha = git(repo, "rev-parse", spec).strip()
        path = objects / sha[:2] / sha[2:]
        assert path.stat().st_mode & 0o777 == 0o444  # read-only, like git's
    assert json.loads(git(repo, "cat-file", "-p", f"{tip}:params.json")) == {"a": 1}
    # writing the same content again only touches the object
    from gitxp.git.repository import GitRepo

    g = GitRepo(str(repo))
    sha = git(repo, "rev-parse", f"{tip}:params.json").strip()
    before = (objects / sha[:2] / sha[2:]).stat().st_ino
    assert g.write_blob(git(repo, "cat-file", "blob", sha).encode()) == sha
    assert (objects / sha[:2] / sha[2:]).stat().st_ino == before
    g.close()
    fsck(repo)


@pytest.mark.parametrize(
    ("argv", "recorded"),
    [
        (["--api-key", "sk-abcdef1234567890abcdef"], ["--api-key", "[redacted]"]),
        (
            ["--password=hunter2", "--db-pass", "s3"],
            ["--password=[redacted]", "--db-pass", "[redacted]"],
        ),
        (["--token", "t0k", "--hf-token=abc"], ["--token", "[redacted]", "--hf-token=[redacted]"]),
        (["ghp_abcdefabcdefabcdefabcdefabcdefabcdef"], ["[redacted]"]),
        (["--key=AKIAABCDEFGHIJKLMNOP"], ["--key=[redacted]"]),
        (["postgresql://bob:pw@db/x"], ["postgresql://bob:[redacted]@db/x"]),
        # ordinary training arguments stay as they are
        (["--max-tokens", "512", "--tokenizer", "bert", "--author", "ada"], None),
        (["--secret", "-v", "--pass", "2", "hf_datasets", "--x=sk-learn"], None),
    ],
)
def test_secret_looking_command_arguments_are_not_recorded(
    argv: list[str], recorded: list[str] | None
) -> None:
    from gitxp.tracking.redaction import redact_argv

    out, positions = redact_argv(["python", "train.py", *argv])
    assert out[2:] == (argv if recorded is None else recorded)
    assert positions == [
        i for i, (a, b) in enumerate(zip(["python", "train.py", *argv], out, strict=True)) if a != b
    ]


def test_a_script_run_with_a_secret_argument_records_it_redacted(repo: Path) -> None:
    import subprocess
    import sys

    (repo / "train.py").write_text(
        "import gitxp\nwith gitxp.start_run(name='s') as run:\n    run.log_metric('m', 1.0)\n"
    )
    subprocess.run(
        [sys.executable, "train.py", "--lr", "0.1", "--api-key", "sk-abcdef1234567890abcdef"],
        cwd=repo,
        check=True,
    )
    command = gitxp.open(repo).run("s").meta["command"]
    assert command["argv"] == ["python", "train.py", "--lr", "0.1", "--api-key", "[redacted]"]
    assert command["redacted"] == [5]
    assert "sk-abcdef" not in git(
        repo, "show", f"refs/gitxp/runs/{gitxp.open(repo).run('s').id}:run.json"
    )
