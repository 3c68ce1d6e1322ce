"""Decompression bombs on the read path (gitxp issue 16, item 3).

The bomb is a 150 KB metric part whose footer lists one real, run-length
encoded row group 300 times: 300 million genuine rows, ~10 GB decoded.
Reads run in a child process capped at 3 GiB of address space, so the
machine is safe whatever the code under test does.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.faults.hostile import capped, make_project, parquet_bomb, record, replace_file

CAP = 3 << 30


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = make_project(tmp_path_factory.mktemp("bombs") / "project")
    ids = {name: record(path, name) for name in ("good", "bomb", "garbage")}
    replace_file(path, ids["bomb"], "metrics/part-000001.parquet", parquet_bomb())
    replace_file(path, ids["garbage"], "metrics/part-000001.parquet", b"PAR1 not parquet PAR1")
    return path, ids


def test_a_bomb_part_is_refused_before_decoding(project: tuple[Path, dict[str, str]]) -> None:
    path, ids = project
    code = f"""
        import time, gitxp
        from gitxp import CorruptRunError
        repo = gitxp.open(".")
        for read in (lambda r: r.metrics(), lambda r: r.metric_history("acc")):
            start = time.monotonic()
            try:
                read(repo.run("{ids["bomb"]}"))
            except CorruptRunError as exc:
                print("refused in %.2fs: %s" % (time.monotonic() - start, exc))
            else:
                print("decoded")
        peak = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
        print("peak rss kB", peak)
        print(len(repo.run("{ids["good"]}").metrics()), [r["status"] for r in repo.rows()])
    """
    result = capped(path, CAP, code)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len([x for x in lines if x.startswith("refused")]) == 2, result.stdout
    assert "300,000,000 rows" in lines[0] and "GITXP_MAX_DECODE_BYTES" in lines[0]
    assert int(lines[2].split()[-1]) < 1_000_000  # under 1 GB resident
    assert lines[3] == "5 ['FINISHED', 'FINISHED', 'FINISHED']"


def test_a_damaged_part_is_a_gitxp_error(project: tuple[Path, dict[str, str]]) -> None:
    import gitxp
    from gitxp import CorruptRunError

    path, ids = project
    with gitxp.open(path) as repo:
        record_ = repo.run(ids["garbage"])
        with pytest.raises(CorruptRunError, match=r"metrics/part-000001\.parquet is not a Parquet"):
            record_.metrics()
        with pytest.raises(CorruptRunError, match=r"metrics/part-000001\.parquet"):
            record_.metric_history("acc")


@pytest.mark.slow
def test_report_skips_unreadable_runs_within_the_memory_cap(
    project: tuple[Path, dict[str, str]],
) -> None:
    pytest.importorskip("plotly")  # the report inlines plotly.js (the `ui` extra)
    path, ids = project
    result = capped(path, CAP, "", "report", "exp", "-o", "r.html")
    assert result.returncode == 0, result.stderr[-2000:]
    html = (path / "r.html").read_text()
    data = json.loads(html.split('id="gitxp-data">', 1)[1].split("</script>", 1)[0])
    assert [r["id"] for r in data["runs"]] == [ids["good"]] and list(data["series"]) == [
        ids["good"]
    ]
    assert {s["id"] for s in data["skipped"]} == {ids["bomb"], ids["garbage"]}
    skipped = [line for line in result.stderr.splitlines() if "skipped run" in line]
    assert len(skipped) == 2 and any(ids["bomb"] in line for line in skipped), result.stderr


def test_decode_limit_is_configurable(project: tuple[Path, dict[str, str]]) -> None:
    """A tighter GITXP_MAX_DECODE_BYTES refuses even a legitimate run's read, by name."""
    path, ids = project
    code = f"""
        import gitxp
        try:
            gitxp.open(".").run("{ids["good"]}").metrics()
        except gitxp.CorruptRunError as exc:
            print(exc)
    """
    env_cap = {"GITXP_MAX_DECODE_BYTES": "100"}
    old = {k: os.environ.get(k) for k in env_cap}
    os.environ.update(env_cap)
    try:
        result = capped(path, CAP, code)
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert "over the limit of 100" in result.stdout, result.stdout + result.stderr
