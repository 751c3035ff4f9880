"""HistGradientBoosting classifiers and regressors compile to plans scoring as scikit-learn does.

HistGradientBoosting works in float64 (no float32 cast): the sharp inputs are
each ``num_threshold`` and its float64 neighbours (the float32 ones are probed
too). It accepts NaN (``missing_go_to_left``) and +-inf in numeric features.
Categorical features go through scikit-learn's own ``OrdinalEncoder`` first
(unknown and missing categories become NaN, i.e. missing; infinity is refused)
and split on bitsets. Checked: predict, predict_proba, decision_function on
the training data, threshold probes, NaN in each feature (models trained with
and without NaN), extreme values, unknown / negative / non-integer / huge
categories, for every loss (identity link, and exp for poisson / gamma).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from bundler.compiler import compile_estimators
from mlbundle_runtime.scorer import Scorer
from tests._parity import (
    assert_probes_catch,
    compile_scorer,
    kernels,
    mutated,
    replace,
    to_records,
    written_plan,
)
from tests.test_sklearn_trees_converter import (
    FINITE_EXTREMES,
    HYPOTHESIS,
    _set,
    assert_corruption_refused,
    assert_full_parity,
    assert_outcome,
    dataset,
    nan_rows,
    probes,
    value_rows,
    with_nan,
)


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    # HistGradientBoosting predicts with OpenMP; on a busy 2-core machine its
    # threads spin at barriers (100 ms per tiny predict). One thread is exact too.
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


pytestmark = pytest.mark.usefixtures("quiet_sklearn")


HGB = {"max_iter": 30, "random_state": 0}
EXTREMES = (*FINITE_EXTREMES, 1e300, -1e300, math.inf, -math.inf)

# -- data ----------------------------------------------------------------------------


@functools.cache
def categorical_numpy() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numeric categories (some negative, fractional, large) in columns 0 and 3."""
    rng = np.random.RandomState(4)
    n = 400
    a = rng.choice([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], n)
    d = rng.choice([-2.0, 1.5, 7.0, 300.0], n)
    b, c = rng.randn(n), rng.randn(n)
    X = np.c_[a, b, c, d]
    X[rng.rand(n) < 0.08, 0] = np.nan
    X[rng.rand(n) < 0.08, 1] = np.nan
    score = np.isin(a, [1, 4]) * 1.5 + (d == 7.0) - (d == -2.0) + b + 0.3 * c
    y_reg = score + 0.1 * rng.randn(n)
    y_clf = np.digitize(score, [0.0, 1.2])  # three classes
    return X, y_reg, y_clf


@functools.cache
def categorical_frame() -> tuple[pd.DataFrame, np.ndarray]:
    """A DataFrame with string and integer categorical dtypes (``from_dtype``), NaN included."""
    rng = np.random.RandomState(5)
    n = 400
    colour = rng.choice(["red", "green", "blue", "black", "white"], n).astype(object)
    colour[rng.rand(n) < 0.1] = np.nan
    size = rng.choice([10, 20, 30], n)
    x = rng.randn(n)
    x[rng.rand(n) < 0.1] = np.nan
    df = pd.DataFrame(
        {
            "x": x,
            "colour": pd.Categorical(colour),
            "z": rng.randn(n),
            "size": pd.Categorical(size),
        }
    )
    score = (
        np.isin(colour, ["red", "blue"]) * 1.2
        + (size == 20)
        + np.nan_to_num(x)
        - pd.isna(colour) * 0.8
    )
    return df, (score > 0.9).astype(int)


@functools.cache
def many_categories() -> tuple[np.ndarray, np.ndarray]:
    """200 categories: codes span every word of the 256-bit bitsets."""
    rng = np.random.RandomState(6)
    n = 2000
    cats = rng.randint(0, 200, n).astype(float) * 3.0 - 100.0
    effect = np.sin(np.arange(200) * 1.7)
    x = rng.randn(n)
    y = effect[((cats + 100.0) / 3.0).astype(int)] * 2 + x
    return np.c_[x, cats], y


# -- cases ---------------------------------------------------------------------------

NUMERIC_FACTORIES: dict[str, Any] = {
    "HGBC": lambda: HistGradientBoostingClassifier(**HGB),
    "HGBR(squared_error)": lambda: HistGradientBoostingRegressor(**HGB),
    "HGBR(absolute_error)": lambda: HistGradientBoostingRegressor(loss="absolute_error", **HGB),
    "HGBR(quantile)": lambda: HistGradientBoostingRegressor(loss="quantile", quantile=0.7, **HGB),
    "HGBR(poisson)": lambda: HistGradientBoostingRegressor(loss="poisson", **HGB),
    "HGBR(gamma)": lambda: HistGradientBoostingRegressor(loss="gamma", **HGB),
}


