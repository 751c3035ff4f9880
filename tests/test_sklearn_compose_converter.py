"""ColumnTransformer and Pipeline wiring, compiled exactly.

Column selections of every kind (names, indices, slices, boolean masks,
callables, ``make_column_selector``) are resolved by scikit-learn at fit time
(``_transformer_to_input_indices``); ``'drop'`` and ``'passthrough'`` (named
or as the remainder, which scikit-learn 1.9 stores as a fitted identity
``FunctionTransformer``), an estimator as the remainder, ``transformer_weights``
and sparse output (``sparse_threshold``) must all give the same features, in the
same order, bit for bit, and the same predictions.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer, make_column_selector, make_column_transformer
from sklearn.datasets import make_classification
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    OrdinalEncoder,
    PolynomialFeatures,
    StandardScaler,
)
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from tests._parity import assert_parity, assert_refused, assert_same_outcome, compile_scorer
from tests._transform_parity import assert_features_identical, bits_differ, run_ops

NUMS = ["a", "b", "c"]
CATS = ["color", "size"]


pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame(
        {
            "a": rng.randn(n),
            "color": pd.Series(rng.choice(["red", "green", "blue"], n), dtype=object),
            "b": rng.randn(n) * 10 + 3,
            "size": pd.Series(rng.choice(["S", "M", "L", "XL"], n), dtype=object),
            "c": rng.rand(n) * 100,
        }
    )
    y = (df["a"] + (df["color"] == "red") + df["b"] / 10 - (df["size"] == "L")).to_numpy()
    return df, y


def frame() -> tuple[pd.DataFrame, np.ndarray]:
    df, y = _frame()
    return df.copy(), y


def probes(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    out = [("training data", df)]
    if "color" in df:
        unseen = df.head(4).copy()
        unseen["color"] = "purple"
        out.append(("unseen color", unseen))
    for c in NUMS:
        for v in (0.0, -0.0, 1e300, math.inf, math.nan):
            block = df.head(3).copy()
            block.loc[1, c] = v
            out.append((f"{c}={v!r}", block))
    return out


def check(model: Any, df: pd.DataFrame | None = None) -> Any:
    df = frame()[0] if df is None else df
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    for name, rows in probes(df):
        if assert_same_outcome(model, None, rows, scorer=scorer, context=name):
            assert_features_identical(model, rows, scorer, signed_zeros=False, context=name)
    return scorer


def tree(ct: ColumnTransformer) -> Pipeline:
    df, y = frame()
    return make_pipeline(ct, DecisionTreeRegressor(random_state=0)).fit(df, y)


def logistic(ct: ColumnTransformer) -> Pipeline:
    df, y = frame()
    return make_pipeline(ct, LogisticRegression(max_iter=1000)).fit(df, y > np.median(y))


OHE = {"handle_unknown": "ignore", "sparse_output": False}


@pytest.mark.parametrize("remainder", ["drop", "passthrough", "scaler"])
def test_remainder(remainder: str) -> None:
    rest: Any = StandardScaler() if remainder == "scaler" else remainder
    model = tree(
        ColumnTransformer(
            [("cat", OneHotEncoder(**OHE), CATS), ("a", MinMaxScaler(), ["a"])], remainder=rest
        )
    )
    width = 8 + (0 if remainder == "drop" else 2)
    assert model[-1].n_features_in_ == width
    check(model)


ORDER = ["color", "size", "a", "b", "c"]
# Every text column is selected: an input no step reads still has a type in the plan
# (numeric by default), see test_unused_text_input_is_typed_numeric.
SELECTIONS = {
    "names": (["b", "a"], ["size", "color"]),
    "indices": ([3, 2], [1, 0]),
    "slice": (slice(2, 5), slice(0, 2)),
    "mask": ([False, False, True, False, True], [True, True, False, False, False]),
    "callable": (lambda X: ["c", "a"], lambda X: ["size", "color"]),
    "selector": (
        make_column_selector(dtype_include=np.number),
        make_column_selector(pattern="^s|^co"),
    ),
    "selector-exclude": (
        make_column_selector(pattern="[ab]", dtype_exclude=object),
        make_column_selector(dtype_include=object),
    ),
}


@pytest.mark.parametrize("how", list(SELECTIONS))
def test_column_selection(how: str) -> None:
    nums, cats = SELECTIONS[how]
    df, y = frame()
    df = df[ORDER]
    ct = ColumnTransformer(
        [("num", StandardScaler(), nums), ("cat", OneHotEncoder(**OHE), cats)], remainder="drop"
    )
    model = make_pipeline(ct, DecisionTreeRegressor(random_state=0)).fit(df, y)
    check(model, df)


def test_column_selection_on_arrays() -> None:
    """Without names: indices, slices, masks and callables on a numeric array."""
    X, y = make_classification(300, 8, n_informative=5, random_state=0)
    mask = np.zeros(8, dtype=bool)
    mask[[1, 6]] = True
    ct = ColumnTransformer(
        [
            ("idx", StandardScaler(), [7, 0]),
            ("slice", MinMaxScaler(clip=True), slice(2, 4)),
            ("mask", Normalizer(), mask),
            ("callable", "passthrough", lambda X: [5, 5, 0]),
        ],
        remainder="passthrough",
    )
    model = make_pipeline(ct, LogisticRegression()).fit(X, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    assert_features_identical(model, X, scorer)
    rows = X[:3].copy()
    rows[1, 4] = np.nan
    err = assert_refused(model, None, rows, scorer=scorer)
    assert "'x4'" in str(err)


@pytest.mark.parametrize("where", ["remainder", "explicit"])
def test_passthrough(where: str) -> None:
    if where == "remainder":
        ct = ColumnTransformer([("s", StandardScaler(), ["a", "c"])], remainder="passthrough")
        df = frame()[0][NUMS]
    else:
        ct = ColumnTransformer(
            [
                ("s", StandardScaler(), ["a"]),
                ("p", "passthrough", ["c", "b"]),
                ("o", OrdinalEncoder(), CATS),
            ],
            remainder="drop",
        )
        df = frame()[0]
    model = make_pipeline(ct, DecisionTreeRegressor(random_state=0)).fit(df, frame()[1])
    assert any(isinstance(t, FunctionTransformer) for _, t, _ in model[0].transformers_)
    check(model, df)


def test_drop_and_empty_selections() -> None:
    model = tree(
        ColumnTransformer(
            [
                ("gone", "drop", ["a"]),
                ("empty", StandardScaler(), []),
                ("none", OneHotEncoder(), make_column_selector(pattern="^zzz")),
                ("mask", MinMaxScaler(), [False] * 5),
                ("cat", OneHotEncoder(**OHE), ["size", "color"]),
                ("b", StandardScaler(), ["b"]),
            ],
            remainder="drop",
        )
    )
    assert model[-1].n_features_in_ == 8
    check(model)


def test_overlapping_selections_share_inputs() -> None:
    model = tree(
        ColumnTransformer(
            [
                ("scaled", StandardScaler(), ["a", "b"]),
                ("raw", "passthrough", ["b", "a"]),
                ("onehot", OneHotEncoder(**OHE), ["color"]),
                ("ordinal", OrdinalEncoder(), ["color", "size"]),
            ]
        )
    )
    check(model)


def test_transformer_weights() -> None:
    model = logistic(
        ColumnTransformer(
            [
                ("num", StandardScaler(), NUMS),
                ("cat", OneHotEncoder(**OHE), CATS),
                ("raw", "passthrough", ["a"]),
            ],
            transformer_weights={"num": 0.3, "cat": 2.5},
        )
    )
    check(model)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 1.0])
def test_sparse_threshold(threshold: float) -> None:
    ct = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATS),
            ("num", StandardScaler(), NUMS),
        ],
        sparse_threshold=threshold,
    )
    model = logistic(ct)
    assert model[0].sparse_output_ == (threshold == 1.0)
    check(model)


def test_sparse_output_into_sparse_aware_steps() -> None:
    """After a sparse output, scaling multiplies by 1 / scale_ (scikit-learn's sparse path)."""
    ct = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATS),
            ("num", "passthrough", NUMS),
        ],
        sparse_threshold=1.0,
    )
    df, y = frame()
    model = make_pipeline(
        ct, StandardScaler(with_mean=False), Normalizer("l1"), LogisticRegression(max_iter=1000)
    ).fit(df, y > np.median(y))
    check(model)


