"""Naive Bayes models compile to plans that predict what scikit-learn 1.9 predicts.

GaussianNB, MultinomialNB and BernoulliNB: identical labels and probabilities
within 1e-9 absolute (the joint log likelihood, scikit-learn's ``_logsumexp``
and ``exp``), on the training data, with many classes and features (numpy's
pairwise sums), at the binarize threshold and one float64 step either side, at
extreme values (where scikit-learn's probabilities turn NaN, the plan's do too);
NaN and infinity refused as scikit-learn refuses them. MultinomialNB refuses
negative values only when fitting: at predict time scikit-learn scores them,
and so does the plan.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.naive_bayes import (
    BernoulliNB,
    CategoricalNB,
    ComplementNB,
    GaussianNB,
    MultinomialNB,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bundler.compiler import compile_estimators, supported
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.plan import PlanError, parse_plan
from mlbundle_runtime.scorer import Scorer
from tests._data import datasets
from tests._parity import (
    TOL,
    assert_parity,
    assert_refused,
    compile_scorer,
    kernels,
    sklearn_predict,
    to_records,
)

HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("naive_bayes")


# -- data and models -------------------------------------------------------------------


MODELS: dict[str, tuple[Any, str]] = {
    "gnb-binary": (lambda: GaussianNB(), "binary"),
    "gnb-multi3": (lambda: GaussianNB(), "multi3"),
    "gnb-many": (lambda: GaussianNB(), "many"),
    "gnb-breast-cancer": (lambda: GaussianNB(), "breast_cancer"),
    "gnb-iris-priors": (lambda: GaussianNB(priors=[0.2, 0.5, 0.3]), "iris"),
    "gnb-smoothing": (lambda: GaussianNB(var_smoothing=1e-3), "multi3"),
    "gnb-scaled": (lambda: make_pipeline(StandardScaler(), GaussianNB()), "breast_cancer"),
    "mnb": (lambda: MultinomialNB(), "counts-3-12"),
    "mnb-alpha": (lambda: MultinomialNB(alpha=0.01), "counts-4-30"),
    "mnb-no-prior": (lambda: MultinomialNB(fit_prior=False), "counts-3-12"),
    "mnb-class-prior": (lambda: MultinomialNB(class_prior=[0.5, 0.3, 0.2]), "counts-3-12"),
    "mnb-many": (lambda: MultinomialNB(), "counts-12-150"),
    "bnb": (lambda: BernoulliNB(), "multi3"),
    "bnb-threshold": (lambda: BernoulliNB(binarize=1.5), "counts-3-12"),
    "bnb-small-threshold": (lambda: BernoulliNB(binarize=0.25, alpha=0.5), "binary"),
    "bnb-none": (lambda: BernoulliNB(binarize=None), "binary01"),
    "bnb-none-counts": (lambda: BernoulliNB(binarize=None), "counts-3-12"),  # NaN parameters
    "bnb-many": (lambda: BernoulliNB(binarize=0.5), "many"),
    "cnb": (lambda: ComplementNB(), "counts-3-12"),
    "cnb-norm": (lambda: ComplementNB(norm=True, alpha=0.3), "counts-4-30"),
    "cnb-binary": (lambda: ComplementNB(), "binary01"),
    "cnb-many": (lambda: ComplementNB(norm=True), "counts-12-150"),
    "cnb-prior": (lambda: ComplementNB(class_prior=[0.5, 0.3, 0.2]), "counts-3-12"),
}


@functools.cache
def fitted(name: str) -> tuple[Any, np.ndarray, Scorer]:
    factory, ds = MODELS[name]
    X, y = dataset(ds)
    model = factory().fit(X, y)
    return model, X, compile_scorer(model)


def final(model: Any) -> Any:
    return model[-1] if hasattr(model, "steps") else model


#: Largest probability difference seen, for the report (``pytest -s`` prints it).
MEASURED: dict[str, float] = {}


def check(model: Any, X: np.ndarray, scorer: Scorer, context: str = "") -> None:
    """Labels identical, probabilities within 1e-9 (NaN where scikit-learn gives NaN)."""
    ours = assert_parity(model, None, X, scorer=scorer, context=context)
    _, proba = sklearn_predict(model, None, X)
    assert ours.proba is not None
    with np.errstate(invalid="ignore"):
        diff = np.abs(ours.proba - proba)
    assert np.array_equal(np.isnan(ours.proba), np.isnan(proba)), context
    finite = diff[np.isfinite(diff)]
    key = "training data" if context == "training data" else "other rows"
    MEASURED[key] = max(MEASURED.get(key, 0.0), float(finite.max()) if finite.size else 0.0)


# -- every model -----------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_training_data(name: str) -> None:
    model, X, scorer = fitted(name)
    check(model, X, scorer, "training data")
    if name != "bnb-none-counts":
        assert len(set(model.predict(X))) > 1


@pytest.mark.parametrize("name", list(MODELS))
def test_extreme_values(name: str) -> None:
    """0, tiny, huge and +-1e300 per feature (GaussianNB's squares overflow to NaN proba)."""
    model, X, scorer = fitted(name)
    for f in (0, X.shape[1] - 1):
        for v in (0.0, -0.0, 1e-300, 5e-324, 1e20, -1e20, 1e154, 1e300, -1e300):
            rows = X[:4].copy()
            rows[:, f] = v
            check(model, rows, scorer, f"x{f}={v!r}")
    # ComplementNB(norm=True) rows sum to 1, so a row of one value v gives every class the
    # same jll v * 1 up to the dot product's last bit: BLAS's rounding then decides the
    # label and probabilities (the README's documented limit for BLAS dot products), so
    # those models are checked on the other rows only
    norm = name in ("cnb-norm", "cnb-many")
    for v in () if norm else (1e300, -1e300, 1e200, 3.0):
        rows = X[:3].copy()
        rows[1, :] = v
        check(model, rows, scorer, f"row of {v!r}")


@pytest.mark.parametrize("name", list(MODELS))
def test_nan_and_infinity_refused(name: str) -> None:
    model, X, scorer = fitted(name)
    for f in (0, 1, X.shape[1] - 1):
        for v in (math.nan, math.inf, -math.inf):
            rows = X[:3].copy()
            rows[2, f] = v
            err = assert_refused(model, None, rows, scorer=scorer)
            assert "record 3" in str(err) and f"'x{f}'" in str(err)


@pytest.mark.parametrize("name", ["gnb-many", "mnb-many", "bnb-threshold"])
@HYPOTHESIS
@given(data=st.data())
def test_random_rows(name: str, data: Any) -> None:
    model, X, scorer = fitted(name)
    value = st.one_of(
        st.floats(-20, 20, allow_nan=False),
        st.integers(0, 6).map(float),
        st.sampled_from([0.0, 1.5, np.nextafter(1.5, 2.0), np.nextafter(1.5, 0.0)]),
    )
    rows = data.draw(
        st.lists(st.lists(value, min_size=X.shape[1], max_size=X.shape[1]), min_size=1, max_size=5),
        label="rows",
    )
    check(model, np.array(rows), scorer)


# -- MultinomialNB ----------------------------------------------------------------------


def test_multinomial_scores_negative_values_like_scikit_learn() -> None:
    """Negative counts are refused by fit ('Negative values in data passed to'), not by
    predict: scikit-learn scores them and the plan must too."""
    model, X, scorer = fitted("mnb")
    with pytest.raises(ValueError, match="Negative values in data passed to MultinomialNB"):
        MultinomialNB().fit(-X, np.arange(len(X)) % 3)
    rows = np.vstack([-X[:20], X[:20] - 2.5])
    check(model, rows, scorer, "negative inputs")


def test_multinomial_zero_alpha_gives_minus_infinity_parameters() -> None:
    """alpha=0 with force_alpha: log(0) = -inf parameters, 0 * -inf = NaN, as in scikit-learn."""
    X, y = dataset("counts-3-12")
    X = X.copy()
    X[y == 0, 3] = 0.0
    model = MultinomialNB(alpha=0.0, force_alpha=True).fit(X, y)
    assert np.isneginf(model.feature_log_prob_).any()
    check(model, X, compile_scorer(model), "alpha=0")


# -- BernoulliNB ------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.0, 1.5, 0.3, 1e-300, 2.5e300])
def test_bernoulli_threshold_edges(threshold: float) -> None:
    """x > threshold is 1: at the threshold 0, one float64 step above 1."""
    X, y = dataset("multi3")
    model = BernoulliNB(binarize=threshold).fit(X, y)
    scorer = compile_scorer(model)
    edges = [threshold, np.nextafter(threshold, np.inf), np.nextafter(threshold, -np.inf)]
    rows = []
    for k, v in enumerate(edges * 4):
        row = X[k].copy()
        row[k % X.shape[1]] = v
        row[(k + 3) % X.shape[1]] = edges[(k + 1) % 3]
        rows.append(row)
    rows.append(np.full(X.shape[1], threshold))
    rows.append(np.full(X.shape[1], np.nextafter(threshold, np.inf)))
    rows = np.array(rows)
    check(model, rows, scorer, "threshold edges")
    # the edges are sharp: the two all-edge rows binarize differently
    p = model.predict_proba(rows[-2:])
    assert not np.allclose(p[0], p[1])


def test_bernoulli_infinite_threshold_refused() -> None:
    X, y = dataset("multi3")
    model = BernoulliNB().fit(X, y)
    model.binarize = math.inf
    with pytest.raises(UnsupportedEstimatorError, match="binarize=inf"):
        compile_estimators(model)


# -- GaussianNB -------------------------------------------------------------------------


def test_gaussian_zero_variance() -> None:
    """var_smoothing=0 and a feature constant within a class: x / 0 gives inf, 0 / 0 NaN."""
    X, y = dataset("multi3")
    X = X.copy()
    X[y == 1, 2] = 0.75
    model = GaussianNB(var_smoothing=0.0).fit(X, y)
    assert (model.var_ == 0).any()
    rows = np.vstack([X[:30], X[y == 1][:5]])
    rows[-1, 2] = 0.75
    proba = model.predict_proba(rows)
    assert np.isnan(proba).any() or (proba == 0).any()
    check(model, rows, compile_scorer(model), "zero variance")


def test_gaussian_jll_is_bit_exact() -> None:
    """The joint log likelihood itself: the same numpy arithmetic, pairwise sums included."""
    for name in ("gnb-many", "gnb-breast-cancer", "gnb-iris-priors"):
        model, X, scorer = fitted(name)
        ws = np.zeros((len(X), scorer.plan.width))
        scorer.encoder.fill_records(ws, to_records(scorer, X))
        scorer.run(ws, str)  # the kernels leave the log likelihood in the workspace
        jll = ws[:, list(scorer.plan.output.decision)]
        assert np.array_equal(jll, final(model)._joint_log_likelihood(np.ascontiguousarray(X)))


def test_string_classes() -> None:
    X, y = dataset("iris")
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    for model in (GaussianNB(), MultinomialNB(), BernoulliNB(binarize=3.0)):
        model.fit(X, names)
        scorer = compile_scorer(model)
        check(model, X, scorer)
        assert set(scorer.score_records(to_records(scorer, X)).labels()) == set(names)


def test_single_class() -> None:
    X, _ = dataset("counts-3-12")
    for model in (GaussianNB(), MultinomialNB(), BernoulliNB(), ComplementNB()):
        model.fit(X, ["only"] * len(X))
        check(model, X[:20], compile_scorer(model))


def test_registered_with_options() -> None:
    registered = {r.cls: r for r in supported()}
    for cls in (GaussianNB, MultinomialNB, BernoulliNB, ComplementNB, CategoricalNB):
        assert cls in registered and registered[cls].options.strip(), cls


# -- ComplementNB ------------------------------------------------------------------------


def test_complement_jll_has_no_prior_with_several_classes() -> None:
    """scikit-learn leaves class_log_prior_ out of ComplementNB's jll unless there is one
    class: a plan adding it would move the probabilities."""
    model, X, scorer = fitted("cnb-prior")
    wrong = compile_estimators(model)
    op = next(o for o in wrong.header["ops"] if o["kernel"] == "linear_dot2")
    key = op["args"][3]["array"]
    wrong.arrays[key] = np.log(np.array([0.5, 0.3, 0.2]))
    _, proba = sklearn_predict(model, None, X)
    bad = Scorer(parse_plan(wrong.header, wrong.arrays), kernels()).score_records(
        to_records(scorer, X)
    )
    assert np.abs(bad.proba - proba).max() > 1e-3
    check(model, X, scorer, "training data")
    Xi, yi = dataset("iris")
    named = ComplementNB().fit(Xi, np.array(["setosa", "versicolor", "virginica"])[yi])
    check(named, Xi, compile_scorer(named), "string classes")


# -- CategoricalNB -----------------------------------------------------------------------


def categories(n: int = 400, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Category codes with 2 to 7 categories per feature; the class depends on some."""
    rng = np.random.default_rng(seed)
    sizes = [2, 3, 5, 7, 4, 3]
    X = np.column_stack([rng.integers(0, c, n) for c in sizes]).astype(np.float64)
    y = (X[:, 0] + X[:, 2] + rng.integers(0, 3, n)) % 3
    return X, y.astype(int)


CATEGORICAL = {
    "default": lambda: CategoricalNB(),
    "alpha": lambda: CategoricalNB(alpha=0.05),
    "no-prior": lambda: CategoricalNB(fit_prior=False),
    "class-prior": lambda: CategoricalNB(class_prior=[0.2, 0.3, 0.5]),
    "min-categories": lambda: CategoricalNB(min_categories=[3, 3, 6, 9, 4, 5]),
    "min-categories-int": lambda: CategoricalNB(min_categories=8),
}


@functools.cache
def categorical(name: str) -> tuple[Any, np.ndarray, Scorer]:
    X, y = categories()
    model = CATEGORICAL[name]().fit(X, y)
    return model, X, compile_scorer(model)


@pytest.mark.parametrize("name", list(CATEGORICAL))
def test_categorical_training_data_and_truncation(name: str) -> None:
    model, X, scorer = categorical(name)
    check(model, X, scorer, "training data")
    # values read as scikit-learn reads them: truncated toward zero
    for delta in (0.25, 0.5, 0.999999):
        check(model, X[:40] + delta, scorer, f"x + {delta}")
    rows = X[:30].copy()
    rows[:, 1] = -0.5  # int(-0.5) == 0
    rows[:, 3] = np.nextafter(-1.0, 0.0)
    check(model, rows, scorer, "in (-1, 0)")


@pytest.mark.parametrize("name", list(CATEGORICAL))
def test_categorical_every_category_the_model_knows(name: str) -> None:
    """Categories allowed by min_categories but never seen score as scikit-learn scores them."""
    model, X, scorer = categorical(name)
    rows = []
    for f, n in enumerate(model.n_categories_):
        for c in range(int(n)):
            row = X[(f * 7 + c) % len(X)].copy()
            row[f] = c
            rows.append(row)
    check(model, np.array(rows), scorer, "every category")


@pytest.mark.parametrize("name", list(CATEGORICAL))
def test_categorical_unseen_categories_are_refused(name: str) -> None:
    """One beyond n_categories_: scikit-learn raises IndexError; negative values and
    values too large for an integer: ValueError (after its cast)."""
    model, X, scorer = categorical(name)
    for f, n in enumerate(model.n_categories_):
        rows = X[:3].copy()
        rows[2, f] = float(n)
        with pytest.raises(IndexError):
            model.predict_proba(rows)
        exc = _refused(scorer, rows)
        assert "record 3" in str(exc) and f"'x{f}'" in str(exc) and "categories" in str(exc)
        for bad in (-1.0, -3.5, 1e300, -1e300, math.nan, math.inf, -math.inf):
            rows = X[:3].copy()
            rows[1, f] = bad
            assert_refused(model, None, rows, scorer=scorer)


def _refused(scorer: Scorer, rows: np.ndarray) -> Exception:
    from mlbundle_runtime.inputs import InputError

    with pytest.raises(InputError) as info:
        scorer.score_records(to_records(scorer, rows))
    return info.value


def test_categorical_string_classes_single_class_and_pipeline() -> None:
    import pandas as pd

    X, y = categories(300, seed=9)
    names = np.array(["red", "green", "blue"])[y]
    model = CategoricalNB().fit(X, names)
    check(model, X, compile_scorer(model), "string classes")
    single = CategoricalNB().fit(X, ["only"] * len(X))
    check(single, X[:20], compile_scorer(single), "one class")
    frame = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    named = CategoricalNB().fit(frame, y)
    assert_parity(named, None, frame)


@pytest.mark.parametrize("wide", [False, True])
def test_categorical_many_classes_and_features(wide: bool) -> None:
    """12 classes (pairwise sums in logsumexp), 150 features (a long in-order jll sum)."""
    rng = np.random.default_rng(11)
    n_features = 150 if wide else 8
    X = rng.integers(0, 4, (600, n_features)).astype(np.float64)
    y = (X[:, :3].sum(axis=1) + rng.integers(0, 3, 600)).astype(int) % 12
    model = CategoricalNB(alpha=0.5).fit(X, y)
    check(model, X, compile_scorer(model), "training data")


def test_categorical_jll_is_bit_exact() -> None:
    model, X, scorer = categorical("min-categories")
    ws = np.zeros((len(X), scorer.plan.width))
    scorer.encoder.fill_records(ws, to_records(scorer, X))
    scorer.run(ws, str)
    jll = ws[:, list(scorer.plan.output.decision)]
    assert np.array_equal(jll, model._joint_log_likelihood(X.astype(int)))


@pytest.mark.parametrize(
    ("arg", "change"), [(2, "drop column"), (3, "drop row"), (4, "drop row"), (5, "drop row")]
)
def test_categorical_plan_checks_refuse_broken_ops(arg: int, change: str) -> None:
    model, _, _ = categorical("default")
    plan = compile_estimators(model)
    op = next(op for op in plan.header["ops"] if op["kernel"] == "categorical_nb")
    arrays = dict(plan.arrays)
    key = op["args"][arg]["array"]
    data = arrays[key][:-1] if change == "drop row" else arrays[key][:, :-1]
    arrays[key] = np.ascontiguousarray(data)
    with pytest.raises(PlanError):
        parse_plan(plan.header, arrays)


# -- the kernels -------------------------------------------------------------------------


def test_nb_proba_kernel_special_rows() -> None:
    """scikit-learn's _logsumexp on rows with ties, -inf, +inf and NaN."""
    from sklearn.utils._array_api import _logsumexp

    jll = np.array(
        [
            [-1.0, -1.0, -3.0],
            [-np.inf, -np.inf, -np.inf],
            [np.inf, 0.0, -5.0],
            [np.nan, 0.0, 1.0],
            [0.0, np.nan, 1.0],
            [-1e308, -1e308, -1e300],
            [2.0, 2.0, 2.0],
            [-745.0, -0.0, -1e-300],
        ]
    )
    want = np.exp(jll - _logsumexp(jll, axis=1)[:, None])
    for pairwise in (0, 1):
        ws = np.ascontiguousarray(np.hstack([jll, np.zeros_like(jll)]))
        kernels().nb_proba(ws, np.arange(3), np.arange(3, 6), pairwise)
        got = ws[:, 3:]
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.all(np.abs(got - want)[~np.isnan(want)] <= 1e-15)


@pytest.mark.parametrize(
    "name, kernel, arg, change",
    [
        ("gnb-multi3", "gaussian_nb", 2, "drop column"),
        ("gnb-multi3", "gaussian_nb", 3, "drop row"),
        ("gnb-multi3", "gaussian_nb", 5, "drop row"),
        ("gnb-multi3", "nb_proba", 1, "drop row"),
        ("gnb-multi3", "nb_proba", 2, "flag 3"),
        ("bnb-threshold", "binarize", 1, "drop row"),
        ("mnb", "linear_dot2", 2, "drop column"),
    ],
)
def test_plan_checks_refuse_broken_ops(name: str, kernel: str, arg: int, change: str) -> None:
    model, _, _ = fitted(name)
    plan = compile_estimators(model)
    op = next(op for op in plan.header["ops"] if op["kernel"] == kernel)
    arrays = dict(plan.arrays)
    if change == "flag 3":
        op["args"][arg] = 3
    else:
        key = op["args"][arg]["array"]
        data = arrays[key][:-1] if change == "drop row" else arrays[key][:, :-1]
        arrays[key] = np.ascontiguousarray(data)
    with pytest.raises(PlanError):
        parse_plan(plan.header, arrays)


def test_zz_report_measured_differences() -> None:
    """Runs last: print the largest probability differences ``check`` saw (``pytest -s``)."""
    print("\nnaive Bayes, largest probability differences vs scikit-learn:", MEASURED)
    assert all(v <= TOL for v in MEASURED.values())
