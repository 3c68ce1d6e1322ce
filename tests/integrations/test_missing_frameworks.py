"""A framework or extra that is not installed gives a one-line error naming the extra."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# Run in a fresh interpreter where importing the blocked packages fails as if
# they were not installed (a meta-path finder that refuses them).
PRELUDE = """
import sys

class Absent:
    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent(sys.argv[1].split(",")))
import gitxp
try:
"""

CASES = [
    ("lightning", "import gitxp.integrations.lightning", "the Lightning logger", "lightning"),
    (
        "transformers",
        "import gitxp.integrations.transformers",
        "the Transformers callback",
        "transformers",
    ),
    ("keras", "import gitxp.integrations.keras", "the Keras callback", "keras"),
    ("sklearn", "import gitxp.sklearn; gitxp.sklearn.autolog()", "gitxp.sklearn", "sklearn"),
    ("psutil", "gitxp.start_run(system_metrics=True)", "system metrics", "system"),
    ("optuna", "import gitxp.optuna", "gitxp.optuna", "optuna"),
    ("ray", "import gitxp.ray", "gitxp.ray", "ray"),
]


def _run(blocked: str, body: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = (
        PRELUDE
        + textwrap.indent(body, "    ")
        + textwrap.dedent(
            """
        except gitxp.GitxpError as exc:
            print(type(exc).__name__)
            print(exc)
            sys.exit(1)
        print("no error")
        """
        )
    )
    return subprocess.run(
        [sys.executable, "-c", code, blocked], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.mark.parametrize(("blocked", "body", "feature", "extra"), CASES, ids=[c[0] for c in CASES])
def test_missing_package_names_the_extra(
    repo: Path, blocked: str, body: str, feature: str, extra: str
) -> None:
    result = _run(blocked, body, repo)
    assert result.returncode == 1, result.stdout + result.stderr
    kind, message, *rest = result.stdout.splitlines()
    assert kind == "MissingExtraError" and not rest  # one line
    assert message.startswith(f"{feature} needs ")
    assert f"pip install 'gitxp[{extra}]'" in message
    # the bad setting was caught before anything was recorded
    assert (
        "refs/gitxp"
        not in subprocess.run(
            ["git", "for-each-ref"], cwd=repo, capture_output=True, text=True
        ).stdout
    )


def test_missing_torch_says_to_install_torch_first(repo: Path) -> None:
    if importlib.util.find_spec("lightning") is None and not os.environ.get("CI"):
        pytest.skip("lightning is not installed here (CI installs it)")
    result = _run("torch", "import gitxp.integrations.lightning", repo)
    assert result.returncode == 1, result.stderr
    message = result.stdout.splitlines()[1]
    assert message.startswith("the Lightning logger needs torch")
    assert "install PyTorch first" in message


def test_import_gitxp_loads_no_framework() -> None:
    code = (
        "import sys, gitxp, gitxp.tracking.run, gitxp.tracking.fluent, gitxp.tracking.system_metrics, gitxp.sklearn\n"
        "heavy = {'torch', 'lightning', 'transformers', 'keras', 'sklearn', 'psutil', 'pynvml',"
        " 'optuna', 'ray'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stderr


def test_gitxp_run_system_metrics_without_psutil_is_a_one_line_cli_error(repo: Path) -> None:
    code = PRELUDE.replace("try:\n", "") + (
        "from gitxp.cli.main import main\n"
        "main(['run', '--system-metrics', '--', sys.executable, '-c', 'pass'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "psutil"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: system metrics needs psutil, which is not installed; "
        "install it with `pip install 'gitxp[system]'`"
    ]
    assert (
        "refs/gitxp"
        not in subprocess.run(
            ["git", "for-each-ref"], cwd=repo, capture_output=True, text=True
        ).stdout
    )


def test_gitxp_sweep_optuna_without_optuna_is_a_one_line_cli_error(repo: Path) -> None:
    code = PRELUDE.replace("try:\n", "") + (
        "from gitxp.cli.main import main\n"
        "main(['sweep', '--optuna', '--study', 's', '--metric', 'acc', '-p', 'x=int(1,2)',"
        " '--', sys.executable, '-c', 'pass'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "optuna"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=repo,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: gitxp.optuna needs optuna, which is not installed; "
        "install it with `pip install 'gitxp[optuna]'`"
    ]
    assert not (repo / ".git" / "gitxp" / "optuna").exists()