def test_nested_pipelines_and_transformers() -> None:
    inner = ColumnTransformer(
        [
            ("imp", make_pipeline(SimpleImputer(), StandardScaler()), [0, 2]),
            ("keep", "passthrough", [1]),
        ]
    )
    model = Pipeline(
        [
            (
                "outer",
                ColumnTransformer(
                    [
                        ("num", make_pipeline(inner, "passthrough", MinMaxScaler()), NUMS),
                        (
                            "cat",
                            Pipeline(
                                [
                                    ("none", None),
                                    ("imp", SimpleImputer(strategy="most_frequent")),
                                    ("ohe", OneHotEncoder(**OHE)),
                                ]
                            ),
                            CATS,
                        ),
                    ]
                ),
            ),
            ("skip", "passthrough"),
            ("inner", make_pipeline(FunctionTransformer(), StandardScaler())),
            ("tree", DecisionTreeRegressor(random_state=0)),
        ]
    )
    df, y = frame()
    df.loc[df.sample(frac=0.1, random_state=1).index, "a"] = np.nan
    model.fit(df, y)
    check(model, df)


def test_separate_extractor_and_model() -> None:
    df, y = frame()
    extractor = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), CATS),
        (StandardScaler(), NUMS),
        sparse_threshold=1.0,
    ).fit(df)
    model = LogisticRegression(max_iter=1000).fit(extractor.transform(df), y > np.median(y))
    scorer = compile_scorer(model, extractor)
    for _, rows in probes(df):
        assert_same_outcome(model, extractor, rows, scorer=scorer)


