"""The rough edges a new user hit (issue 17, items 5-11), each reproduced with real git and processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp.cli.main import cli
from tests.gitutil import GIT_ENV, fsck, git

WORKTREE = str(Path(gitxp.__file__).resolve().parents[1])


def user_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: this checkout of gitxp importable, the venv on PATH."""
    env = {**os.environ, **GIT_ENV, **extra}
    env["PYTHONPATH"] = WORKTREE + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def real_git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run git as a user would (hooks included), without failing the test on a non-zero exit."""
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=user_env())


def record(repo: Path, acc: float, **kwargs: object) -> str:
    """Record a finished run on the repository's current code; return its id."""
    run = gitxp.start_run(experiment="e", repo=repo, **kwargs)  # type: ignore[arg-type]
    run.log_metric("acc", acc)
    run.end()
    return run.id


def remote_runs(remote: Path) -> set[str]:
    out = git(remote, "for-each-ref", "--format=%(refname)", "refs/gitxp/runs/")
    return {ref.rsplit("/", 1)[-1] for ref in out.split()}


# -- 5: `gitxp remote setup` and `gitxp hooks install` together ------------------------------


def test_plain_git_push_with_the_runs_refspec_and_the_pre_push_hook(
    repo: Path, tmp_path: Path, runner: CliRunner
) -> None:
    remote = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    assert runner.invoke(cli, ["remote", "setup"]).exit_code == 0
    assert runner.invoke(cli, ["hooks", "install", "-t", "pre-push"]).exit_code == 0
    first = record(repo, 0.5)
    push = real_git(repo, "push", "origin")
    assert push.returncode == 0, push.stderr
    assert "remote rejected" not in push.stderr
    assert remote_runs(remote) == {first}
    # a new commit and a new run together, on a bare `git push`
    for i in range(1):
        (repo / "train.py").write_text(f"print('v{i}')\n")
        git(repo, "commit", "-qam", f"v{i}")
        record(repo, 0.6 + i / 10)
        push = real_git(repo, "push")
        assert push.returncode == 0, push.stderr
        assert "failed to update ref" not in push.stderr
    assert remote_runs(remote) == set(gitxp.open(repo).runs()["id"])
    head = git(repo, "rev-parse", "HEAD").strip()
    assert git(remote, "rev-parse", "main").strip() == head


# -- 7: a mistyped option is an error, not the command ------------------------------------------


