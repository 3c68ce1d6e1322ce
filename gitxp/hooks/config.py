"""Hook settings: `[tool.gitxp.hooks]` and `[tool.gitxp.gate]` of the project's pyproject.toml.

Keys may be spelt with dashes or underscores. An unknown key is an error,
so a typo never silently turns a check off.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

PYPROJECT = "pyproject.toml"

# directory name -> the tool that writes it (named in the hook's message)
RUN_OUTPUT_DIRS: dict[str, str] = {
    "mlruns": "MLflow",
    "mlartifacts": "MLflow",
    "wandb": "Weights & Biases",
    "lightning_logs": "PyTorch Lightning",
    ".neptune": "Neptune",
    "dvclive": "DVCLive",
    ".aim": "Aim",
}
# files that are tracker output whatever their size
RUN_OUTPUT_FILES: dict[str, str] = {
    "events.out.tfevents.*": "TensorBoard event file",
}
# checkpoint and model formats, flagged above MAX_MODEL_SIZE
MODEL_FILES: tuple[str, ...] = (
    "*.ckpt",
    "*.pt",
    "*.pth",
    "*.safetensors",
    "*.h5",
    "*.hdf5",
    "*.keras",
    "*.onnx",
    "*.tflite",
    "*.gguf",
    "*.pb",
    "*.bin",
    "*.pkl",
    "*.pickle",
    "*.joblib",
    "*.msgpack",
)
MAX_MODEL_SIZE = 1_000_000

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")


def parse_size(value: object, where: str = "size", key: str = "size") -> int:
    """Bytes from an int (bytes) or a string such as "500KB", "1.5 MB", "2GiB"."""
    if isinstance(value, bool):
        raise ConfigError(where, key, f'{value!r} is not a size; write e.g. 5000000 or "5MB"')
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str):
        m = _SIZE.fullmatch(value)
        if m and m.group(2).lower() in _UNITS:
            return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    raise ConfigError(where, key, f'{value!r} is not a size; write e.g. 5000000 or "5MB"')


def format_size(size: int) -> str:
    """A size for people: 12.3 MB, 512 KB, 80 B."""
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}".replace(".0 ", " ")
    return f"{size} B"


def load_table(root: str, table: str, path: str | None = None) -> tuple[str, dict[str, Any]]:
    """The `[tool.gitxp.<table>]` mapping of pyproject.toml ({} when absent) and the file's path."""
    file = path or os.path.join(root, PYPROJECT)
    try:
        with open(file, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if path is not None:
            raise ConfigError(file, "file", "does not exist") from None
        return file, {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "file", f"is not valid TOML ({exc})") from None
    section = data.get("tool", {}).get("gitxp", {}).get(table, {})
    if not isinstance(section, dict):
        raise ConfigError(file, f"tool.gitxp.{table}", "must be a table")
    return file, {k.replace("_", "-"): v for k, v in section.items()}


def _check_keys(file: str, table: str, values: Mapping[str, Any], known: set[str]) -> None:
    for key in values:
        if key not in known:
            raise ConfigError(
                file,
                f"tool.gitxp.{table}.{key}",
                f"unknown setting; known settings are {', '.join(sorted(known))}",
            )


def _str_list(file: str, key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(file, key, f"{value!r} must be a string or a list of strings")


def _choice(file: str, key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(file, key, f"{value!r} must be one of {', '.join(map(repr, choices))}")
    return str(value)


@dataclass
class HooksConfig:
    """`[tool.gitxp.hooks]`: what the commit and push hooks look for and do."""

    run_output_dirs: dict[str, str] = field(default_factory=lambda: dict(RUN_OUTPUT_DIRS))
    run_output_files: dict[str, str] = field(default_factory=lambda: dict(RUN_OUTPUT_FILES))
    model_files: list[str] = field(default_factory=lambda: list(MODEL_FILES))
    max_model_size: int = MAX_MODEL_SIZE
    allow: list[str] = field(default_factory=list)
    push_runs: str = "pushed"
    push_failure: str = "warn"
    push_artifacts: bool = False

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], file: str = PYPROJECT) -> HooksConfig:
        """Build the settings from the table's contents (keys already dash-spelt)."""
        t = "tool.gitxp.hooks."
        lists = ("run-output-dirs", "run-output-files", "model-files")
        known = {
            *lists,
            *(f"extend-{k}" for k in lists),
            "max-model-size",
            "allow",
            "push-runs",
            "push-failure",
            "push-artifacts",
        }
        _check_keys(file, "hooks", values, known)
        cfg = cls()
        if "run-output-dirs" in values:
            dirs = _str_list(file, t + "run-output-dirs", values["run-output-dirs"])
            cfg.run_output_dirs = {d: RUN_OUTPUT_DIRS.get(d, "") for d in dirs}
        for d in _str_list(
            file, t + "extend-run-output-dirs", values.get("extend-run-output-dirs", [])
        ):
            cfg.run_output_dirs[d.strip("/")] = RUN_OUTPUT_DIRS.get(d, "")
        cfg.run_output_dirs = {d.strip("/"): tool for d, tool in cfg.run_output_dirs.items()}
        if "run-output-files" in values:
            pats = _str_list(file, t + "run-output-files", values["run-output-files"])
            cfg.run_output_files = {p: RUN_OUTPUT_FILES.get(p, "") for p in pats}
        for p in _str_list(
            file, t + "extend-run-output-files", values.get("extend-run-output-files", [])
        ):
            cfg.run_output_files[p] = RUN_OUTPUT_FILES.get(p, "")
        if "model-files" in values:
            cfg.model_files = _str_list(file, t + "model-files", values["model-files"])
        cfg.model_files += _str_list(
            file, t + "extend-model-files", values.get("extend-model-files", [])
        )
        if "max-model-size" in values:
            cfg.max_model_size = parse_size(values["max-model-size"], file, t + "max-model-size")
        cfg.allow = _str_list(file, t + "allow", values.get("allow", []))
        if "push-runs" in values:
            cfg.push_runs = _choice(file, t + "push-runs", values["push-runs"], ("pushed", "all"))
        if "push-failure" in values:
            cfg.push_failure = _choice(
                file, t + "push-failure", values["push-failure"], ("warn", "fail")
            )
        if "push-artifacts" in values:
            if not isinstance(values["push-artifacts"], bool):
                raise ConfigError(file, t + "push-artifacts", "must be true or false")
            cfg.push_artifacts = values["push-artifacts"]
        return cfg


def load_hooks_config(root: str, path: str | None = None) -> HooksConfig:
    """The `[tool.gitxp.hooks]` settings of the project at *root* (defaults when absent)."""
    file, values = load_table(root, "hooks", path)
    return HooksConfig.from_mapping(values, file)


@dataclass
class GateConfig:
    """`[tool.gitxp.gate]`: the conditions a pushed commit's newest finished run must meet."""

    require: list[str] = field(default_factory=list)
    experiment: list[str] | None = None
    missing: str = "fail"
    baseline: str | None = None  # a run reference (`churn#prod`) conditions compare with

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], file: str = PYPROJECT) -> GateConfig:
        """Build the gate from the table's contents; conditions are checked for syntax."""
        from .gate_baseline import check_condition

        t = "tool.gitxp.gate."
        _check_keys(file, "gate", values, {"require", "experiment", "missing", "baseline"})
        cfg = cls()
        cfg.require = _str_list(file, t + "require", values.get("require", []))
        for condition in cfg.require:
            check_condition(condition)  # a FilterSyntaxError points at the column
        if "baseline" in values:
            baseline = values["baseline"]
            if not isinstance(baseline, str) or not baseline.strip():
                raise ConfigError(file, t + "baseline", 'give a run reference, e.g. "churn#prod"')
            cfg.baseline = baseline.strip()
        if "experiment" in values:
            cfg.experiment = _str_list(file, t + "experiment", values["experiment"])
        if "missing" in values:
            cfg.missing = _choice(file, t + "missing", values["missing"], ("fail", "warn"))
        return cfg


def load_gate_config(root: str, path: str | None = None) -> tuple[GateConfig, bool]:
    """The `[tool.gitxp.gate]` of the project at *root*, and whether the table exists."""
    file, values = load_table(root, "gate", path)
    return GateConfig.from_mapping(values, file), bool(values)
