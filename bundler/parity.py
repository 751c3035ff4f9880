"""Parity: score the same rows with scikit-learn and with the compiled plan, and compare.

The compiled plan is only worth shipping if it predicts what the validated
model predicts. This runs both on CSV rows (the gate's data during a build,
any file with ``bundle score --check``) and reports the largest difference.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bundler.errors import ParityError
from mlbundle_runtime.gate import GateTable
from mlbundle_runtime.inputs import MISSING_TEXT
from mlbundle_runtime.scorer import MultiScores, Scorer, Scores

#: The exactness bar: labels identical, every number within this absolute tolerance.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class ParityReport:
    """How closely the plan matched scikit-learn, row by row."""

    rows: int
    max_abs_diff: float
    label_mismatches: int
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return self.rows > 0 and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "max_abs_diff": self.max_abs_diff,
            "label_mismatches": self.label_mismatches,
            "tolerance": TOLERANCE,
            "passed": self.passed,
        }


def sklearn_frame(
    columns: Sequence[Sequence[str]], names: Sequence[str], kinds: Sequence[str], named: bool
) -> Any:
    """Input cells (one sequence per input, already accepted by our scorer) as
    scikit-learn saw them in training: a DataFrame when it was fitted on one."""
    arrays: list[np.ndarray] = []
    if not named and list(kinds) == ["text"]:
        return list(columns[0])  # documents as scikit-learn takes them: a 1-d sequence
    for cells, kind in zip(columns, kinds, strict=True):
        stripped = [c.strip() for c in cells]
        if kind == "text":  # a document is its cell as it is, never missing
            arrays.append(np.array(list(cells), dtype=object))
        elif kind == "categorical":
            arrays.append(
                np.array([np.nan if c in MISSING_TEXT else c for c in stripped], dtype=object)
            )
        else:
            arrays.append(np.array([math.nan if c in MISSING_TEXT else float(c) for c in stripped]))
    if named:
        import pandas as pd

        return pd.DataFrame({n: c for n, c in zip(names, arrays, strict=True)}, columns=names)
    dtype = object if "categorical" in kinds or "text" in kinds else np.float64
    return np.column_stack(arrays).astype(dtype) if arrays else np.empty((0, 0))


def sklearn_scores(
    model: Any, extractor: Any | None, X: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    """scikit-learn's own predictions (labels or values) and probabilities."""
    Xt = extractor.transform(X) if extractor is not None else X
    model = reference_model(model)
    labels = np.asarray(model.predict(Xt))
    proba = model.predict_proba(Xt) if hasattr(model, "predict_proba") else None
    return labels, proba


#: At magnitudes where 1e-9 absolute is below one unit of BLAS rounding (|value| above
#: 1e3), a relative bar instead (the documented limit in the README).
RELATIVE_TOLERANCE = 1e-12

#: How many disagreeing rows a report lists.
SHOWN = 10


def disagreeing(ours: Any, theirs: Any) -> np.ndarray:
    """Cells where ``ours`` and ``theirs`` differ under the parity rule (the one oracle).

    Equal: NaN on both sides, the same value (an infinity matches the same infinity), or
    two finite values within ``TOLERANCE`` absolute, or ``RELATIVE_TOLERANCE`` of
    scikit-learn's value where that is larger. Everything else differs: NaN on one side
    only, an infinity against anything but itself, a larger gap.
    """
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        raise ValueError(f"shapes differ: {ours.shape} vs {theirs.shape}")
    with np.errstate(invalid="ignore", over="ignore"):
        bar = np.maximum(TOLERANCE, RELATIVE_TOLERANCE * np.abs(theirs))
        near = np.isfinite(ours) & np.isfinite(theirs) & (np.abs(ours - theirs) <= bar)
    same = (ours == theirs) | (np.isnan(ours) & np.isnan(theirs))
    return ~(same | near)


