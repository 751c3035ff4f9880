"""Shared helpers for the compiler tests: compile, score both ways, compare.

The comparison is the build's own (``bundler.parity``), one oracle for both: labels
identical; probabilities, regression values and extras within 1e-9 absolute (or 1e-12
relative where scikit-learn's value is above 1e3); NaN on both sides is equal, NaN on
one side only a mismatch; an infinity equals only the same infinity.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bundler import parity
from bundler.compiler import CompiledPlan, compile_estimators
from mlbundle_runtime.backend import load_kernels
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.plan import Plan, load_plan
from mlbundle_runtime.scorer import Scorer, Scores

TOL = parity.TOLERANCE


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


#: scikit-learn's predictions and (for classifiers) probabilities, as the build computes them.
sklearn_predict = parity.sklearn_scores


def compare(ours: Scores, labels: np.ndarray, proba: Any, context: str = "") -> None:
    """Fail with the first disagreeing rows unless ``ours`` matches scikit-learn.

    The rule is the build's own (:func:`bundler.parity.compare`), so a test passes
    exactly when the build's parity check would.
    """
    report = parity.compare(ours, labels, proba)
    assert not report.problems, (
        f"{context}: the plan disagrees with scikit-learn "
        f"({report.label_mismatches} label(s) differ):\n  " + "\n  ".join(report.problems)
    )


def parity_problems(model: Any, extractor: Any | None, X: Any, scorer: Scorer) -> tuple[str, ...]:
    """What the build's parity check says of ``scorer`` on the rows of ``X``: every output
    the app writes (labels or values, probabilities, extras) against scikit-learn's.
    Empty when they agree."""
    ours = scorer.score_records(to_records(scorer, X))
    Xt = extractor.transform(X) if extractor is not None else X
    return parity.compare_with_model(ours, model, Xt).problems


def mutated(
    compiled: CompiledPlan,
    kernel: str,
    arg: int,
    change: Callable[[Any], Any],
    *,
    last: bool = False,
) -> CompiledPlan:
    """A copy of ``compiled`` with argument ``arg`` of every ``kernel`` op (only the last
    one if ``last``) changed: an array is changed on a copy, a number is replaced by
    ``change(number)``."""
    header = copy.deepcopy(compiled.header)
    arrays = dict(compiled.arrays)
    ops = [op for op in header["ops"] if op["kernel"] == kernel]
    assert ops, f"no {kernel} op in the plan"
    ops = ops[-1:] if last else ops
    for op in ops:
        value = op["args"][arg]
        if isinstance(value, dict):
            arrays[value["array"]] = np.asarray(change(arrays[value["array"]].copy()))
        else:
            op["args"][arg] = change(value)
    return CompiledPlan(header, arrays)


def replace(expected: Any, new: Any) -> Callable[[Any], Any]:
    """A change for :func:`mutated`: the argument must be ``expected``; it becomes ``new``."""

    def change(value: Any) -> Any:
        assert value == expected, f"the argument is {value!r}, not {expected!r}"
        return new

    return change


def assert_probes_catch(
    model: Any, probes: Any, right: Scorer, wrong: CompiledPlan, context: str = ""
) -> tuple[str, ...]:
    """The real plan passes the build's parity check on ``probes``; ``wrong`` (a plan
    with the mistake the probes guard against) is flagged on them. Returns its problems."""
    assert parity_problems(model, None, probes, right) == (), context
    flagged = parity_problems(model, None, probes, Scorer(written_plan(wrong), kernels()))
    assert flagged, f"{context}: the probes do not catch the wrong plan"
    return flagged


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