def test_pandas_output_changes_nothing() -> None:
    ct = ColumnTransformer(
        [("num", StandardScaler(), NUMS), ("cat", OneHotEncoder(sparse_output=False), CATS)]
    ).set_output(transform="pandas")
    check(tree(ct))


def test_predictor_inside_a_column_transformer_refused() -> None:
    df, y = frame()
    model = tree(ColumnTransformer([("num", StandardScaler(), NUMS)]))
    model[0].transformers_[0] = ("num", DecisionTreeRegressor().fit(df[NUMS], y), NUMS)
    with pytest.raises(UnsupportedEstimatorError, match="predictor"):
        compile_estimators(model)


def test_weights_on_float32_output_refused() -> None:
    model = logistic(
        ColumnTransformer(
            [("cat", OneHotEncoder(dtype=np.float32, sparse_output=False), CATS)],
            transformer_weights={"cat": 0.1},
        )
    )
    with pytest.raises(UnsupportedEstimatorError, match="float32"):
        compile_estimators(model)


def test_unused_text_input_is_typed_numeric() -> None:
    """Known limit: a column no step reads (dropped) is still an input of the plan, typed
    numeric, so text there is refused although scikit-learn ignores it."""
    df, y = frame()
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), NUMS)], remainder="drop"),
        DecisionTreeRegressor(random_state=0),
    ).fit(df, y)
    compiled = compile_estimators(model)
    kinds = {i["name"]: i["kind"] for i in compiled.header["inputs"]}
    assert kinds["color"] == "numeric"


def test_aot_kernels_agree_with_jit_bit_for_bit() -> None:
    """The frozen app runs the AOT-compiled kernels: every preprocessing kernel, both ways."""
    from bundler.backends import compile_aot
    from mlbundle_runtime.backend import load_kernels

    df, y = frame()
    df.loc[df.sample(frac=0.1, random_state=2).index, "a"] = np.nan
    ct = ColumnTransformer(
        [
            (
                "oh",
                OneHotEncoder(
                    max_categories=2, handle_unknown="infrequent_if_exist", sparse_output=False
                ),
                ["color"],
            ),
            ("ord", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["size"]),
            (
                "imp",
                make_pipeline(SimpleImputer(add_indicator=True), MinMaxScaler(clip=True)),
                NUMS,
            ),
            ("kb", KBinsDiscretizer(3, encode="ordinal"), ["c"]),
            ("f", FunctionTransformer(np.sqrt), ["c"]),
            ("poly", PolynomialFeatures(2), ["b", "c"]),
        ],
        transformer_weights={"poly": 0.5},
    )
    model = make_pipeline(ct, Normalizer(), LogisticRegression()).fit(df, y > np.median(y))
    scorer = compile_scorer(model)
    kernels_used = {op.kernel for op in scorer.plan.ops}
    assert {
        "onehot_fallback",
        "ordinal_encode",
        "missing_indicator",
        "mul_add",
        "clip",
    } <= kernels_used
    assert {"bin_index", "unary_func", "constant", "product", "multiply", "normalize_rows"} <= (
        kernels_used
    )
    rows = pd.concat([df, *(block for _, block in probes(df)[1:2])], ignore_index=True)
    aot = run_ops(scorer, rows, load_kernels("aot", compile_aot()))
    jit = run_ops(scorer, rows)
    assert not bits_differ(aot, jit).any()
    assert_features_identical(model, rows, scorer)


def _corrupt(compiled: Any, kernel: str, arg: int, value: Any) -> None:
    op = next(o for o in compiled.header["ops"] if o["kernel"] == kernel)
    key = op["args"][arg]["array"]
    compiled.arrays[key] = np.asarray(value, dtype=compiled.arrays[key].dtype)


@pytest.mark.parametrize(
    ("kernel", "arg", "value", "match"),
    [
        ("product", 2, [0, 99, 1], "left factor"),
        ("onehot_fallback", 5, [0], "outside the op's output columns"),
        ("ordinal_encode", 1, [0, 5, 2], "category tables"),
        ("bin_index", 2, [0, 1], "bin edge"),
        ("normalize_rows", 1, [0, 1], "argument lengths"),
    ],
)
def test_corrupted_plans_are_refused(kernel: str, arg: int, value: Any, match: str) -> None:
    from mlbundle_runtime.plan import PlanError

    df, y = frame()
    ct = ColumnTransformer(
        [
            ("oh", OneHotEncoder(max_categories=2, handle_unknown="warn"), ["color"]),
            ("ord", OrdinalEncoder(), ["size"]),
            ("kb", KBinsDiscretizer(3, encode="ordinal"), ["c"]),
            ("poly", PolynomialFeatures(2, include_bias=False), ["a", "b"]),
        ],
        sparse_threshold=0,
    )
    model = make_pipeline(ct, Normalizer(), LogisticRegression()).fit(df, y > np.median(y))
    compiled = compile_estimators(model)
    compiled.load()
    _corrupt(compiled, kernel, arg, value)  # onehot_fallback: unknown_dst names input 0
    with pytest.raises(PlanError, match=match):
        compiled.load()