@dataclass(frozen=True)
class ArrayComparison:
    """Numbers of ours against scikit-learn's, under :func:`disagreeing`."""

    what: str
    bad_rows: np.ndarray  # rows with at least one disagreeing cell
    max_abs_diff: float  # the largest finite difference between finite cells
    problems: tuple[str, ...]


def compare_arrays(
    ours: Any, theirs: Any, *, what: str, first_row: int = 0, shown: int = SHOWN
) -> ArrayComparison:
    """Compare one output (values, probabilities, an extra) row by row.

    ``what`` names the output in the problems (``"probabilities"``, ``"value"``,
    ``"decision_function"``); ``first_row`` numbers the rows in them.
    """
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    if ours.shape != theirs.shape:
        return ArrayComparison(
            what, np.arange(0), math.inf,
            (f"{what}: shape {ours.shape}, scikit-learn {theirs.shape}",),
        )  # fmt: skip
    bad = disagreeing(ours, theirs)
    rows = np.flatnonzero(bad.reshape(len(ours), -1).any(axis=1)) if ours.size else np.arange(0)
    finite = np.isfinite(ours) & np.isfinite(theirs)
    diff = np.abs(ours[finite] - theirs[finite])
    worst = float(diff.max()) if diff.size else 0.0
    problems = tuple(
        f"row {first_row + int(r)}: {what} {_shown(ours[r])}, scikit-learn {_shown(theirs[r])}"
        for r in rows[:shown]
    )
    return ArrayComparison(what, rows, worst, problems)


def _shown(value: np.ndarray) -> Any:
    return value.tolist() if isinstance(value, np.ndarray) else float(value)


def label_mismatches(ours: Sequence[Any], theirs: Sequence[Any]) -> list[int]:
    """Rows whose labels are not identical."""
    return [r for r, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]


def compare(
    ours: Scores | MultiScores, labels: np.ndarray, proba: Any, first_row: int = 0
) -> ParityReport:
    """Compare our scores with scikit-learn's, listing the first disagreements.

    A multi-output model's ``labels`` are ``predict``'s 2-D result (a column per target)
    and ``proba`` its list of arrays, one per target; each target is compared as a
    single-output model would be, and its problems name it."""
    if isinstance(ours, MultiScores):
        return _compare_targets(ours, labels, proba, first_row)
    if len(ours) != len(labels):
        return ParityReport(
            rows=len(ours), max_abs_diff=math.inf, label_mismatches=0,
            problems=(f"{len(ours)} rows scored, scikit-learn scored {len(labels)}",),
        )  # fmt: skip
    problems: list[str] = []
    worst = 0.0
    mismatches = 0
    if ours.task == "regression":
        assert ours.values is not None
        values = compare_arrays(ours.values, labels, what="value", first_row=first_row)
        worst, problems = values.max_abs_diff, list(values.problems)
    else:
        got = ours.labels()
        want = labels.tolist()
        bad = label_mismatches(got, want)
        mismatches = len(bad)
        problems += [
            f"row {first_row + r}: label {got[r]!r}, scikit-learn {want[r]!r}" for r in bad[:SHOWN]
        ]
        if proba is not None and ours.proba is None:
            problems.append("the plan gives no probabilities; scikit-learn does")
        elif proba is not None:
            assert ours.proba is not None
            p = compare_arrays(ours.proba, proba, what="probabilities", first_row=first_row)
            worst = p.max_abs_diff
            problems += p.problems
    return ParityReport(
        rows=len(ours), max_abs_diff=worst, label_mismatches=mismatches, problems=tuple(problems)
    )