def gitxp_cli(repo: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run `gitxp ARGS` as a separate process, as a user would from a shell."""
    return subprocess.run(
        [sys.executable, "-m", "gitxp", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env=user_env(),
        **kwargs,  # type: ignore[call-overload]
    )


def test_a_mistyped_option_before_the_command_is_a_usage_error(repo: Path) -> None:
    for args in (
        ["run", "--bogus", "--", "python", "train.py"],
        ["run", "-e", "x", "--bogus", "python", "train.py"],
        ["sweep", "-p", "lr=1,2", "--mode", "min", "--", "python", "train.py"],
    ):
        result = gitxp_cli(repo, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert "No such option '--" in result.stderr, result.stderr
        assert "not found on PATH" not in result.stderr
    assert git(repo, "for-each-ref", "refs/gitxp/") == ""  # nothing recorded
    # options of the command itself still pass through, with or without `--`
    script = "import sys; print('args', sys.argv[1:])"
    result = gitxp_cli(repo, "run", "-q", "python", "-c", script, "--bogus", "-x")
    assert result.returncode == 0, result.stderr
    result = gitxp_cli(repo, "run", "--format", "json", "--", "python", "-c", script, "--lr")
    assert result.returncode == 0, result.stderr
    assert "args ['--lr']" in result.stdout


# -- 9: huge values ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_huge_param_is_cut_in_human_output_and_whole_in_json(repo: Path) -> None:
    huge = "x" * 4_000_000
    run_id = record(repo, 0.5, params={"blob": huge, "lr": 0.1}, tags={"t": "y" * 5000})
    for args in (["log"], ["log", "--format", "table"], ["log", "--oneline"], ["show", run_id]):
        # 20 s is far above what a linear layout takes (well under a second here)
        result = gitxp_cli(repo, *args, timeout=20)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout) < 5_000, (args, len(result.stdout))
    shown = gitxp_cli(repo, "show", run_id).stdout
    assert "characters)" in shown and "4,000,000" in shown  # says it was cut, and from what
    assert "lr" in shown and "0.1" in shown
    full = gitxp_cli(repo, "show", run_id, "--full").stdout
    assert huge in full and "y" * 5000 in full
    assert huge in gitxp_cli(repo, "log", "--format", "json").stdout
    assert huge in gitxp_cli(repo, "show", run_id, "--format", "json").stdout


def test_table_layout_is_one_cap_found_without_walking_the_widths() -> None:
    from gitxp.present.output import fit_widths, render_table

    # widths no character-by-character narrowing could ever walk down
    assert fit_widths([10**15, 3, 10**15], 50) == [24, 3, 23]
    assert fit_widths([30, 5, 100], 60) == [28, 5, 27]  # the widest cut to one cap
    assert fit_widths([100, 100], 10) == [12, 12]  # never below 12 characters
    assert fit_widths([5, 6], 80) == [5, 6]
    table = render_table(["key", "value"], [["a", "v" * 10_000_000]], max_width=60)
    assert max(len(line) for line in table.splitlines()) <= 60
    assert table.splitlines()[2].endswith("…")


# -- 10: names that shadow ids, names a shell would need quoted --------------------------------


def rename_by_hand(repo: Path, run_id: str, name: str) -> None:
    """Give a run *name* as an older gitxp could have, with git plumbing alone."""
    import json

    ref = f"refs/gitxp/runs/{run_id}"
    meta = json.loads(git(repo, "show", f"{ref}:run.json"))
    meta["name"] = name
    blob = git(repo, "hash-object", "-w", "--stdin", input=json.dumps(meta)).strip()
    entries = [
        line if not line.endswith("\trun.json") else f"100644 blob {blob}\trun.json"
        for line in git(repo, "ls-tree", ref).splitlines()
    ]
    tree = git(repo, "mktree", input="\n".join(entries) + "\n").strip()
    commit = git(repo, "commit-tree", tree, "-p", ref, "-m", f"rename to {name}").strip()
    git(repo, "update-ref", ref, commit)


def cli_run(*args: str) -> tuple[int, str]:
    """`gitxp ARGS` in this process (the real CLI, faster than a new interpreter): (exit, output)."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@pytest.mark.slow
def test_names_that_read_as_an_id_prefix_or_need_quoting_are_refused(repo: Path) -> None:
    first = record(repo, 0.1, name="first")
    other = record(repo, 0.2, name="other")
    prefix = other[:12]
    for bad, why in (
        (prefix, "looks like a run id prefix"),
        (prefix.upper(), "looks like a run id prefix"),
        (other, "looks like a run id prefix"),
        ("0a1b", "looks like a run id prefix"),
        ("my run", "quoted"),
        ("a;rm -rf x", "quoted"),
        ("$HOME", "quoted"),
        ("-n", "option"),
    ):
        code, out = cli_run("rename", first, "--", bad)
        assert code == 1 and why in out, (bad, out)
        assert len(out.strip().splitlines()) == 1, out
    code, out = cli_run("show", prefix, "--format", "json")
    assert other in out and first not in out
    code, out = cli_run("run", "-n", "0abc", "--", "python", "-c", "pass")
    assert code == 1 and "looks like a run id prefix" in out
    assert len(set(gitxp.open(repo).runs()["id"])) == 2  # nothing recorded
    # ordinary and generated names stay valid
    for good in ("best", "2024", "deadbeef", "lr=0.1,bs=32", "v1.2/ablation", "modèle-été"):
        assert cli_run("rename", first, good)[0] == 0, good
    from gitxp.format.ids import name_problem, new_run_name

    assert all(name_problem(new_run_name()) is None for _ in range(500))


def test_old_runs_with_such_names_stay_readable_and_hints_are_shell_quoted(
    repo: Path, tmp_path: Path
) -> None:
    old = record(repo, 0.1)
    rename_by_hand(repo, old, "0zzzz")  # no id starts with 0zzz before AD 3040
    other = record(repo, 0.2)
    rename_by_hand(repo, other, "my run")
    assert old in cli_run("show", "0zzzz", "--format", "json")[1]
    assert other in cli_run("show", "my run", "--format", "json")[1]
    assert "my run" in cli_run("log", "--oneline")[1]
    remote = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "we$ird", str(remote))
    code, out = cli_run("remote", "setup", "we$ird")
    assert code == 0 and "`git fetch 'we$ird'` now fetches runs" in out, out
    code, out = cli_run("branch", old, "try$it")
    assert code == 0 and "`git push origin 'try$it'`" in out, out


# -- 6: checkout --force leaves nothing of the old work behind ---------------------------------


