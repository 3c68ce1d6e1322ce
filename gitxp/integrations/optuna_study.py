"""The Optuna side of `gitxp sweep --optuna`: the study, its storage, sampler and search space.

The study lives in Optuna's own storage, so that several `gitxp sweep
--optuna` processes (on one machine or many) can share it: by default a
journal file under `.git/gitxp/optuna/<study>.log` (Optuna's
`JournalFileBackend`, safe for processes on one machine and for a
network file system), or any storage URL Optuna takes (``sqlite:///...``,
``postgresql://...``, ``mysql://...``), or a journal file at a given path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ..errors import GitxpError, InvalidValueError, MissingExtraError, UsageError
from .optuna import optuna_module

SAMPLERS = ("tpe", "cmaes", "random")
_STUDY_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def distribution(kind: str, low: Any = None, high: Any = None, **extra: Any) -> Any:
    """The Optuna distribution of one param: *kind* "float", "int" or "choice"."""
    dists = optuna_module().distributions
    try:
        if kind == "float":
            return dists.FloatDistribution(low, high, log=bool(extra.get("log")))
        if kind == "int":
            log = bool(extra.get("log"))
            step = int(extra.get("step") or 1)
            return dists.IntDistribution(low, high, log=log, step=step)
        return dists.CategoricalDistribution(tuple(extra["choices"]))
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad search space: {exc}") from None


def default_storage_path(git_dir_gitxp: str, study: str) -> str:
    """Where the study's journal file goes by default: `<gitxp dir>/optuna/<study>.log`."""
    if not _STUDY_FILE_NAME.fullmatch(study) or ".." in study:
        raise UsageError(
            f"--study {study!r}: with the default storage the name must be letters, digits, "
            "'.', '_' or '-' (it names a file); give --storage for other names"
        )
    return os.path.join(git_dir_gitxp, "optuna", f"{study}.log")


def storage(spec: str | None, default_path: str) -> Any:
    """Optuna's storage for *spec*: a URL (``sqlite:///x.db``) as is, else a journal file path."""
    optuna = optuna_module()
    if spec is not None and "://" in spec:
        return spec
    path = os.path.abspath(spec or default_path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(path)
    return optuna.storages.JournalStorage(backend)


def sampler(name: str, seed: int | None) -> Any:
    """The sampler called *name* ("tpe", "cmaes" or "random"), seeded with *seed*."""
    samplers = optuna_module().samplers
    if name == "tpe":
        return samplers.TPESampler(seed=seed)
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError:
            raise MissingExtraError(
                "--sampler cmaes", "cmaes", "optuna", "install it with `pip install cmaes`"
            ) from None
        return samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    raise UsageError(f"--sampler {name!r}: use one of {', '.join(SAMPLERS)}")


def open_study(name: str, where: Any, sampler_obj: Any, goal: str) -> Any:
    """The study *name* in storage *where*, created if new; its direction must be *goal*."""
    optuna = optuna_module()
    direction = "maximize" if goal == "max" else "minimize"
    try:
        study = optuna.create_study(
            study_name=name,
            storage=where,
            sampler=sampler_obj,
            direction=direction,
            load_if_exists=True,
        )
    except (ValueError, ImportError, optuna.exceptions.OptunaError) as exc:
        raise GitxpError(f"cannot open Optuna study {name!r}: {exc}") from None
    except Exception as exc:  # a storage URL Optuna cannot reach (SQLAlchemy's own errors)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GitxpError(f"cannot open Optuna study {name!r}: {first}") from None
    if len(study.directions) != 1:
        raise InvalidValueError(
            f"study {name!r}", "it has several objectives; gitxp sweep optimises one --metric"
        )
    if study.direction.name.lower() != direction:
        want = "max" if study.direction.name == "MAXIMIZE" else "min"
        raise UsageError(
            f"study {name!r} already exists and is to {study.direction.name.lower()}; "
            f"run with --goal {want} (or use another --study)"
        )
    return study


def check_space(study: Any, dists: Mapping[str, Any]) -> None:
    """Raise unless *dists* can be sampled in *study* (a param keeps its kind and choices)."""
    from optuna.distributions import check_distribution_compatibility

    seen: dict[str, Any] = {}
    for trial in study.get_trials(deepcopy=False):
        seen.update(trial.distributions)
    for key, new in dists.items():
        old = seen.get(key)
        if old is None:
            continue
        try:
            check_distribution_compatibility(old, new)
        except ValueError:
            raise UsageError(
                f"-p {key}: study {study.study_name!r} samples it as {old}; "
                "keep the study's search space for this param, or use another --study"
            ) from None


def trial_state(name: str) -> Any:
    """Optuna's `TrialState` member called *name* (COMPLETE, FAIL...)."""
    return getattr(optuna_module().trial.TrialState, name)


def space_tags(dists: Mapping[str, Any]) -> dict[str, str]:
    """The ``optuna.distribution.<param>`` tags of a search space (Optuna's JSON)."""
    from optuna.distributions import distribution_to_json

    from ._frameworks import safe_key

    return {safe_key(f"optuna.distribution.{k}"): distribution_to_json(d) for k, d in dists.items()}
