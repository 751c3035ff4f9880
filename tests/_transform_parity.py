"""Helpers for the preprocessing converter tests: transformed features, bit for bit.

``tests._parity`` compares what the plan predicts. These helpers look one
step earlier: they run the plan's ops and read the workspace columns the final
model reads, and compare them with scikit-learn's ``transform`` output exactly
(same float64 bits; NaN equals NaN). A converter that computes ``x * (1 / s)``
where scikit-learn computes ``x / s`` passes a 1e-9 tolerance but fails here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from mlbundle_runtime.scorer import Scorer
from tests._parity import f32_neighbours, kernels, to_records, tree_thresholds

#: Kernels a final model reads its features with (the last one in a plan is the model).
MODEL_KERNELS = ("linear", "tree_sum")


def run_ops(scorer: Scorer, X: Any, kernel_set: Any = None) -> np.ndarray:
    """The workspace after every op of the plan, for the rows of ``X`` (JIT kernels unless
    ``kernel_set`` is given)."""
    plan = scorer.plan
    ws = np.empty((len(X), plan.width))
    scorer.encoder.fill_records(ws, to_records(scorer, X))
    k = kernel_set if kernel_set is not None else kernels()
    for op in plan.ops:
        status = getattr(k, op.kernel)(ws, *op.args)
        if status is not None and status >= 0:
            raise AssertionError(f"{op.kernel} ({op.origin}) refused cell {status}")
    return ws


def model_columns(scorer: Scorer) -> list[int]:
    """The workspace columns the final model reads (its transformed features)."""
    for op in reversed(scorer.plan.ops):
        if op.kernel in MODEL_KERNELS:
            return [int(c) for c in op.args[0]]
    raise AssertionError("no model op in the plan")


def dense(X: Any) -> np.ndarray:
    if sparse.issparse(X):
        X = X.toarray()
    if isinstance(X, pd.DataFrame):
        X = X.to_numpy()
    return np.asarray(X, dtype=np.float64)


def bits_differ(ours: np.ndarray, theirs: np.ndarray, signed_zeros: bool = True) -> np.ndarray:
    """Cells where the float64 values differ (NaN equals NaN; -0.0 vs 0.0 counts if asked)."""
    both_nan = np.isnan(ours) & np.isnan(theirs)
    same = ours == theirs
    if signed_zeros:
        same &= np.signbit(ours) == np.signbit(theirs)
    return ~(same | both_nan)


def assert_features_identical(
    pipeline: Any,
    X: Any,
    scorer: Scorer,
    *,
    signed_zeros: bool = True,
    context: str = "",
) -> np.ndarray:
    """``pipeline[:-1].transform(X)`` equals the plan's model inputs bit for bit."""
    theirs = dense(pipeline[:-1].transform(X))
    ours = run_ops(scorer, X)[:, model_columns(scorer)]
    assert ours.shape == theirs.shape, (context, ours.shape, theirs.shape)
    bad = np.argwhere(bits_differ(ours, theirs, signed_zeros))
    assert bad.size == 0, (
        f"{context}: {len(bad)} transformed value(s) differ, e.g. row {bad[0][0]} column "
        f"{bad[0][1]}: {ours[tuple(bad[0])]!r} vs scikit-learn {theirs[tuple(bad[0])]!r}"
    )
    return ours


def ulp_steps(x: float, steps: int = 2) -> list[float]:
    """``x`` and its float64 neighbours up to ``steps`` ulps either side."""
    out = [x]
    lo = hi = x
    for _ in range(steps):
        lo = float(np.nextafter(lo, -np.inf))
        hi = float(np.nextafter(hi, np.inf))
        out += [lo, hi]
    return out


def inverse_probes(
    tree: Any,
    base: np.ndarray,
    inverse: Callable[[int, float], float],
    features: Sequence[int] | None = None,
    limit: int = 60,
) -> np.ndarray:
    """Rows whose transformed feature lands at, and around, the tree's float32 split points.

    For a split (f, t) of ``tree`` (in transformed space), ``inverse(f, v)`` maps
    a transformed value back to input f; every target v (t and its float32
    neighbours) gives the input ``inverse(f, v)`` and its float64 neighbours, so
    the transformed value falls on either side of float32 rounding boundaries.
    ``features`` maps transformed columns to input columns (identity by default).
    """
    splits = tree_thresholds(tree)
    if len(splits) > limit:
        pick = np.linspace(0, len(splits) - 1, limit).round().astype(int)
        splits = [splits[i] for i in pick]
    rows = []
    for k, (f, thr) in enumerate(splits):
        j = f if features is None else features[f]
        for target in (thr, *f32_neighbours(np.array([thr]))):
            x0 = inverse(f, float(target))
            if not np.isfinite(x0):
                continue
            for x in ulp_steps(x0):
                row = np.array(base[k % len(base)], dtype=np.float64)
                row[j] = x
                rows.append(row)
    return np.array(rows)
