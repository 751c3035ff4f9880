"""mlbundle_runtime.metrics must give scikit-learn's numbers (to 1e-12) without importing it.

The frozen app measures the gate with ``mlbundle_runtime.metrics``; a user checking the
result with ``sklearn.metrics`` must get the same value, so every metric is
compared with its scikit-learn counterpart on random cases, including the
corner cases (absent classes, tied scores, a single class, constant targets).
"""

from __future__ import annotations

import ast
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from mlbundle_runtime import metrics

TOL = 1e-12
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

STRING_CLASSES = ["Adelie", "Chinstrap", "Gentoo", "bird", "zebra"]


def close(ours: float, theirs: float) -> bool:
    """Equal to 1e-12 (relative for large values); nan equals nan."""
    if math.isnan(theirs) or math.isnan(ours):
        return math.isnan(theirs) and math.isnan(ours)
    return abs(ours - theirs) <= TOL * max(1.0, abs(theirs))


def sk(fn, *args, **kwargs) -> float:
    """Call scikit-learn with its UndefinedMetricWarning / recall warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(fn(*args, **kwargs))


# --------------------------------------------------------------------------- strategies


@st.composite
def class_sets(draw: st.DrawFn) -> np.ndarray:
    """2-5 sorted classes, as strings, ints or an object array of strings (like classes_)."""
    n = draw(st.integers(2, 5))
    kind = draw(st.sampled_from(["str", "int", "object"]))
    if kind == "int":
        values = sorted(draw(st.lists(st.integers(-3, 9), min_size=n, max_size=n, unique=True)))
        return np.asarray(values)
    names = sorted(draw(st.permutations(STRING_CLASSES))[:n])
    return np.asarray(names, dtype=object if kind == "object" else str)


@st.composite
def label_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes, y_true, y_pred) where y_true and y_pred may each miss some classes."""
    classes = draw(class_sets())
    k = classes.shape[0]
    n = draw(st.integers(1, 60))
    true_pool = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    pred_pool = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    t = draw(st.lists(st.sampled_from(true_pool), min_size=n, max_size=n))
    # Often agree with the truth, so scores are not all near chance.
    agree = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    p = [
        ti if a and ti in pred_pool else draw(st.sampled_from(pred_pool))
        for ti, a in zip(t, agree, strict=True)
    ]
    return classes, classes[np.asarray(t)], classes[np.asarray(p)]