def _compare_targets(
    ours: MultiScores, labels: np.ndarray, proba: Any, first_row: int
) -> ParityReport:
    labels = np.asarray(labels)
    k = len(ours.outputs)
    if labels.ndim != 2 or labels.shape[1] != k:
        return ParityReport(
            rows=len(ours), max_abs_diff=math.inf, label_mismatches=0,
            problems=(f"{k} targets scored, scikit-learn predicts shape {labels.shape}",),
        )  # fmt: skip
    if isinstance(proba, np.ndarray) and proba.shape == (len(labels), k):
        # a multilabel classifier: each label's probability of 1; the plan's pair for it
        # is [1 - p, p], computed as scikit-learn's own binary classifiers do
        proba = [np.column_stack([1 - proba[:, j], proba[:, j]]) for j in range(k)]
    if proba is not None and (not isinstance(proba, list) or len(proba) != k):
        return ParityReport(
            rows=len(ours), max_abs_diff=math.inf, label_mismatches=0,
            problems=(f"scikit-learn's probabilities are not one array per target ({k})",),
        )  # fmt: skip
    reports = [
        compare(sub, labels[:, j], None if proba is None else proba[j], first_row)
        for j, sub in enumerate(ours.outputs)
    ]
    return ParityReport(
        rows=len(ours),
        max_abs_diff=max(r.max_abs_diff for r in reports),
        label_mismatches=sum(r.label_mismatches for r in reports),
        problems=tuple(
            f"target {name!r}: {problem}"
            for name, r in zip(ours.names, reports, strict=True)
            for problem in r.problems
        ),
    )


def check_parity(
    scorer: Scorer, model: Any, extractor: Any | None, tables: Sequence[GateTable]
) -> ParityReport:
    """Score the gate's tables both ways; raise ParityError on any disagreement.

    Ours scores first, so a cell it refuses is reported by the scorer's own
    message (file, line, column) before scikit-learn sees the rows.
    """
    plan = scorer.plan
    names = plan.input_names
    kinds = [i.kind for i in plan.inputs]
    first = extractor if extractor is not None else model
    named = getattr(first, "feature_names_in_", None) is not None
    reports = []
    for table in tables:
        for chunk in table.chunks:
            ours = scorer.score_chunk(chunk)
            X = sklearn_frame(chunk.columns, names, kinds, named)
            Xt = extractor.transform(X) if extractor is not None else X  # once, for every method
            report = compare_with_model(ours, model, Xt, chunk.first_row + 1)  # rows from 1
            if not report.passed:
                raise ParityError(
                    f"the compiled plan disagrees with scikit-learn on {table.source}:\n  "
                    + "\n  ".join(report.problems)
                )
            reports.append(report)
    return ParityReport(
        rows=sum(r.rows for r in reports),
        max_abs_diff=max((r.max_abs_diff for r in reports), default=0.0),
        label_mismatches=0,
    )


def compare_with_model(
    ours: Scores | MultiScores, model: Any, Xt: Any, first_row: int = 0
) -> ParityReport:
    """Every output the app writes (labels or values, probabilities, extras) against
    ``model`` on ``Xt`` (the rows after the extractor): what the build checks."""
    labels, proba = sklearn_scores(model, None, Xt)
    return _compare_extras(compare(ours, labels, proba, first_row), ours, model, Xt, first_row)


def _compare_extras(
    report: ParityReport, ours: Scores | MultiScores, model: Any, Xt: Any, first_row: int = 0
) -> ParityReport:
    """Also compare decision_function / score_samples, which the app outputs too."""
    problems = list(report.problems)
    worst = report.max_abs_diff
    model = reference_model(model)
    for extra, values in ours.extras:
        theirs = np.asarray(getattr(model, extra.name)(Xt), dtype=np.float64)
        theirs = theirs.reshape(values.shape)
        result = compare_arrays(values, theirs, what=extra.name, first_row=first_row, shown=5)
        worst = max(worst, result.max_abs_diff)
        problems += result.problems
    return ParityReport(
        rows=report.rows,
        max_abs_diff=worst,
        label_mismatches=report.label_mismatches,
        problems=tuple(problems),
    )


# -- brute-force neighbour searches ---------------------------------------------------

#: Rows of queries whose distances to every training point are computed at once.
_DISTANCE_ROWS = 256


