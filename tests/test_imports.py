"""`import gitxp` and `gitxp --help` stay light, and the public surface is complete."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import gitxp

HEAVY = ("pandas", "pyarrow", "numpy", "dulwich")


def _loaded_after(code: str, cwd: str | None = None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {m.split(".")[0] for m in out}


def test_import_gitxp_loads_no_heavy_module() -> None:
    loaded = _loaded_after("import gitxp")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_cli_help_loads_neither_pandas_nor_pyarrow() -> None:
    code = (
        "import sys; sys.argv = ['gitxp', '--help']\n"
        "from gitxp.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    loaded = _loaded_after(code)
    assert "pandas" not in loaded and "pyarrow" not in loaded


def test_all_lists_every_public_name_and_each_resolves() -> None:
    import types

    public = {
        n
        for n in dir(gitxp)
        if not n.startswith("_") and not isinstance(getattr(gitxp, n, None), types.ModuleType)
    } - {"annotations", "TYPE_CHECKING", "Any"}
    assert public <= set(gitxp.__all__)
    for name in gitxp.__all__:
        assert getattr(gitxp, name) is not None


def test_every_error_is_a_gitxp_error() -> None:
    for name in gitxp.__all__:
        obj = getattr(gitxp, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, gitxp.GitxpError)


def test_recording_a_run_loads_neither_pandas_nor_pyarrow_before_the_commit(repo) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import sys, gitxp\n"
        "with gitxp.start_run(params={'a': 1}) as run:\n"
        "    run.log_metric('m', 1.0)\n"
        "    assert 'pandas' not in sys.modules and 'pyarrow' not in sys.modules\n"
    )
    loaded = _loaded_after(code)
    assert "pandas" not in loaded  # the final commit writes Parquet with pyarrow, never pandas


def test_exception_tree_drawing_names_every_error_once() -> None:
    import re

    import gitxp.errors as errors

    classes = [
        name
        for name, obj in vars(errors).items()
        if isinstance(obj, type) and issubclass(obj, errors.GitxpError)
    ]
    drawing = errors.__doc__ or ""
    for name in classes:
        assert len(re.findall(rf"(?:── |\n    ){name} ", drawing)) == 1, name


def test_the_recorded_host_is_the_socket_host_name_without_importing_socket() -> None:
    import socket

    from gitxp.format.ids import host_name

    assert host_name() == socket.gethostname()
    if hasattr(os, "uname"):  # POSIX: the name comes from uname
        assert "socket" not in _loaded_after("import gitxp.tracking.run, gitxp.store.record")


def test_without_a_git_identity_runs_are_signed_by_the_login_at_this_host(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import getpass

    from gitxp.format.ids import host_name

    for name in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.gitconfig
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git_config = repo / ".git" / "config"
    git_config.write_text(
        "\n".join(line for line in git_config.read_text().splitlines() if "user" not in line)
    )
    with gitxp.start_run(snapshot=False) as run:
        pass
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an <%ae>", f"refs/gitxp/runs/{run.id}"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    login = getpass.getuser()
    assert author == f"{login} <{login}@{host_name()}>"


# The budget of the everyday commands, kept by what they import rather than by a time
# (docs/performance.md, "Everyday latency"): a module on these lists costs milliseconds
# of every `gitxp log` or `gitxp run`, and one of gitxp's modules too many is the first
# sign of a layer pulled in by accident.
EVERYDAY_NEVER = (
    "pandas",
    "pyarrow",
    "numpy",
    "email",  # importlib.metadata's parser: the package list must come from its cache
    "http",
    "dulwich.porcelain",
    "dulwich.patch",
    "gitxp.store.registry",  # the model registry: only registry commands and NAME@vX.Y.Z
    "gitxp.store.registry_actions",
    "gitxp.format.registry",
    "gitxp.present.views",
    "gitxp.ops.sharing",
)
LOG_ALSO_NEVER = (
    "dulwich.repo",  # a listing served from the listing cache opens no dulwich Repo
    "dulwich.object_store",
    "dulwich.pack",
    "difflib",
    "gitxp.tracking",
    "gitxp.ops",
)
LOG_GITXP_MODULES = 40  # 35 today; 38 when every command loaded the registry
RUN_GITXP_MODULES = 58  # 52 today


def _modules_of_command(*argv: str) -> set[str]:
    """Every module a `gitxp` command run in a fresh interpreter has loaded when it ends."""
    code = (
        f"import sys; sys.argv = ['gitxp', *{argv!r}]\n"
        "from gitxp.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sys.modules), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stderr.strip().splitlines()[-1].split())


def _loaded(modules: set[str], names: tuple[str, ...]) -> set[str]:
    return {m for m in modules for n in names if m == n or m.startswith(n + ".")}


def test_gitxp_log_of_a_small_repository_loads_only_what_listing_needs(repo: Path) -> None:
    for i in range(3):
        with gitxp.start_run(params={"i": i}, snapshot=False) as run:
            run.log_metric("loss", 1.0 / (i + 1))
    _modules_of_command("log")  # the first listing writes the listing cache
    for argv in (("log",), ("log", "--format", "json"), ("log", "--oneline")):
        modules = _modules_of_command(*argv)
        assert "gitxp.store.query" in modules  # it did list the runs
        assert not _loaded(modules, EVERYDAY_NEVER + LOG_ALSO_NEVER), argv
        assert len({m for m in modules if m.startswith("gitxp")}) <= LOG_GITXP_MODULES
    # right after a new run the listing reads that run alone: a handful of runs the cache
    # has not seen are read from their objects, without looking for a shipped index
    with gitxp.start_run(snapshot=False):
        pass
    modules = _modules_of_command("log")
    assert not _loaded(modules, ("gitxp.store.shipped_index", "gitxp.format.listing_index"))


def test_gitxp_run_of_a_short_command_loads_only_what_recording_needs(repo: Path) -> None:
    _modules_of_command("run", "-q", "--", "true")  # the first run caches the package list
    (repo / "train.py").write_text("print('changed')\n")  # a snapshot of the work tree too
    modules = _modules_of_command("run", "-q", "--", "true")
    assert "gitxp.tracking.run" in modules  # it did record a run
    assert not _loaded(modules, EVERYDAY_NEVER)
    assert len({m for m in modules if m.startswith("gitxp")}) <= RUN_GITXP_MODULES
    listed = subprocess.run(
        ["git", "for-each-ref", "refs/gitxp/runs/"], capture_output=True, text=True, check=True
    ).stdout
    assert len(listed.splitlines()) == 2


def test_a_model_reference_still_resolves_where_a_run_is_named(repo: Path) -> None:
    with gitxp.start_run(name="first", snapshot=False) as run:
        pass
    store = gitxp.open()
    store.register_model(run.id, "churn")
    for text in ("churn@v0.0.1", "churn@latest", run.id[:8], "first"):
        assert store.run(text).id == run.id
    with pytest.raises(gitxp.RunNotFoundError):
        store.run("nothing-like-it")


@pytest.mark.parametrize("argv", [["log"], ["--version"], ["no-such-command"]])
def test_the_command_turns_the_garbage_collector_back_on(repo: Path, argv: list[str]) -> None:
    code = (
        "import gc, sys\n"
        "from gitxp.cli.main import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "True True"
