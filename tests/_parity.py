"""Shared helpers for the compiler tests: compile, score both ways, compare.

The bar is the one the build enforces (``bundler.parity.TOLERANCE``): labels
identical, probabilities and regression values within 1e-9 absolute. NaN on
both sides counts as equal; NaN on one side only is a mismatch.
"""

from __future__ import annotations

import functools
import math
import re
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.backend import load_kernels
from app.inputs import InputError
from app.plan import Plan, load_plan
from app.scorer import Scorer, Scores
from bundler.compiler import CompiledPlan, compile_estimators

TOL = 1e-9


@functools.cache
def kernels() -> Any:
    """The JIT-compiled kernels, compiled once per test session."""
    return load_kernels("jit")


def written_plan(compiled: CompiledPlan) -> Plan:
    """``compiled`` written with ``.write()`` and read back by the runtime's reader."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "plan"
        compiled.write(folder)
        return load_plan(folder)


def compile_scorer(model: Any, extractor: Any | None = None, *, route: str = "disk") -> Scorer:
    """Compile ``model`` (after ``extractor``) and bind the plan to the JIT kernels.

    ``route="disk"`` scores the plan as the shipped app reads it (written, then
    ``load_plan``); ``route="memory"`` uses ``CompiledPlan.load()`` as the build's
    parity check does. The parity tests use the disk route; test_plan_reader checks
    that both routes agree.
    """
    compiled: CompiledPlan = compile_estimators(model, extractor)
    if route == "disk":
        return Scorer(written_plan(compiled), kernels())
    if route == "memory":
        return Scorer(compiled.load(), kernels())
    raise ValueError(route)


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def to_records(scorer: Scorer, X: Any) -> list[dict[str, Any]]:
    """Rows of ``X`` (array or DataFrame, in the plan's input order) as JSON-like records.

    Missing values become ``None``; categorical inputs become ``str``, numeric
    inputs ``float`` (so infinities and huge values reach the scorer unchanged).
    """
    plan = scorer.plan
    rows = X.to_numpy(dtype=object) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=object)
    if rows.ndim != 2 or rows.shape[1] != len(plan.inputs):
        raise AssertionError(f"X has shape {rows.shape}, the plan has {len(plan.inputs)} inputs")
    if isinstance(X, pd.DataFrame):
        assert list(map(str, X.columns)) == list(plan.input_names), (
            list(X.columns),
            plan.input_names,
        )
    out = []
    for row in rows:
        rec: dict[str, Any] = {}
        for spec, value in zip(plan.inputs, row, strict=True):
            if _is_missing(value):
                rec[spec.name] = None
            elif spec.kind == "categorical":
                rec[spec.name] = str(value)
            else:
                rec[spec.name] = float(value)
        out.append(rec)
    return out


def sklearn_predict(model: Any, extractor: Any | None, X: Any) -> tuple[np.ndarray, Any]:
    """scikit-learn's predictions and (for classifiers) probabilities."""
    Xt = extractor.transform(X) if extractor is not None else X
    labels = np.asarray(model.predict(Xt))
    proba = model.predict_proba(Xt) if hasattr(model, "predict_proba") else None
    return labels, proba


def _close(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    both_nan = np.isnan(ours) & np.isnan(theirs)
    same_inf = np.isinf(ours) & (ours == theirs)
    with np.errstate(invalid="ignore"):
        near = np.abs(ours - theirs) <= TOL
    return both_nan | same_inf | near


def compare(ours: Scores, labels: np.ndarray, proba: Any, context: str = "") -> None:
    """Fail with the first disagreeing rows unless ``ours`` matches scikit-learn."""
    assert len(ours) == len(labels), f"{context}: {len(ours)} rows scored, expected {len(labels)}"
    if ours.task == "regression":
        assert ours.values is not None
        ok = _close(ours.values, labels)
        bad = np.flatnonzero(~ok)
        assert bad.size == 0, (
            f"{context}: {bad.size} regression value(s) differ, e.g. row {bad[0]}: "
            f"{ours.values[bad[0]]!r} vs scikit-learn {labels[bad[0]]!r}"
        )
        return
    got = ours.labels()
    want = labels.tolist()
    bad_labels = [r for r, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
    if proba is not None:
        assert ours.proba is not None, f"{context}: the plan gives no probabilities"
        assert ours.proba.shape == proba.shape, (ours.proba.shape, proba.shape)
        ok = _close(ours.proba, proba).all(axis=1)
        bad = np.flatnonzero(~ok)
        assert bad.size == 0, (
            f"{context}: probabilities differ on {bad.size} row(s), e.g. row {bad[0]}: "
            f"{ours.proba[bad[0]].tolist()} vs scikit-learn {proba[bad[0]].tolist()}"
        )
    assert not bad_labels, (
        f"{context}: {len(bad_labels)} label(s) differ, e.g. row {bad_labels[0]}: "
        f"{got[bad_labels[0]]!r} vs scikit-learn {want[bad_labels[0]]!r}"
    )


def assert_parity(
    model: Any,
    extractor: Any | None,
    X: Any,
    records: Sequence[Mapping[str, Any]] | None = None,
    *,
    scorer: Scorer | None = None,
    context: str = "",
) -> Scores:
    """scikit-learn accepts ``X`` and the compiled plan scores it identically.

    ``records`` defaults to ``X`` converted with :func:`to_records`; pass a
    ``scorer`` to reuse one compiled plan across calls.
    """
    scorer = scorer if scorer is not None else compile_scorer(model, extractor)
    labels, proba = sklearn_predict(model, extractor, X)
    recs = records if records is not None else to_records(scorer, X)
    ours = scorer.score_records(recs)
    compare(ours, labels, proba, context)
    return ours


def assert_refused(
    model: Any,
    extractor: Any | None,
    X: Any,
    records: Sequence[Mapping[str, Any]] | None = None,
    *,
    scorer: Scorer | None = None,
    match: str | None = None,
) -> InputError:
    """scikit-learn raises ValueError on ``X`` and the compiled plan raises InputError."""
    scorer = scorer if scorer is not None else compile_scorer(model, extractor)
    with pytest.raises(ValueError):
        sklearn_predict(model, extractor, X)
    recs = records if records is not None else to_records(scorer, X)
    return _expect_input_error(scorer, recs, match)


def _expect_input_error(
    scorer: Scorer, records: Sequence[Mapping[str, Any]], match: str | None = None
) -> InputError:
    try:
        ours = scorer.score_records(records)
    except InputError as exc:
        if match is not None:
            assert re.search(match, str(exc)), f"{str(exc)!r} does not match {match!r}"
        return exc
    shown = ours.labels()[:5]
    raise AssertionError(
        f"scikit-learn refuses these rows (ValueError) but the plan scored them: {shown}"
    )


def assert_same_outcome(
    model: Any, extractor: Any | None, X: Any, *, scorer: Scorer | None = None, context: str = ""
) -> bool:
    """Either both refuse (ValueError / InputError) or both score identically.

    Returns True when both accepted the rows.
    """
    scorer = scorer if scorer is not None else compile_scorer(model, extractor)
    try:
        labels, proba = sklearn_predict(model, extractor, X)
    except ValueError:
        _expect_input_error(scorer, to_records(scorer, X))
        return False
    try:
        ours = scorer.score_records(to_records(scorer, X))
    except InputError as exc:
        raise AssertionError(
            f"{context}: the plan refused rows scikit-learn accepts: {exc}"
        ) from None
    compare(ours, labels, proba, context)
    return True


# -- inputs around tree thresholds ---------------------------------------------------


def f32_neighbours(values: np.ndarray) -> np.ndarray:
    """Each float64 value rounded to float32, and one float32 step either side (as float64)."""
    v32 = np.asarray(values, dtype=np.float64).astype(np.float32)
    down = np.nextafter(v32, np.float32(-np.inf))
    up = np.nextafter(v32, np.float32(np.inf))
    return np.unique(np.concatenate([v32, down, up]).astype(np.float64))


def tree_thresholds(est: Any) -> list[tuple[int, float]]:
    """(feature, threshold) of every split of a tree or forest, finite thresholds only."""
    trees = getattr(est, "estimators_", None) or [est]
    out = set()
    for tree in trees:
        t = tree.tree_
        for node in np.flatnonzero(t.children_left >= 0):
            thr = float(t.threshold[node])
            if math.isfinite(thr):
                out.add((int(t.feature[node]), thr))
    return sorted(out)


def threshold_probes(est: Any, base: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Rows of ``base`` (cycled) with one feature set at, just below and just above a split.

    For every split (feature f, threshold t), three rows: f = t (float64, as
    stored), and the float32 neighbours of t either side. ``limit`` caps the
    number of splits used (evenly spaced), to keep big forests fast.
    """
    splits = tree_thresholds(est)
    if limit is not None and len(splits) > limit:
        pick = np.linspace(0, len(splits) - 1, limit).round().astype(int)
        splits = [splits[i] for i in pick]
    rows = []
    for k, (f, thr) in enumerate(splits):
        for value in (thr, *f32_neighbours(np.array([thr]))):
            row = np.array(base[k % len(base)], dtype=np.float64)
            row[f] = value
            rows.append(row)
    return np.array(rows)
