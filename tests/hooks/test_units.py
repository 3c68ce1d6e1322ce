"""The hooks' pure helpers: what counts as run output, gate conditions, push input, settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitxp import ConfigError, FilterSyntaxError
from gitxp.hooks import skipped
from gitxp.hooks.config import (
    GateConfig,
    HooksConfig,
    format_size,
    load_gate_config,
    load_hooks_config,
    parse_size,
)
from gitxp.hooks.install import hooks_dir, render_script
from gitxp.hooks.metric_gate import evaluate, fields_of, runs_on_commit
from gitxp.hooks.no_run_outputs import find_offenders
from gitxp.hooks.push_runs import failures, select_runs
from gitxp.hooks.pushinfo import PushedRef, parse_push_lines

MB = 1_000_000
A, B, C, S = "a" * 40, "b" * 40, "c" * 40, "5" * 40


def offenders(files: list[tuple[str, int]], **settings: object) -> dict[str, str]:
    config = HooksConfig.from_mapping(settings)
    return {o.path: o.reason for o in find_offenders(files, config)}


def test_tracker_directories_are_flagged_anywhere_in_the_tree() -> None:
    found = offenders(
        [
            ("mlruns/0/meta.yaml", 10),
            ("exp/wandb/run-1/files/config.yaml", 10),
            ("lightning_logs/version_0/hparams.yaml", 10),
            (".neptune/x", 1),
            ("dvclive/metrics.json", 1),
            ("src/train.py", 10),
            ("docs/wandb.md", 10),  # a file named like a tool is fine
        ]
    )
    assert set(found) == {
        "mlruns/0/meta.yaml",
        "exp/wandb/run-1/files/config.yaml",
        "lightning_logs/version_0/hparams.yaml",
        ".neptune/x",
        "dvclive/metrics.json",
    }
    assert "MLflow" in found["mlruns/0/meta.yaml"]
    assert "Weights & Biases" in found["exp/wandb/run-1/files/config.yaml"]


def test_event_files_fail_at_any_size_and_models_only_above_the_limit() -> None:
    found = offenders(
        [
            ("runs/Jan01/events.out.tfevents.1700000000.host.1.0", 40),
            ("small.pt", 10_000),
            ("big.PT", 3 * MB),
            ("model.safetensors", 2 * MB),
            ("weights.h5", MB),  # exactly at the limit: allowed
            ("data.csv", 50 * MB),  # not a model format: other hooks judge size
        ]
    )
    assert set(found) == {
        "runs/Jan01/events.out.tfevents.1700000000.host.1.0",
        "big.PT",
        "model.safetensors",
    }
    assert "TensorBoard" in found["runs/Jan01/events.out.tfevents.1700000000.host.1.0"]
    assert "3 MB > 1 MB" in found["big.PT"]


def test_settings_replace_extend_and_allow() -> None:
    files = [
        ("mlruns/x", 1),
        ("outputs/run.log", 1),
        ("m.ckpt", 600_000),
        ("fixtures/m.ckpt", 9 * MB),
    ]
    assert set(offenders(files, **{"max-model-size": "500KB", "allow": ["fixtures/*"]})) == {
        "mlruns/x",
        "m.ckpt",
    }
    assert set(offenders(files, **{"run-output-dirs": ["outputs"]})) == {
        "outputs/run.log",
        "fixtures/m.ckpt",
    }
    assert set(offenders(files, **{"extend-run-output-dirs": ["outputs/"]})) == {
        "mlruns/x",
        "outputs/run.log",
        "fixtures/m.ckpt",
    }
    assert offenders([("a.weights", 2 * MB)], **{"extend-model-files": ["*.weights"]})


@pytest.mark.parametrize(
    ("text", "size"),
    [(0, 0), (1234, 1234), ("500KB", 500_000), ("1.5 MB", 1_500_000), ("2GiB", 2 * 1024**3)],
)
def test_sizes_parse(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "-1", -5, True, 1.5, "5 parsecs"])
def test_bad_sizes_name_the_setting(bad: object) -> None:
    with pytest.raises(ConfigError, match="max-model-size"):
        HooksConfig.from_mapping({"max-model-size": bad})


def test_format_size() -> None:
    assert format_size(80) == "80 B"
    assert format_size(2_000_000) == "2 MB"
    assert format_size(12_345_678) == "12.3 MB"


def test_unknown_or_mistyped_settings_are_errors_not_silence(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"max-model-sise.*unknown setting"):
        HooksConfig.from_mapping({"max-model-sise": "1MB"})
    with pytest.raises(ConfigError, match="must be one of"):
        HooksConfig.from_mapping({"push-failure": "sometimes"})
    with pytest.raises(ConfigError, match="string or a list"):
        GateConfig.from_mapping({"require": [1, 2]})
    with pytest.raises(FilterSyntaxError, match="column"):
        GateConfig.from_mapping({"require": ["metrics.acc >>= 1"]})
    (tmp_path / "pyproject.toml").write_text("[tool.gitxp.gate\nrequire = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_gate_config(str(tmp_path))


def test_settings_come_from_pyproject_with_dashes_or_underscores(tmp_path: Path) -> None:
    assert load_gate_config(str(tmp_path)) == (GateConfig(), False)
    (tmp_path / "pyproject.toml").write_text(
        "[tool.gitxp.hooks]\nmax_model_size = 2000\npush-runs = 'all'\n"
        "[tool.gitxp.gate]\nrequire = 'metrics.acc > 0.5'\nexperiment = 'iris'\nmissing = 'warn'\n"
    )
    hooks = load_hooks_config(str(tmp_path))
    assert (hooks.max_model_size, hooks.push_runs) == (2000, "all")
    gate, configured = load_gate_config(str(tmp_path))
    assert configured
    assert gate == GateConfig(["metrics.acc > 0.5"], ["iris"], "warn")


ROW = {
    "id": "r1",
    "status": "FINISHED",
    "params": {"lr": 0.1, "batch size": 32},
    "metrics": {"acc": 0.7, "loss": 0.3},
    "tags": {"stage": "prod"},
}


def test_gate_conditions_report_the_values_they_read() -> None:
    checks = evaluate(
        ROW,
        [
            "metrics.acc >= 0.6",
            "metrics.loss < 0.2 or params.lr > 1",
            "metrics.f1 > 0.5",
            "params.`batch size` = 32 and status = 'FINISHED'",
        ],
    )
    assert [c.met for c in checks] == [True, False, False, True]
    assert checks[1].values == {"metrics.loss": 0.3, "params.lr": 0.1}
    assert checks[2].values == {"metrics.f1": None}
    assert checks[3].values == {"params.`batch size`": 32, "status": "FINISHED"}
    assert fields_of("tags.stage LIKE 'p%' and attributes.status != 'FAILED'") == [
        "tags.stage",
        "attributes.status",
    ]


def test_a_run_is_on_a_commit_directly_or_through_its_snapshot() -> None:
    rows = [
        {"id": "direct", "code_commit": A, "dirty": False, "head": A},
        {"id": "snap", "code_commit": S, "dirty": True, "head": A},
        {"id": "other", "code_commit": B, "dirty": False, "head": B},
        {"id": "old-cache-row", "code_commit": C, "dirty": True},  # no head: read from git
        {"id": "no-code", "code_commit": None},
    ]
    assert [r["id"] for r in runs_on_commit(None, rows, A)] == ["direct", "snap"]
    assert select_runs(rows, {A}, {}) == ["direct", "snap"]
    assert select_runs(rows, {B}, {C: B}) == ["old-cache-row", "other"]


def test_pre_push_lines_parse_and_classify() -> None:
    text = (
        f"refs/heads/main {A} refs/heads/main {B}\n"
        f"(delete) {'0' * 40} refs/heads/old {C}\n"
        f"refs/gitxp/runs/x {C} refs/gitxp/runs/x {'0' * 40}\n"
        "garbage line\n\n"
    )
    refs = parse_push_lines(text)
    assert refs[0] == PushedRef("refs/heads/main", A, "refs/heads/main", B)
    assert [r.is_delete for r in refs] == [False, True, False]
    assert [r.is_gitxp for r in refs] == [False, False, True]


def test_push_failures_are_the_results_that_did_not_land() -> None:
    class R:
        def __init__(self, status: str) -> None:
            self.status = status

    results = [R("new"), R("updated"), R("up-to-date"), R("rejected"), R("error")]
    assert [r.status for r in failures(results)] == ["rejected", "error"]


def test_skip_variable() -> None:
    assert skipped("push-runs", {"GITXP_SKIP": "metric-gate, push-runs"})
    assert skipped("validate", {"GITXP_SKIP": "gitxp-validate"})
    assert skipped("validate", {"GITXP_SKIP": "all"})
    assert not skipped("validate", {"GITXP_SKIP": "push-runs"})
    assert not skipped("validate", {})


def test_hooks_dir_honours_core_hooks_path() -> None:
    assert hooks_dir("/w", "/w/.git", None) == "/w/.git/hooks"
    assert hooks_dir("/w", "/w/.git", ".githooks") == "/w/.githooks"
    assert hooks_dir("/w", "/w/.git", "/etc/hooks") == "/etc/hooks"


def test_shipped_hook_scripts_are_what_install_writes() -> None:
    root = Path(__file__).resolve().parents[2]
    for name in ("pre-commit", "pre-push"):
        script = root / "hooks" / name
        assert script.read_text() == render_script(name, None)
        assert script.stat().st_mode & 0o111, f"hooks/{name} must be executable"
    assert "GITXP_PYTHON='/opt/it'\\''s/python'" in render_script("pre-push", "/opt/it's/python")
