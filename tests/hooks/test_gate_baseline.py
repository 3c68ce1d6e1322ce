"""The metric gate compared with a registered model's run (`baseline = "churn#prod"`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import gitxp
from gitxp import FilterSyntaxError
from gitxp.hooks.config import GateConfig
from gitxp.hooks.gate_baseline import Baseline, bind
from gitxp.hooks.metric_gate import evaluate
from tests.gitutil import git
from tests.hooks.test_git_hooks import gate, hook, record


def test_bind_writes_the_baselines_values_as_literals() -> None:
    row = {"metrics": {"acc": 0.8, "my loss": 0.25}, "params": {"opt": "it's adam"}, "id": "x"}
    assert bind("metrics.acc > baseline.metrics.acc", row) == (
        "metrics.acc > 0.8",
        {"baseline.metrics.acc": 0.8},
    )
    text, used = bind("params.opt = baseline.params.opt and baseline.id = 'x'", row)
    assert text == "params.opt = 'it''s adam' and 'x' = 'x'"
    assert used == {"baseline.params.opt": "it's adam", "baseline.id": "x"}
    assert bind("metrics.`my loss` <= baseline.metrics.`my loss`", row)[0].endswith("0.25")
    assert bind("metrics.f1 > baseline.metrics.f1", row) == ("", {"baseline.metrics.f1": None})
    with pytest.raises(FilterSyntaxError):
        GateConfig.from_mapping({"require": ["metrics.acc > baseline.nonsense.acc"]})
    with pytest.raises(FilterSyntaxError, match="goes right of the operator"):
        GateConfig.from_mapping({"require": ["baseline.metrics.acc < metrics.acc"]})
    config = GateConfig.from_mapping(
        {"require": ["metrics.acc > baseline.metrics.acc"], "baseline": "churn#prod"}
    )
    assert config.baseline == "churn#prod"


def test_a_missing_baseline_value_fails_its_condition() -> None:
    base = Baseline("churn#prod", {"metrics": {"acc": 0.8}, "id": "b", "name": "prod-run"})
    checks = evaluate(
        {"metrics": {"acc": 0.9, "f1": 0.5}},
        ["metrics.acc > baseline.metrics.acc", "metrics.f1 > baseline.metrics.f1"],
        base,
    )
    assert [c.met for c in checks] == [True, False]
    assert checks[1].values == {"metrics.f1": 0.5, "baseline.metrics.f1": None}


def test_the_gate_compares_the_pushed_run_with_the_prod_stage(
    repo: Path, runner: CliRunner
) -> None:
    prod = record(repo, 0.8)
    with gitxp.open(repo) as r:
        r.register_model(prod, "churn")
        r.assign_stage("churn", "prod")
    gate(repo, 'baseline = "churn#prod"\nrequire = ["metrics.acc > baseline.metrics.acc"]\n')
    weak = record(repo, 0.75)
    code, out = hook(runner, "metric-gate")
    assert code == 1, out
    assert weak in out and "compared with churn#prod (run " + prod in out
    assert "metrics.acc > baseline.metrics.acc" in out and "0.75" in out and "0.8" in out

    record(repo, 0.85)
    assert hook(runner, "metric-gate") == (0, "")
    # a stronger prod raises the bar for the same run
    git(repo, "commit", "-q", "--allow-empty", "-m", "next")
    better = record(repo, 0.9)
    with gitxp.open(repo) as r:
        r.register_model(better, "churn")
        r.assign_stage("churn@v0.0.2", "prod")
    code, out = hook(runner, "metric-gate", "--require", "metrics.acc >= 0.5")
    assert code == 1 and "compared with churn#prod (run " + better in out


def test_unknown_model_stage_or_missing_baseline_is_one_line(repo: Path, runner: CliRunner) -> None:
    prod = record(repo, 0.8)
    with gitxp.open(repo) as r:
        r.register_model(prod, "churn")
    gate(repo, 'baseline = "churn#prod"\nrequire = ["metrics.acc >= baseline.metrics.acc"]\n')
    code, out = hook(runner, "metric-gate")
    assert code == 1 and len(out.strip().splitlines()) == 1
    assert "no version of churn is in stage 'prod'" in out
    code, out = hook(runner, "metric-gate", "--baseline", "chrun#prod")
    assert code == 1 and len(out.strip().splitlines()) == 1 and "'chrun#prod'" in out
    gate(repo, 'require = ["metrics.acc >= baseline.metrics.acc"]\n')
    code, out = hook(runner, "metric-gate")
    assert code == 1 and "none is set" in out and 'baseline = "MODEL#STAGE"' in out
    # --baseline works without any configuration, and takes any run reference
    record(repo, 0.8)
    assert hook(runner, "metric-gate", "--baseline", "churn@latest") == (0, "")
