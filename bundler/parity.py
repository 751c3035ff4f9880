"""Parity: score the same rows with scikit-learn and with the compiled plan, and compare.

The compiled plan is only worth shipping if it predicts what the validated
model predicts. This runs both on CSV rows (the gate's data during a build,
any file with ``bundle score --check``) and reports the largest difference.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.inputs import MISSING_TEXT
from app.scorer import Scorer, Scores
from bundler.errors import ParityError

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


def read_rows(path: Path, names: Sequence[str]) -> list[list[str]]:
    """The input cells of a CSV, in the plan's input order."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader)]
        index = [header.index(n) for n in names]
        return [[row[i] for i in index] for row in reader if row]


def sklearn_frame(
    rows: list[list[str]], names: Sequence[str], kinds: Sequence[str], named: bool
) -> Any:
    """The rows as scikit-learn saw them in training: a DataFrame when fitted on one."""
    columns: list[np.ndarray] = []
    for j, kind in enumerate(kinds):
        cells = [r[j].strip() for r in rows]
        if kind == "categorical":
            columns.append(
                np.array([np.nan if c in MISSING_TEXT else c for c in cells], dtype=object)
            )
        else:
            columns.append(np.array([math.nan if c in MISSING_TEXT else float(c) for c in cells]))
    if named:
        import pandas as pd

        return pd.DataFrame({n: c for n, c in zip(names, columns, strict=True)}, columns=names)
    dtype = object if "categorical" in kinds else np.float64
    return np.column_stack(columns).astype(dtype) if columns else np.empty((0, 0))


def sklearn_scores(
    model: Any, extractor: Any | None, X: Any
) -> tuple[np.ndarray, np.ndarray | None]:
    """scikit-learn's own predictions (labels or values) and probabilities."""
    Xt = extractor.transform(X) if extractor is not None else X
    labels = np.asarray(model.predict(Xt))
    proba = model.predict_proba(Xt) if hasattr(model, "predict_proba") else None
    return labels, proba


def compare(
    ours: Scores, labels: np.ndarray, proba: np.ndarray | None, first_row: int = 0
) -> ParityReport:
    """Compare our scores with scikit-learn's, listing the first disagreements."""
    problems: list[str] = []
    worst = 0.0
    mismatches = 0
    if ours.task == "regression":
        assert ours.values is not None
        diff = np.abs(ours.values - labels.astype(np.float64))
        diff = np.where(np.isnan(ours.values) & np.isnan(labels.astype(np.float64)), 0.0, diff)
        worst = float(np.nanmax(diff)) if diff.size else 0.0
        for r in np.flatnonzero(~(diff <= TOLERANCE))[:10]:
            problems.append(
                f"row {first_row + r}: value {ours.values[r]!r}, scikit-learn {labels[r]!r}"
            )
    else:
        got = ours.labels()
        for r, (a, b) in enumerate(zip(got, labels.tolist(), strict=True)):
            if a != b:
                mismatches += 1
                if len(problems) < 10:
                    problems.append(f"row {first_row + r}: label {a!r}, scikit-learn {b!r}")
        if proba is not None and ours.proba is not None:
            diff = np.abs(ours.proba - proba)
            worst = float(diff.max()) if diff.size else 0.0
            for r in np.flatnonzero((diff > TOLERANCE).any(axis=1))[:10]:
                problems.append(
                    f"row {first_row + r}: probabilities {ours.proba[r].tolist()}, "
                    f"scikit-learn {proba[r].tolist()}"
                )
    return ParityReport(
        rows=len(ours), max_abs_diff=worst, label_mismatches=mismatches, problems=tuple(problems)
    )


def check_parity(
    scorer: Scorer, model: Any, extractor: Any | None, files: Sequence[Path]
) -> ParityReport:
    """Score ``files`` both ways; raise ParityError on any disagreement."""
    plan = scorer.plan
    names = plan.input_names
    kinds = [i.kind for i in plan.inputs]
    first = extractor if extractor is not None else model
    named = getattr(first, "feature_names_in_", None) is not None
    reports = []
    for path in files:
        rows = read_rows(path, names)
        if not rows:
            continue
        X = sklearn_frame(rows, names, kinds, named)
        Xt = extractor.transform(X) if extractor is not None else X  # once, for every method
        labels, proba = sklearn_scores(model, None, Xt)
        ours = scorer.score_records(
            [{n: _cell(r[j], kinds[j]) for j, n in enumerate(names)} for r in rows]
        )
        report = _compare_extras(compare(ours, labels, proba), ours, model, Xt)
        if not report.passed:
            raise ParityError(
                f"the compiled plan disagrees with scikit-learn on {path}:\n  "
                + "\n  ".join(report.problems)
            )
        reports.append(report)
    return ParityReport(
        rows=sum(r.rows for r in reports),
        max_abs_diff=max((r.max_abs_diff for r in reports), default=0.0),
        label_mismatches=0,
    )


def _compare_extras(report: ParityReport, ours: Scores, model: Any, Xt: Any) -> ParityReport:
    """Also compare decision_function / score_samples, which the app outputs too."""
    problems = list(report.problems)
    worst = report.max_abs_diff
    for extra, values in ours.extras:
        theirs = np.asarray(getattr(model, extra.name)(Xt), dtype=np.float64)
        theirs = theirs.reshape(values.shape)
        # 1e-9 absolute; at magnitudes where that is below one ulp of BLAS rounding,
        # a relative 1e-12 (documented in the README)
        diff = np.abs(values - theirs)
        both_nan = np.isnan(values) & np.isnan(theirs)
        bad = ~both_nan & ~(diff <= np.maximum(TOLERANCE, 1e-12 * np.abs(theirs)))
        finite = diff[~both_nan & np.isfinite(diff)]
        worst = max(worst, float(finite.max()) if finite.size else 0.0)
        for r in np.flatnonzero(bad.any(axis=1))[:5]:
            problems.append(
                f"row {r}: {extra.name} {values[r].tolist()}, scikit-learn {theirs[r].tolist()}"
            )
    return ParityReport(
        rows=report.rows,
        max_abs_diff=worst,
        label_mismatches=report.label_mismatches,
        problems=tuple(problems),
    )


def _cell(text: str, kind: str) -> Any:
    text = text.strip()
    if text in MISSING_TEXT:
        return None
    return text if kind == "categorical" else float(text)