def test_checkout_force_makes_the_work_tree_the_runs_code_exactly(repo: Path) -> None:
    run_id = record(repo, 0.5)  # on the first commit, clean
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    # README.md is the same at HEAD and at the run's commit: edited, and another file staged
    (repo / "README.md").write_text("# my local edit\n")
    (repo / ".gitignore").write_text("*.tmp\n")
    git(repo, "add", ".gitignore")
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    code, out = cli_run("checkout", run_id, "-b", "try", "--force")
    assert code == 0, out
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "README.md").read_text() == "# project\n"
    assert (repo / "train.py").read_text() == "print('training')\n"
    assert not (repo / "new.py").exists()
    saved = git(repo, "for-each-ref", "--format=%(refname)", "refs/gitxp/saved/").split()
    assert len(saved) == 1  # the edits were saved first
    assert git(repo, "show", f"{saved[0]}:README.md") == "# my local edit\n"
    assert git(repo, "show", f"{saved[0]}:new.py") == "x = 1\n"
    later = gitxp.open(repo).run(record(repo, 0.6))
    assert not later.to_dict()["dirty"]
    assert later.code_commit == git(repo, "rev-parse", "HEAD").strip()


# -- 8: a signal the command ignores does not make its run KILLED --------------------------------

IGNORES_SIGINT = """
import os, time
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.02)
print("finished the work")
"""


