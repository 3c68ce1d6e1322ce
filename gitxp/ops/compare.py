"""Comparing runs: `gitxp.diff(a, b)` for two runs in depth, `gitxp.compare(...)` for many side by side.

A diff covers everything that can explain a difference in results:
params (added, removed, changed), metrics (last, min, max with absolute and
relative change), environment (Python, platform, package versions,
recorded variables), code (the files changed between the two code
commits, and the unified diff on request), tags and notes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidValueError, UsageError
from ._repoarg import RepoArg, opened

_MISSING = object()


def _change(old: float | None, new: float | None) -> dict[str, float | None]:
    """Absolute and relative change from *old* to *new* (None where undefined)."""
    if old is None or new is None or math.isnan(old) or math.isnan(new):
        return {"abs": None, "rel": None}
    if math.isinf(old) or math.isinf(new):
        return {"abs": None if old == new else new - old, "rel": None}
    delta = new - old
    rel = None if old == 0 else delta / abs(old)
    return {"abs": delta, "rel": rel}


def _dict_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    return {
        "added": {k: b[k] for k in b if k not in a},
        "removed": {k: a[k] for k in a if k not in b},
        "changed": {k: [a[k], b[k]] for k in a if k in b and a[k] != b[k]},
    }


def _env_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pa = (a.get("python") or {}).get("version")
    pb = (b.get("python") or {}).get("version")
    if pa != pb:
        out["python"] = [pa, pb]
    plat_a = (a.get("platform") or {}).get("platform")
    plat_b = (b.get("platform") or {}).get("platform")
    if plat_a != plat_b:
        out["platform"] = [plat_a, plat_b]
    packages = _dict_diff(a.get("packages") or {}, b.get("packages") or {})
    if any(packages.values()):
        out["packages"] = packages
    variables = _dict_diff(a.get("variables") or {}, b.get("variables") or {})
    if any(variables.values()):
        out["variables"] = variables
    gpus_a = [g.get("name") for g in a.get("gpus") or []]
    gpus_b = [g.get("name") for g in b.get("gpus") or []]
    if gpus_a != gpus_b:
        out["gpus"] = [gpus_a, gpus_b]
    return out


@dataclass
class RunDiff:
    """The differences between run *a* and run *b* (what `gitxp diff` prints)."""

    a: dict[str, Any]
    b: dict[str, Any]
    params: dict[str, Any]
    metrics: list[dict[str, Any]]
    env: dict[str, Any]
    code: dict[str, Any]
    tags: dict[str, Any]
    notes: dict[str, str] | None = None

    @property
    def changed_params(self) -> list[str]:
        p = self.params
        return sorted([*p["added"], *p["removed"], *p["changed"]])

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "params": self.params,
            "metrics": self.metrics,
            "env": self.env,
            "code": self.code,
            "tags": self.tags,
            "notes": self.notes,
        }


def _describe(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "experiment": record.experiment,
        "status": record.status,
        "code_commit": record.code_commit,
        "dirty": bool(record.meta.get("dirty")),
    }


def _metric_rows(a: Any, b: Any) -> list[dict[str, Any]]:
    sa, sb = a.summary, b.summary
    rows = []
    for key in sorted(set(sa) | set(sb)):
        ma, mb = sa.get(key) or {}, sb.get(key) or {}
        row: dict[str, Any] = {"key": key}
        for stat in ("last", "min", "max"):
            va, vb = ma.get(stat), mb.get(stat)
            row[stat] = {"a": va, "b": vb, **_change(va, vb)}
        row["only_in"] = "a" if key not in sb else ("b" if key not in sa else None)
        rows.append(row)
    return rows


def diff(run_a: str, run_b: str, *, code: bool = False, repo: RepoArg = ".") -> RunDiff:
    """Everything that differs between two runs (by id, id prefix or name).

    With *code* the result's `code["patch"]` holds the unified diff of the
    two code commits.

        d = gitxp.diff("calm-heron-7", "swift-otter-42")
        d.params["changed"], d.metrics, d.code["files"]
    """
    from ..git.treediff import changed_files, unified_diff

    with opened(repo) as r:
        a, b = r.run(run_a), r.run(run_b)
        ca, cb = a.code_commit, b.code_commit
        have = all(c is None or r.git.has_object(c) for c in (ca, cb))
        code_info: dict[str, Any] = {"a": ca, "b": cb, "same": ca == cb, "files": []}
        if have:
            code_info["files"] = [
                {"path": f.path, "change": f.status} for f in changed_files(r.git, ca, cb)
            ]
            if code:
                code_info["patch"] = unified_diff(r.git, ca, cb)
        else:
            code_info["missing"] = True
        notes = None
        if a.notes != b.notes:
            notes = {"a": a.notes, "b": b.notes}
        return RunDiff(
            a=_describe(a),
            b=_describe(b),
            params=_dict_diff(a.params, b.params),
            metrics=_metric_rows(a, b),
            env=_env_diff(a.env, b.env),
            code=code_info,
            tags=_dict_diff(a.tags, b.tags),
            notes=notes,
        )


@dataclass
class Comparison:
    """Runs side by side: one column per run, one row per field (what `gitxp compare` prints)."""

    runs: list[dict[str, Any]]
    rows: list[tuple[str, list[Any]]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "fields": {name: values for name, values in self.rows}}


def compare(
    runs: Sequence[str],
    *,
    only_changed: bool = True,
    sort_by: str | None = None,
    repo: RepoArg = ".",
) -> Comparison:
    """Put runs side by side: status, params, last metric values, tags, code commit.

    *only_changed* (default) keeps only fields whose values differ.
    *sort_by* orders the runs by a field, e.g. ``"metrics.acc DESC"``.
    """
    if isinstance(runs, str) or not isinstance(runs, (list, tuple)):
        raise InvalidValueError("runs", f"{runs!r}: give a list of at least two runs to compare")
    if len(runs) < 2:
        raise UsageError("compare needs at least two runs")
    with opened(repo) as r:
        records = [r.run(name) for name in runs]
    seen: set[str] = set()
    unique = []
    for rec in records:
        if rec.id not in seen:
            seen.add(rec.id)
            unique.append(rec)
    records = unique
    if sort_by:
        records = _sorted(records, sort_by)
    fields: dict[str, list[Any]] = {
        "status": [rec.status for rec in records],
        "experiment": [rec.experiment for rec in records],
        "code_commit": [(rec.code_commit or "")[:12] or None for rec in records],
    }
    for kind in ("params", "metrics", "tags"):
        values = [_values(rec, kind) for rec in records]
        keys: dict[str, None] = {}
        for v in values:
            keys.update(dict.fromkeys(v))
        for key in sorted(keys):
            fields[f"{kind}.{key}"] = [v.get(key) for v in values]
    rows = []
    for name, values in fields.items():
        if only_changed and not _differ(values):
            continue
        rows.append((name, values))
    return Comparison(runs=[_describe(rec) for rec in records], rows=rows)


def _values(rec: Any, kind: str) -> dict[str, Any]:
    """A run's params, last metric values or tags."""
    if kind == "metrics":
        return dict(rec.last_metrics)
    return dict(rec.params if kind == "params" else rec.tags)


def _differ(values: list[Any]) -> bool:
    first = values[0]
    for v in values[1:]:
        both_nan = (
            isinstance(v, float)
            and isinstance(first, float)
            and math.isnan(v)
            and math.isnan(first)
        )
        if v != first and not both_nan:
            return True
    return False


def _sorted(records: list[Any], sort_by: str) -> list[Any]:
    parts = sort_by.split()
    key = parts[0]
    descending = len(parts) > 1 and parts[1].upper() == "DESC"
    if len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
        raise UsageError(f"--sort {sort_by!r}: use FIELD [ASC|DESC], e.g. 'metrics.acc DESC'")
    kind, _, name = key.partition(".")
    if kind not in ("metrics", "params", "tags") or not name:
        raise UsageError(f"--sort {key!r}: sort by metrics.KEY, params.KEY or tags.KEY")

    def value(rec: Any) -> Any:
        return _values(rec, kind).get(name)

    present = [rec for rec in records if _sortable(value(rec))]
    absent = [rec for rec in records if not _sortable(value(rec))]
    try:
        present.sort(key=value, reverse=descending)
    except TypeError:
        present.sort(key=lambda rec: str(value(rec)), reverse=descending)
    return present + absent  # runs without the field go last either way


def _sortable(v: Any) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))