def _datasets(kind: str) -> tuple[str, ...]:
    if kind == "HGBC":
        return ("binary", "multi3", "iris")
    if kind == "HGBR(squared_error)":
        return ("regression", "diabetes")
    return ("diabetes",)  # positive targets (poisson, gamma)


NUMERIC_CASES = [
    (kind, ds, nan) for kind in NUMERIC_FACTORIES for ds in _datasets(kind) for nan in (False, True)
]


def _case_id(case: tuple[Any, ...]) -> str:
    return "-".join(
        str(c) if not isinstance(c, bool) else ("nan" if c else "complete") for c in case
    )


@functools.cache
def fitted(kind: str, ds: str, nan: bool) -> tuple[Any, np.ndarray, Scorer]:
    X, y = dataset(ds)
    Xtrain = with_nan(X) if nan else X
    est = NUMERIC_FACTORIES[kind]().fit(Xtrain, y)
    return est, Xtrain, compile_scorer(est)


def _extras(est: Any) -> tuple[tuple[str, ...], dict[str, tuple]]:
    if not hasattr(est, "classes_"):
        return (), {}
    labels = () if len(est.classes_) == 2 else tuple(map(str, est.classes_))
    return ("decision_function",), {"decision_function": labels}


def check(est: Any, X: Any, scorer: Scorer, context: str = "") -> None:
    assert_full_parity(est, X, scorer, *_extras(est), context=context)


def outcome(est: Any, X: Any, scorer: Scorer, context: str = "") -> bool:
    return assert_outcome(est, X, scorer, *_extras(est), context=context)


def hgb_splits(est: Any) -> list[tuple[int, float]]:
    """(input feature, num_threshold) of every numeric split, in the model's input order."""
    n = est.n_features_in_
    if est._preprocessor is None:
        order = np.arange(n)
    else:
        cat = est.is_categorical_
        order = np.concatenate([np.flatnonzero(cat), np.flatnonzero(~cat)])
    out = set()
    for predictors in est._predictors:
        for p in predictors:
            nodes = p.nodes
            keep = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0)
            features, thresholds = nodes["feature_idx"][keep], nodes["num_threshold"][keep]
            for f, thr in zip(features, thresholds, strict=True):
                if math.isfinite(thr):
                    out.add((int(order[f]), float(thr)))
    return sorted(out)


# -- numeric features ----------------------------------------------------------------


