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
