"""The LightGBM and XGBoost tests' shared check: the library's own outputs, bit for bit."""

from __future__ import annotations

from typing import Any

import numpy as np

from mlbundle_runtime.scorer import Scorer
from tests._parity import to_records
from tests.test_sklearn_trees_converter import assert_full_parity


def case_id(case: tuple[str, bool]) -> str:
    """``kind-nan`` or ``kind-complete``: a (model kind, trained with NaN) case's test id."""
    return f"{case[0]}-{'nan' if case[1] else 'complete'}"


def positive(y: np.ndarray) -> np.ndarray:
    """A target made positive (for the log-link objectives): ``exp`` of its standard score."""
    return np.exp((y - y.mean()) / y.std())


def assert_bit_exact(
    est: Any, X: np.ndarray, scorer: Scorer, context: str = "", decision: Any = None
) -> None:
    """``predict`` (and ``predict_proba``) equal to the bit, then the build's parity check.

    ``decision``: the raw scores the plan's ``decision_function`` extra must equal, for
    a model that has one (one column per class, or one when binary).
    """
    ours = scorer.score_records(to_records(scorer, X))
    if hasattr(est, "classes_"):
        assert np.array_equal(ours.proba, est.predict_proba(X)), context
        assert list(ours.labels()) == list(est.predict(X)), context
    else:
        assert np.array_equal(ours.values, est.predict(X)), context
    if decision is None:
        assert_full_parity(est, X, scorer, context=context)
        return
    raw = np.asarray(decision, dtype=np.float64).reshape(len(X), -1)
    extras = {extra.name: values for extra, values in ours.extras}
    assert np.array_equal(extras["decision_function"], raw), context
    labels = () if raw.shape[1] == 1 else tuple(map(str, est.classes_))
    names = ("decision_function",)
    assert_full_parity(est, X, scorer, names, {"decision_function": labels}, context)