@pytest.mark.parametrize("case", NUMERIC_CASES, ids=_case_id)
def test_training_data(case: tuple[str, str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    check(est, Xtrain, scorer, "training data")


@pytest.mark.parametrize("case", NUMERIC_CASES, ids=_case_id)
def test_thresholds_and_their_neighbours(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    split_list = hgb_splits(est)
    rows = probes(split_list, X, limit=250, float64_steps=True)
    assert len(rows) >= 5 * min(250, len(split_list))
    check(est, rows, scorer, "threshold probes")


@pytest.mark.parametrize("case", NUMERIC_CASES, ids=_case_id)
def test_nan_in_each_feature(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    check(est, nan_rows(X), scorer, "NaN rows")


@pytest.mark.parametrize("case", NUMERIC_CASES, ids=_case_id)
def test_extreme_values_are_accepted(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    check(est, value_rows(X, EXTREMES, range(X.shape[1])), scorer, "extremes")


@pytest.mark.parametrize(
    # not poisson / gamma: their exp may differ from numpy's vectorised exp in the last bit
    "case",
    [c for c in NUMERIC_CASES if "poisson" not in c[0] and "gamma" not in c[0]],
    ids=_case_id,
)
def test_raw_values_are_bit_for_bit(case: tuple[str, str, bool]) -> None:
    """0 + baseline + each leaf, iteration by iteration: the raw prediction (the value for
    identity links, decision_function for classifiers) equals scikit-learn's exactly."""
    est, Xtrain, scorer = fitted(*case)
    ours = scorer.score_records(to_records(scorer, Xtrain))
    if ours.values is not None:
        assert np.array_equal(ours.values, est.predict(Xtrain))
    else:
        (raw,) = [v for extra, v in ours.extras if extra.name == "decision_function"]
        n = len(Xtrain)
        assert np.array_equal(raw.reshape(n, -1), est.decision_function(Xtrain).reshape(n, -1))


def test_probes_catch_a_plan_casting_to_float32() -> None:
    """The probes are sharp: the plan with a float32 cast turned on (``cast32``, as the
    other tree models need) fails the build's parity check on them."""
    est, _, scorer = fitted("HGBR(squared_error)", "diabetes", False)
    X, _ = dataset("diabetes")
    rows = probes(hgb_splits(est), X, limit=250, float64_steps=True)
    wrong = mutated(compile_estimators(est), "tree_sum", -1, replace(0, 1))
    assert_probes_catch(est, rows, scorer, wrong)


def test_nan_trained_models_use_both_missing_directions() -> None:
    seen = set()
    for kind, ds, nan in NUMERIC_CASES:
        if nan:
            est, _, _ = fitted(kind, ds, nan)
            for predictors in est._predictors:
                for p in predictors:
                    internal = p.nodes["is_leaf"] == 0
                    seen.update(p.nodes["missing_go_to_left"][internal].tolist())
    assert seen == {0, 1}


def test_missing_direction_matters_for_the_comparison() -> None:
    """A plan that sent NaN left everywhere would fail the NaN tests."""
    est, _, _ = fitted("HGBC", "multi3", True)
    X, _ = dataset("multi3")
    rows = nan_rows(X, 10)
    compiled = compile_estimators(est)
    # no categorical split: the compact tree kernel, comparing in float64
    (op,) = [op for op in compiled.header["ops"] if op["kernel"] == "tree_sum"]
    assert op["args"][-1] == 0
    nodes = compiled.arrays[op["args"][5]["array"]]
    internal = nodes[:, 1] != np.arange(len(nodes))
    nodes[internal, 0] ^= 1 << 24  # every NaN the other way
    wrong = Scorer(written_plan(compiled), kernels())
    with pytest.raises(AssertionError):
        check(est, rows, wrong)


def test_binary_decision_exactly_zero_predicts_the_first_class() -> None:
    """HistGradientBoostingClassifier predicts classes_[raw > 0] (not >= 0, unlike GB)."""
    X, y = dataset("binary")
    est = HistGradientBoostingClassifier(max_iter=3, random_state=0).fit(X, y)
    est._baseline_prediction = np.zeros_like(est._baseline_prediction)
    for predictors in est._predictors:
        for p in predictors:
            p.nodes["value"] = 0.0
    assert (est.decision_function(X[:4]) == 0).all()
    ours = assert_full_parity(est, X[:4], compile_scorer(est), *_extras(est))
    assert ours.labels() == [0] * 4


def test_string_class_labels() -> None:
    X, y = dataset("multi3")
    labels = np.array(["c", "a", "b"])[y]
    est = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(with_nan(X), labels)
    scorer = compile_scorer(est)
    check(est, nan_rows(X, 10), scorer)
    check(est, probes(hgb_splits(est), X, limit=100, float64_steps=True), scorer)


# -- categorical features --------------------------------------------------------------

CAT_FACTORIES: dict[str, Any] = {
    "numpy-regressor": lambda: HistGradientBoostingRegressor(categorical_features=[0, 3], **HGB),
    "numpy-classifier": lambda: HistGradientBoostingClassifier(
        categorical_features=[True, False, False, True], **HGB
    ),
    "frame-binary": lambda: HistGradientBoostingClassifier(**HGB),
    "frame-poisson": lambda: HistGradientBoostingRegressor(loss="poisson", **HGB),
    "many-categories": lambda: HistGradientBoostingRegressor(
        categorical_features=[1], max_iter=20, random_state=0
    ),
}


@functools.cache
def fitted_cat(kind: str) -> tuple[Any, Any, Scorer]:
    est = CAT_FACTORIES[kind]()
    if kind.startswith("numpy"):
        X, y_reg, y_clf = categorical_numpy()
        est.fit(X, y_clf if "classifier" in kind else y_reg)
    elif kind.startswith("frame"):
        X, y = categorical_frame()
        est.fit(X, y if kind == "frame-binary" else np.exp(y * 0.5 + 0.1))
    else:
        X, y = many_categories()
        est.fit(X, y)
    return est, X, compile_scorer(est)


def _numeric_unknowns(known: np.ndarray) -> list[float]:
    """Values a numeric categorical column never had: negative, fractional, huge, 255/256."""
    cands = [-1.0, -2.5, 0.5, 1.25, 2.0000001, 254.0, 255.0, 256.0, 1e9, 1e300, -1e300, -0.0]
    return [v for v in cands if v not in set(known.tolist())]


def _rows_with(X: Any, col: int, values: list[Any]) -> Any:
    """One copy of a few rows of ``X`` per value, with column ``col`` set to it."""
    if isinstance(X, pd.DataFrame):
        blocks = []
        for v in values:
            block = X.head(4).copy()
            name = X.columns[col]
            if isinstance(block[name].dtype, pd.CategoricalDtype):
                block[name] = block[name].astype(object)
            block[name] = [v] * len(block)
            blocks.append(block)
        return pd.concat(blocks, ignore_index=True)
    rows = []
    for v in values:
        block = np.array(X[:4], dtype=np.float64)
        block[:, col] = v
        rows.append(block)
    return np.vstack(rows)


@pytest.mark.parametrize("kind", CAT_FACTORIES)
def test_categorical_training_data(kind: str) -> None:
    est, X, scorer = fitted_cat(kind)
    assert est.is_categorical_.any()
    check(est, X, scorer, "training data")


@pytest.mark.parametrize("kind", CAT_FACTORIES)
def test_categorical_every_known_unknown_and_missing_category(kind: str) -> None:
    est, X, scorer = fitted_cat(kind)
    enc = est._preprocessor.named_transformers_["encoder"]
    for j, col in enumerate(np.flatnonzero(est.is_categorical_)):
        cats = [c for c in enc.categories_[j] if not (isinstance(c, float) and math.isnan(c))]
        if enc.categories_[j].dtype.kind in "biuf":
            unknown: list[Any] = _numeric_unknowns(np.asarray(cats, dtype=float))
        else:
            unknown = ["never-seen", "RED", ""]
        values = [*cats, *unknown, np.nan]
        if enc.categories_[j].dtype.kind in "biuf" and 0.0 in cats:
            values.append(-0.0)  # equal to the category 0
        check(est, _rows_with(X, int(col), values), scorer, f"categories of column {col}")


@pytest.mark.parametrize("kind", CAT_FACTORIES)
def test_categorical_thresholds_nan_and_extremes(kind: str) -> None:
    est, X, scorer = fitted_cat(kind)
    numeric = [int(c) for c in np.flatnonzero(~est.is_categorical_)]
    for f, thr in hgb_splits(est)[:120]:
        values = [thr, np.nextafter(thr, np.inf), np.nextafter(thr, -np.inf)]
        check(est, _rows_with(X, f, values), scorer, f"threshold {thr!r} of column {f}")
    for f in numeric:
        check(est, _rows_with(X, f, [np.nan, *EXTREMES]), scorer, f"extremes in column {f}")


@pytest.mark.parametrize("kind", ["numpy-regressor", "numpy-classifier", "many-categories"])
def test_numeric_categories_refuse_infinity(kind: str) -> None:
    """scikit-learn's OrdinalEncoder refuses +-inf in a categorical column; so does the plan."""
    est, X, scorer = fitted_cat(kind)
    col = int(np.flatnonzero(est.is_categorical_)[0])
    for v in (math.inf, -math.inf):
        rows = _rows_with(X, col, [v])
        assert not outcome(est, rows, scorer)


def test_categorical_plan_declares_string_inputs() -> None:
    est, X, scorer = fitted_cat("frame-binary")
    kinds = {spec.name: spec.kind for spec in scorer.plan.inputs}
    assert kinds == {"x": "numeric", "colour": "categorical", "z": "numeric", "size": "numeric"}
    recs = to_records(scorer, X.head(3))
    assert isinstance(recs[0]["colour"], (str, type(None)))


def test_categorical_splits_use_several_bitset_words() -> None:
    est, _, _ = fitted_cat("many-categories")
    words = set()
    for predictors in est._predictors:
        for p in predictors:
            words.update(np.flatnonzero(p.raw_left_cat_bitsets.any(axis=0)).tolist())
    assert len(words) >= 4


def _cat_node(compiled: Any) -> int:
    op = next(op for op in compiled.header["ops"] if op["kernel"] == "hgb")
    return int(np.flatnonzero(compiled.arrays[op["args"][10]["array"]] >= 0)[0])


@pytest.mark.parametrize(
    "kernel, arg, change, match",
    [
        ("hgb", 2, lambda a: a[:-1], "argument lengths differ"),  # init
        ("hgb", 4, _set(0, 5), "tree output index"),
        ("hgb", 5, _set(0, 99), "feature index"),
        ("hgb", 9, lambda a: a[:-1], "node arrays differ"),  # missing_left
        ("hgb", 12, lambda a: a[:-1], "8 words"),  # left_bits
        ("hgb", 13, lambda a: np.append(a, 0), "8 words"),  # known_bits
        ("hgb", 14, lambda a: a[:-1], "leaf values"),
        ("ordinal_encode", 1, _set(-1, 10**6), "categor"),  # cat_start
        ("ordinal_encode", 3, lambda a: a[:-1], "categor"),  # cat_out
        ("ordinal_encode", 4, lambda a: a[:-1], "argument lengths differ"),  # dst
        ("ordinal_encode", 4, lambda a: a + 10**6, "column index out of range"),
    ],
)
def test_corrupted_hgb_plans_are_refused(kernel: str, arg: int, change: Any, match: str) -> None:
    est, _, _ = fitted_cat("numpy-classifier")
    assert_corruption_refused(compile_estimators(est), kernel, arg, change, match)


def test_corrupted_categorical_splits_are_refused() -> None:
    est, _, _ = fitted_cat("many-categories")
    compiled = compile_estimators(est)
    node = _cat_node(compiled)
    for arg in (10, 11):  # cat_left, cat_known: bitset rows past the tables
        assert_corruption_refused(compiled, "hgb", arg, _set(node, 10**6), "bitset index")
    assert_corruption_refused(compiled, "hgb", 11, _set(node, -1), "bitset index")
    for arg in (7, 8):  # a child pointing back to its parent would loop forever
        assert_corruption_refused(compiled, "hgb", arg, _set(node, node), "children")


def test_corrupted_exp_link_is_refused() -> None:
    est, _, _ = fitted("HGBR(poisson)", "diabetes", False)
    compiled = compile_estimators(est)
    assert_corruption_refused(compiled, "exp_link", 1, lambda a: np.append(a, a), "lengths")


@pytest.mark.parametrize("kind", ["numpy-classifier", "frame-binary"])
@HYPOTHESIS
@given(data=st.data())
def test_random_rows(kind: str, data: Any) -> None:
    est, X, scorer = fitted_cat(kind)
    enc = est._preprocessor.named_transformers_["encoder"]
    cat_cols = [int(c) for c in np.flatnonzero(est.is_categorical_)]
    split_list = hgb_splits(est)
    frame = isinstance(X, pd.DataFrame)
    rows = []
    for _ in range(data.draw(st.integers(1, 8), label="rows")):
        r = data.draw(st.integers(0, len(X) - 1), label="base")
        row = list(X.iloc[r]) if frame else list(X[r])
        for _ in range(data.draw(st.integers(1, 4), label="changes")):
            if data.draw(st.booleans(), label="categorical"):
                j = data.draw(st.integers(0, len(cat_cols) - 1), label="cat column")
                cats = list(enc.categories_[j])
                extra: list[Any] = (
                    ["unseen"] if enc.categories_[j].dtype == object else [-1.0, 0.5, 999.0]
                )
                row[cat_cols[j]] = data.draw(st.sampled_from([*cats, *extra, np.nan]), label="cat")
            else:
                f, thr = split_list[data.draw(st.integers(0, len(split_list) - 1), label="split")]
                move = data.draw(st.sampled_from(["exact", "up", "down", "nan"]), label="move")
                row[f] = {
                    "exact": thr,
                    "up": np.nextafter(thr, np.inf),
                    "down": np.nextafter(thr, -np.inf),
                    "nan": np.nan,
                }[move]
        rows.append(row)
    if frame:
        batch: Any = pd.DataFrame(rows, columns=X.columns)
        for c in X.columns:
            if isinstance(X[c].dtype, pd.CategoricalDtype):
                batch[c] = batch[c].astype(object)
    else:
        batch = np.array(rows, dtype=np.float64)
    # Row by row: scikit-learn and the plan both score a row identically, or both refuse
    # that same row; then the whole draw, which is scored only if every row is.
    compared = 0
    for i in range(len(rows)):
        one = batch.iloc[[i]] if frame else batch[i : i + 1]
        compared += outcome(est, one, scorer, f"row {i} alone")
    assert outcome(est, batch, scorer, "the draw") is (compared == len(rows))
    event(f"{compared} of {len(rows)} rows scored and compared")
