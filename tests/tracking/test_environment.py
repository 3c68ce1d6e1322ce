"""The cached list of installed distributions: same answer as a fresh scan, renewed on install."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import gitxp
from gitxp.tracking import environment


@pytest.fixture(autouse=True)
def _fresh_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(environment, "_cached", None)


def test_cached_packages_equal_a_fresh_scan(tmp_path: Path) -> None:
    first = environment.capture(None, cache_dir=str(tmp_path))
    assert (tmp_path / environment.PACKAGES_CACHE).exists()
    environment._cached = None
    second = environment.capture(None, cache_dir=str(tmp_path))
    assert second["packages"] == first["packages"] == environment._packages()
    assert "dulwich" in {name.lower() for name in second["packages"]}


def test_installing_a_distribution_renews_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    cache = tmp_path / "cache"
    before = environment.capture(None, cache_dir=str(cache))["packages"]
    assert "gitxp-bench-fake" not in before
    info = site / "gitxp_bench_fake-1.2.3.dist-info"  # what pip install leaves behind
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gitxp-bench-fake\nVersion: 1.2.3\n"
    )
    environment._cached = None
    after = environment.capture(None, cache_dir=str(cache))["packages"]
    assert after["gitxp-bench-fake"] == "1.2.3"


def test_a_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / environment.PACKAGES_CACHE).write_text("{not json")
    packages = environment.capture(None, cache_dir=str(tmp_path))["packages"]
    assert packages == environment._packages()
    stored = json.loads((tmp_path / environment.PACKAGES_CACHE).read_text())
    assert stored["entries"][0]["packages"] == packages


def test_runs_record_packages_through_the_cache(repo: Path) -> None:
    with gitxp.start_run(snapshot=False) as run:
        pass
    assert (repo / ".git" / "gitxp" / environment.PACKAGES_CACHE).exists()
    env = gitxp.open(repo).run(run.id).env
    assert env["packages"] == environment._packages()


def _counting_scans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    scans: list[int] = []
    scan = environment._packages

    def counted() -> dict[str, str]:
        scans.append(1)
        return scan()

    monkeypatch.setattr(environment, "_packages", counted)
    return scans


def _capture(cache: Path) -> dict[str, str]:
    environment._cached = None
    return dict(environment.capture(None, cache_dir=str(cache))["packages"])


def test_files_written_beside_the_script_keep_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"  # sys.path[0] of `python train.py`
    project.mkdir()
    monkeypatch.setattr(sys, "path", [str(project), *sys.path])
    scans = _counting_scans(monkeypatch)
    first = _capture(tmp_path / "cache")
    for i in range(3):  # each run leaves its outputs beside the script
        (project / f"model-{i}.pt").write_bytes(b"weights")
        (project / "outputs").mkdir(exist_ok=True)
        assert _capture(tmp_path / "cache") == first
    assert len(scans) == 1
    # a distribution installed there in develop mode still renews it
    info = project / "proj.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Metadata-Version: 2.1\nName: gitxp-dev-fake\nVersion: 0.1\n")
    assert _capture(tmp_path / "cache")["gitxp-dev-fake"] == "0.1"
    assert len(scans) == 2


def test_entry_points_taking_turns_are_each_served_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scans = _counting_scans(monkeypatch)
    base = list(sys.path)
    cli_path, script_path = tmp_path / "bin", tmp_path / "project"
    cli_path.mkdir()
    script_path.mkdir()
    (cli_path / "gitxp_bench_fake-1.0.dist-info").mkdir()  # the two keys differ
    for _ in range(3):  # `gitxp run ...`, then `python train.py`, and again
        for first in (cli_path, script_path):
            monkeypatch.setattr(sys, "path", [str(first), *base])
            _capture(tmp_path / "cache")
    assert len(scans) == 2
    stored = json.loads((tmp_path / "cache" / environment.PACKAGES_CACHE).read_text())
    assert len(stored["entries"]) == 2


def test_cached_platform_equals_a_fresh_one_and_follows_its_key(tmp_path: Path) -> None:
    import platform

    first = environment.capture(None, cache_dir=str(tmp_path))["platform"]["platform"]
    assert first == platform.platform()
    stored = json.loads((tmp_path / environment.PLATFORM_CACHE).read_text())
    assert stored == {"key": environment._platform_key(), "platform": first}
    # a value stored under another key (a kernel or Python since replaced) is not used
    stored["key"][1] = "0.0.0-another-kernel"
    stored["platform"] = "stale"
    (tmp_path / environment.PLATFORM_CACHE).write_text(json.dumps(stored))
    environment._cached = None
    again = environment.capture(None, cache_dir=str(tmp_path))["platform"]["platform"]
    assert again == first
    # under its own key the stored value is what is recorded; a corrupt file is rewritten
    (tmp_path / environment.PLATFORM_CACHE).write_text("{not json")
    environment._cached = None
    assert environment.capture(None, cache_dir=str(tmp_path))["platform"]["platform"] == first
    assert json.loads((tmp_path / environment.PLATFORM_CACHE).read_text())["platform"] == first