def reference_model(model: Any) -> Any:
    """The model the plan is compared with: ``model`` itself, except a brute-force
    neighbour search (``KNeighbors*`` / ``RadiusNeighbors*`` with ``algorithm="brute"``, or
    what ``"auto"`` chose), alone or ending a Pipeline.

    scikit-learn's brute path computes euclidean distances through BLAS as
    ``||x||^2 - 2x.y + ||y||^2`` (CPU- and BLAS-dependent rounding) and orders and picks
    equally distant neighbours by its parallel strategy, which depends on how many rows are
    scored at once and on the thread count: two runs of scikit-learn itself disagree on
    them. The plan computes exact distances. So the reference is a copy of the model whose
    neighbour search is scikit-learn's exact one: its ``DistanceMetric`` (the distances its
    trees use), the k nearest taken by a stable sort (equally distant neighbours in
    training order: interchangeable, as scikit-learn treats them), or the radius
    neighbours of a ``KDTree`` over the same training points. Everything after the search
    (weights, votes, means, outlier labels, refusals) is scikit-learn's own code.
    """
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and steps and type(model).__name__ == "Pipeline":
        name, last = steps[-1]
        twin = reference_model(last)
        if twin is last:
            return model
        copied = copy.copy(model)
        copied.steps = [*steps[:-1], (name, twin)]
        return copied
    from sklearn.neighbors import (
        KNeighborsClassifier,
        KNeighborsRegressor,
        RadiusNeighborsClassifier,
        RadiusNeighborsRegressor,
    )

    kinds = (KNeighborsClassifier, KNeighborsRegressor)
    radius = (RadiusNeighborsClassifier, RadiusNeighborsRegressor)
    if type(model) not in kinds + radius or getattr(model, "_fit_method", None) != "brute":
        return model
    twin = copy.copy(model)
    # not "brute": scikit-learn's own brute shortcuts (ArgKminClassMode) are skipped, and
    # predict goes through the neighbour search below
    twin._fit_method = "exact"
    if type(model) in kinds:
        twin.kneighbors = functools.partial(_exact_kneighbors, model)
    else:
        twin.radius_neighbors = functools.partial(_exact_radius_neighbors, model)
    return twin


def _validated(est: Any, X: Any) -> np.ndarray:
    from sklearn.utils.validation import validate_data

    return validate_data(est, X, reset=False, order="C", dtype=np.float64)


def _exact_kneighbors(
    est: Any, X: Any = None, n_neighbors: int | None = None, return_distance: bool = True
) -> Any:
    from sklearn.metrics import DistanceMetric

    Xv = _validated(est, X)
    k = int(est.n_neighbors if n_neighbors is None else n_neighbors)
    metric = DistanceMetric.get_metric(
        est.effective_metric_, **(est.effective_metric_params_ or {})
    )
    dist = np.empty((len(Xv), k))
    ind = np.empty((len(Xv), k), dtype=np.intp)
    for lo in range(0, len(Xv), _DISTANCE_ROWS):
        block = metric.pairwise(Xv[lo : lo + _DISTANCE_ROWS], est._fit_X)
        order = np.argsort(block, axis=1, kind="stable")[:, :k]
        ind[lo : lo + len(block)] = order
        dist[lo : lo + len(block)] = np.take_along_axis(block, order, axis=1)
    return (dist, ind) if return_distance else ind


def _exact_radius_neighbors(
    est: Any,
    X: Any = None,
    radius: float | None = None,
    return_distance: bool = True,
    sort_results: bool = False,
) -> Any:
    from sklearn.neighbors import KDTree

    Xv = _validated(est, X)
    tree = KDTree(est._fit_X, metric=est.effective_metric_, **(est.effective_metric_params_ or {}))
    r = est.radius if radius is None else radius
    ind, dist = tree.query_radius(Xv, r, return_distance=True, sort_results=sort_results)
    return (dist, ind) if return_distance else ind
