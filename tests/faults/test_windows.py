"""The last crash and race windows of gitxp's write paths (issue 16 follow-ups).

Each test opens its window with real parts (a real `git daemon`, the real
`git` CLI, real processes killed with SIGKILL) and holds it open where it
can be observed from outside, instead of hoping a loop hits it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import gitxp
from gitxp._errors import InvalidValueError
from tests.gitutil import git


# -- lone surrogates in log_text / log_dict ---------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda run: run.log_text("caf\udce9", "notes.txt"),
        lambda run: run.log_dict({"city": "caf\udce9"}, "config.json"),
        lambda run: run.log_dict({"caf\udce9": 1}, "config.yaml"),
    ],
    ids=["log_text", "log_dict-json", "log_dict-yaml-key"],
)
def test_lone_surrogate_in_text_artifacts_is_refused_and_the_run_goes_on(repo: Path, call) -> None:
    with gitxp.start_run(name="s", snapshot=False) as run:
        with pytest.raises(InvalidValueError) as caught:
            call(run)
        message = str(caught.value)
        assert "\n" not in message and "U+DCE9" in message, message
        run.log_text("fine", "ok.txt")  # the run continues
    record = gitxp.open(repo).run(run.id)
    assert record.status == "FINISHED"
    files = git(repo, "ls-tree", "-r", "--name-only", f"refs/gitxp/runs/{run.id}").split()
    assert not any(f.endswith(("notes.txt", "config.json", "config.yaml")) for f in files), files
    assert any(f.endswith("ok.txt") for f in files), files