def _ignore_sigint() -> None:
    """What a non-interactive shell does to a background job: SIGINT ignored, inherited."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_sigint_that_the_command_ignores_leaves_the_run_finished(repo: Path) -> None:
    (repo / "ignore.py").write_text(IGNORES_SIGINT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitxp", "run", "-n", "stubborn", "--", "python", "ignore.py"],
        cwd=repo,
        env=user_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    deadline = time.monotonic() + 60
    while not (repo / "ready").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.02)
    subprocess.run(["kill", "-INT", str(proc.pid)], check=True)
    time.sleep(0.3)  # let gitxp handle the signal before the command ends
    (repo / "go").touch()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "finished the work" in out
    assert "stopped by SIGINT" not in err and "FINISHED" in err, err
    record = gitxp.open(repo).run("stubborn")
    assert record.status == "FINISHED"
    assert record.meta["exit_code"] == 0 and record.meta.get("signal") is None


# -- 11: the small ones ------------------------------------------------------------------------


def test_diff_with_code_does_not_tell_you_to_pass_code(repo: Path) -> None:
    a = record(repo, 0.1)
    (repo / "train.py").write_text("print('v2')\n")
    git(repo, "commit", "-qam", "v2")
    b = record(repo, 0.2)
    code, out = cli_run("diff", a, b)
    assert code == 0 and "(--code shows the diff)" in out
    code, out = cli_run("diff", a, b, "--code")
    assert code == 0 and "--code shows the diff" not in out, out
    assert "(the diff is below)" in out and "+print('v2')" in out


def test_a_too_short_id_prefix_says_the_minimum(repo: Path) -> None:
    run_id = record(repo, 0.1)
    code, out = cli_run("show", run_id[:2])
    assert code == 1 and "at least 4 characters" in out, out
    code, out = cli_run("show", "nosuchrun")
    assert code == 1 and "at least 4" not in out


def test_empty_log_of_a_clone_without_origin_says_how_to_pull_or_record(
    repo: Path, tmp_path: Path
) -> None:
    upstream = tmp_path / "upstream.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(upstream))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-o", "upstream", str(upstream), str(clone))
    result = gitxp_cli(clone, "log")  # stdout and stderr piped, as from a script
    assert result.returncode == 0 and result.stdout == ""
    assert "`gitxp pull upstream`" in result.stderr and "gitxp run" in result.stderr


def test_export_parquet_keeps_integer_params_int64(repo: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    record(repo, 0.1, params={"epochs": 10, "lr": 0.1, "mixed": 1})
    record(repo, 0.2, params={"epochs": 20, "lr": 1, "mixed": "a"})
    record(repo, 0.3, params={"lr": 0.5})
    out = tmp_path / "out"
    code, text = cli_run("export", "parquet", str(out))
    assert code == 0, text
    assert "params.mixed has values of several types (int, str): written as text" in text
    schema = pq.read_schema(out / "runs.parquet")
    assert str(schema.field("params.epochs").type) == "int64"
    assert str(schema.field("params.lr").type) == "double"
    assert str(schema.field("params.mixed").type) in ("string", "large_string")
    epochs = pq.read_table(out / "runs.parquet").column("params.epochs").to_pylist()
    assert sorted(epochs, key=lambda v: -1 if v is None else v) == [None, 10, 20]


def test_metric_gate_names_where_its_conditions_came_from(repo: Path) -> None:
    record(repo, 0.5)
    code, out = cli_run("hook", "metric-gate", "--require", "metrics.acc > 0.8")
    assert code == 1 and "(--require)" in out, out
    assert "pyproject.toml)" not in out
    (repo / "pyproject.toml").write_text("[tool.gitxp.gate]\nrequire = ['metrics.acc > 0.9']\n")
    code, out = cli_run("hook", "metric-gate", "--require", "metrics.acc > 0.8")
    assert code == 1 and "([tool.gitxp.gate] in pyproject.toml and --require)" in out, out


def test_reproduce_of_a_script_outside_the_repository_says_so(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "train_outside.py"
    outside.parent.mkdir()
    outside.write_text(
        "import gitxp\nwith gitxp.start_run(name='outside') as run:\n    run.log_metric('a', 1)\n"
    )
    done = subprocess.run(
        [sys.executable, str(outside)], cwd=repo, capture_output=True, text=True, env=user_env()
    )
    assert done.returncode == 0, done.stderr
    code, out = cli_run("reproduce", "outside")
    assert code == 1
    assert "interactive session" not in out, out
    assert "train_outside.py, a script outside the repository" in out


# -- 11: a run edited on two clones -------------------------------------------------------------


@pytest.mark.slow
def test_pull_rebase_edits_resolves_a_run_edited_on_two_clones(repo: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    run_id = record(repo, 0.5, name="shared")
    git(repo, "push", "-q", "origin", "main")
    assert cli_run("push")[0] == 0
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    assert gitxp_cli(other, "pull").returncode == 0
    # edited on both clones
    assert cli_run("tag", run_id, "best=yes")[0] == 0
    assert cli_run("note", run_id, "from the first clone")[0] == 0
    assert cli_run("push")[0] == 0
    for args in (["tag", run_id, "reviewed=ada", "best=maybe"], ["note", run_id, "from the other"]):
        assert gitxp_cli(other, *args).returncode == 0
    push = gitxp_cli(other, "push")
    assert push.returncode == 1 and "`gitxp pull` first" in push.stderr, push.stderr
    pull = gitxp_cli(other, "pull")
    assert pull.returncode == 1
    # the advice is whole, not cut by the table's width
    assert "`gitxp pull --rebase-edits` replays your tag/note edits on theirs" in pull.stderr
    push = gitxp_cli(other, "push")
    assert push.returncode == 1 and "`gitxp pull --rebase-edits` replays" in push.stderr
    rebased = gitxp_cli(other, "pull", "--rebase-edits")
    assert rebased.returncode == 0, rebased.stdout + rebased.stderr
    assert "2 local edits replayed" in rebased.stdout
    run = gitxp.open(other).run(run_id)
    assert run.tags == {"best": "maybe", "reviewed": "ada"}  # the local edit, replayed last, wins
    assert run.notes == "from the first clone\n\nfrom the other"
    assert run.last_metrics == {"acc": 0.5}
    assert gitxp_cli(other, "push").returncode == 0  # now a fast-forward
    assert cli_run("pull")[0] == 0
    assert gitxp.open(repo).run(run_id).tags == run.tags
    fsck(other)


def test_rebase_edits_refuses_a_run_whose_local_commits_are_more_than_edits(
    repo: Path, tmp_path: Path
) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    run = gitxp.start_run(experiment="e", repo=repo, name="live")
    run.log_metric("acc", 0.1)
    run.checkpoint()
    assert cli_run("push")[0] == 0
    ref = f"refs/gitxp/runs/{run.id}"
    shared = git(repo, "rev-parse", ref).strip()
    run.log_metric("acc", 0.2)
    run.end()  # a local commit that is not an edit
    ours = git(repo, "rev-parse", ref).strip()
    # the remote's side: an edit on the shared commit, written with git plumbing
    edited = git(
        repo,
        "commit-tree",
        f"{shared}^{{tree}}",
        "-p",
        shared,
        "-m",
        f"gitxp: tag x=1 on run live\n\nGitxp-Run: {run.id}\n",
    ).strip()
    git(repo, "push", "-q", "origin", f"{edited}:{ref}", "-f")
    code, out = cli_run("pull", "--rebase-edits")
    assert code == 1 and "not rebased: local commit" in out and "local kept" in out, out
    assert git(repo, "rev-parse", ref).strip() == ours  # left as it was
    code, out = cli_run("pull", "--rebase-edits", "--force")
    assert code == 2 and "--force takes the remote's runs" in out
