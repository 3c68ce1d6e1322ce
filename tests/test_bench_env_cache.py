"""The cached list of installed distributions: same answer as a fresh scan, renewed on install."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import gitxp
from gitxp import environment


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
    assert json.loads((tmp_path / environment.PACKAGES_CACHE).read_text())["packages"] == packages


def test_runs_record_packages_through_the_cache(repo: Path) -> None:
    with gitxp.start_run(snapshot=False) as run:
        pass
    assert (repo / ".git" / "gitxp" / environment.PACKAGES_CACHE).exists()
    env = gitxp.open(repo).run(run.id).env
    assert env["packages"] == environment._packages()