@st.composite
def proba_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes, y_true, proba) with rows drawn from a small pool, so scores tie often."""
    classes = draw(class_sets())
    k = classes.shape[0]
    n = draw(st.integers(1, 60))
    true_pool = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
    t = draw(st.lists(st.sampled_from(true_pool), min_size=n, max_size=n))
    n_rows = draw(st.integers(1, 6))
    pool = np.asarray(
        draw(
            st.lists(
                st.lists(st.integers(0, 4), min_size=k, max_size=k).filter(any),
                min_size=n_rows,
                max_size=n_rows,
            )
        ),
        dtype=np.float64,
    )
    pool /= pool.sum(axis=1, keepdims=True)
    rows = draw(st.lists(st.integers(0, n_rows - 1), min_size=n, max_size=n))
    return classes, classes[np.asarray(t)], pool[np.asarray(rows)]


@st.composite
def regression_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 50))
    values = st.one_of(st.floats(-1e3, 1e3, allow_nan=False), st.integers(-5, 5).map(float))
    t = np.asarray(draw(st.lists(values, min_size=n, max_size=n)))
    if draw(st.booleans()):
        t[:] = t[0]  # constant target: r2's special cases
    if draw(st.booleans()):
        p = t.copy()  # perfect prediction
    else:
        p = np.asarray(draw(st.lists(values, min_size=n, max_size=n)))
    return t, p


# --------------------------------------------------------------------------- classification


@SETTINGS
@given(label_cases())
def test_accuracy_matches_sklearn(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    _, t, p = case
    assert close(metrics.accuracy(t, p), sk(skm.accuracy_score, t, p))


@SETTINGS
@given(label_cases())
def test_balanced_accuracy_matches_sklearn(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    _, t, p = case
    assert close(metrics.balanced_accuracy(t, p), sk(skm.balanced_accuracy_score, t, p))


@SETTINGS
@given(label_cases(), st.sampled_from(["macro", "weighted"]))
def test_f1_averaged_matches_sklearn(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], average: str
) -> None:
    classes, t, p = case
    ours = metrics.f1(t, p, labels=classes, average=average)
    assert close(ours, sk(skm.f1_score, t, p, labels=classes, average=average))


@SETTINGS
@given(label_cases(), st.integers(0, 1))
def test_f1_binary_matches_sklearn(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], pos_index: int
) -> None:
    classes, t, p = case
    classes = classes[:2]
    t = np.where(np.isin(t, classes), t, classes[0])
    p = np.where(np.isin(p, classes), p, classes[1])
    pos = classes[pos_index]
    expected = sk(skm.f1_score, t, p, average="binary", pos_label=pos)
    assert close(metrics.f1(t, p, labels=classes, average="binary", pos_label=pos), expected)
    # Through the dispatcher: two classes means binary, positive class default classes[1].
    default = None if pos_index == 1 else pos
    assert close(
        metrics.compute("f1", y_true=t, y_pred=p, classes=classes, pos_label=default), expected
    )


@SETTINGS
@given(proba_cases(), st.sampled_from(["macro", "weighted"]))
def test_roc_auc_multiclass_matches_sklearn(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], average: str
) -> None:
    classes, t, proba = case
    if classes.shape[0] == 2:
        return  # covered by the binary test
    expected = sk(skm.roc_auc_score, t, proba, multi_class="ovr", labels=classes, average=average)
    ours = metrics.roc_auc(t, proba, classes=classes, average=average)
    assert close(ours, expected)
    assert close(
        metrics.compute(
            "roc_auc", y_true=t, y_pred=t, proba=proba, classes=classes, average=average
        ),
        expected,
    )


@SETTINGS
@given(proba_cases(), st.integers(0, 1))
def test_roc_auc_binary_matches_sklearn(
    case: tuple[np.ndarray, np.ndarray, np.ndarray], pos_index: int
) -> None:
    classes, t, proba = case
    classes = classes[:2]
    t = np.where(np.isin(t, classes), t, classes[0])
    proba = proba[:, :2]
    proba = np.where(proba.sum(axis=1, keepdims=True) == 0, 0.5, proba)
    proba = proba / proba.sum(axis=1, keepdims=True)
    pos = classes[pos_index]
    expected = sk(skm.roc_auc_score, t == pos, proba[:, pos_index])
    assert close(metrics.roc_auc(t, proba, classes=classes, pos_label=pos), expected)
    if pos_index == 1:
        assert close(metrics.roc_auc(t, proba, classes=classes), expected)
        if np.unique(t).shape[0] == 2:  # scikit-learn's own convention: greater label positive
            assert close(expected, sk(skm.roc_auc_score, t, proba[:, 1]))


def test_roc_auc_ties_count_half() -> None:
    # One positive tied with one negative, one clearly above: (1 + 0.5) / 2.
    t = np.asarray(["n", "p", "n", "p"])
    proba = np.asarray([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.1, 0.9]])
    assert metrics.roc_auc(t, proba, classes=["n", "p"]) == pytest.approx(0.875, abs=TOL)
    assert skm.roc_auc_score(t == "p", proba[:, 1]) == pytest.approx(0.875, abs=TOL)


def test_single_class_roc_auc_is_nan_like_sklearn() -> None:
    t = np.asarray(["a", "a", "a"])
    proba = np.asarray([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    assert math.isnan(metrics.roc_auc(t, proba, classes=["a", "b"]))


def test_large_random_cases_match_sklearn() -> None:
    """Bigger samples than hypothesis draws: accumulation order must not matter at 1e-12."""
    rng = np.random.default_rng(0)
    for _ in range(30):
        k = int(rng.integers(3, 6))
        classes = np.asarray(STRING_CLASSES[:k])
        n = int(rng.integers(200, 3000))
        t = classes[rng.integers(0, k, n)]
        p = np.where(rng.random(n) < 0.7, t, classes[rng.integers(0, k, n)])
        proba = rng.dirichlet(np.ones(k), n).round(2)  # rounding makes many ties
        proba /= proba.sum(axis=1, keepdims=True)
        assert close(metrics.accuracy(t, p), skm.accuracy_score(t, p))
        assert close(metrics.balanced_accuracy(t, p), skm.balanced_accuracy_score(t, p))
        for average in ("macro", "weighted"):
            assert close(
                metrics.f1(t, p, labels=classes, average=average),
                skm.f1_score(t, p, labels=classes, average=average),
            )
            assert close(
                metrics.roc_auc(t, proba, classes=classes, average=average),
                skm.roc_auc_score(t, proba, multi_class="ovr", labels=classes, average=average),
            )
        y = rng.normal(size=n) * 100
        yp = y + rng.normal(size=n)
        assert close(metrics.r2(y, yp), skm.r2_score(y, yp))
        assert close(metrics.mae(y, yp), skm.mean_absolute_error(y, yp))
        assert close(metrics.rmse(y, yp), skm.root_mean_squared_error(y, yp))


def test_labels_from_python_lists_and_object_arrays_compare_equal() -> None:
    t = ["a", "b", "b", "c"]
    p = np.asarray(["a", "b", "c", "c"], dtype=object)
    assert metrics.accuracy(t, p) == 0.75
    assert metrics.compute("balanced_accuracy", y_true=t, y_pred=p) == pytest.approx(
        skm.balanced_accuracy_score(t, list(p)), abs=TOL
    )


def test_string_pos_label_names_a_numeric_class() -> None:
    # The spec stores pos_label as text; a model may have numeric classes.
    t = np.asarray([0, 1, 1, 0])
    p = np.asarray([0, 1, 0, 0])
    ours = metrics.compute("f1", y_true=t, y_pred=p, classes=[0, 1], pos_label="0")
    assert ours == pytest.approx(skm.f1_score(t, p, pos_label=0), abs=TOL)


# --------------------------------------------------------------------------- regression


@SETTINGS
@given(regression_cases())
def test_regression_metrics_match_sklearn(case: tuple[np.ndarray, np.ndarray]) -> None:
    t, p = case
    assert close(metrics.r2(t, p), sk(skm.r2_score, t, p))
    assert close(metrics.mae(t, p), sk(skm.mean_absolute_error, t, p))
    assert close(metrics.rmse(t, p), sk(skm.root_mean_squared_error, t, p))
    for name, fn in (
        ("r2", skm.r2_score),
        ("mae", skm.mean_absolute_error),
        ("rmse", skm.root_mean_squared_error),
    ):
        assert close(metrics.compute(name, y_true=t, y_pred=p), sk(fn, t, p))


def test_r2_special_cases() -> None:
    assert math.isnan(metrics.r2([1.0], [1.0]))
    assert metrics.r2([2.0, 2.0], [2.0, 2.0]) == 1.0
    assert metrics.r2([2.0, 2.0], [2.0, 2.5]) == 0.0


# --------------------------------------------------------------------------- dispatch and errors


@SETTINGS
@given(label_cases())
def test_compute_dispatches_label_metrics(case: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    classes, t, p = case
    assert close(metrics.compute("accuracy", y_true=t, y_pred=p), sk(skm.accuracy_score, t, p))
    assert close(
        metrics.compute("balanced_accuracy", y_true=t, y_pred=p, classes=classes),
        sk(skm.balanced_accuracy_score, t, p),
    )
    if classes.shape[0] > 2:
        assert close(
            metrics.compute("f1", y_true=t, y_pred=p, classes=classes, average="weighted"),
            sk(skm.f1_score, t, p, labels=classes, average="weighted"),
        )


def test_unknown_metric_names_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown metric 'acc'.*accuracy, balanced_accuracy"):
        metrics.compute("acc", y_true=[1], y_pred=[1])


def test_roc_auc_without_proba_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"roc_auc.*proba"):
        metrics.compute("roc_auc", y_true=["a", "b"], y_pred=["a", "b"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.accuracy([], []), "no rows"),
        (lambda: metrics.accuracy([1, 2], [1]), "2 rows but y_pred has 1"),
        (lambda: metrics.accuracy(["1", "2"], [1, 2]), "mix strings and numbers"),
        (lambda: metrics.accuracy(np.asarray(["a", 1], dtype=object), ["a", "b"]), "mixes"),
        (lambda: metrics.f1(["a"], ["a"], labels=["a", "b"], average="micro"), "'micro'"),
        (lambda: metrics.f1(list("abc"), list("abc"), average="binary"), "binary"),
        (
            lambda: metrics.f1(
                list("ab"), list("ab"), labels=["a", "b"], average="binary", pos_label="z"
            ),
            "pos_label 'z'",
        ),
        (lambda: metrics.roc_auc(["a", "b"], [[0.5], [0.5]], classes=["a", "b"]), "column"),
        (lambda: metrics.roc_auc(["a", "x"], [[0.5, 0.5]] * 2, classes=["a", "b"]), "'x'"),
        (
            lambda: metrics.roc_auc(list("abc"), [[0.5, 0.5, 0.5]] * 3, classes=list("abc")),
            "sum to 1",
        ),
        (lambda: metrics.roc_auc(["a", "b"], [[np.nan, 1], [0, 1]], classes=["a", "b"]), "NaN"),
        (lambda: metrics.r2([1.0, np.inf], [1.0, 2.0]), "NaN or infinity"),
        (lambda: metrics.mae(["x"], [1.0]), "numbers"),
        (lambda: metrics.compute("f1", y_true=["a"], y_pred=["a"], average="micro"), "macro"),
    ],
)
def test_bad_inputs_raise_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_module_imports_only_numpy_and_stdlib() -> None:
    """The frozen app has no scikit-learn or scipy: anything else would break it there."""
    tree = ast.parse(Path(metrics.__file__).read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__"}
    assert roots <= allowed, roots - allowed
