"""The packed plan: one compiled call runs every op, with the same bytes as op by op.

``run_program`` is what every scorer calls; these tests hold it to the kernels
called one at a time (the reference), check the generated dispatcher is current,
and that a failing op is reported as that op, with the kernel's own status.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC

from bundler.backends import compile_aot
from bundler.backends.program_gen import kernel_source, source_path
from bundler.compiler import compile_estimators
from mlbundle_runtime import scorer as scorer_module
from mlbundle_runtime.backend import load_kernels
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.plan import PlanError, parse_plan
from mlbundle_runtime.program import pack
from mlbundle_runtime.scorer import Scorer


@pytest.fixture(scope="module")
def aot() -> Any:
    return load_kernels("aot", compile_aot())


def _models() -> dict[str, tuple[Any, Any]]:
    Xc, yc = load_breast_cancer(return_X_y=True)
    Xd, yd = load_diabetes(return_X_y=True)
    Xg, yg = load_digits(return_X_y=True)
    Xn = Xc.copy()
    Xn[np.random.RandomState(0).rand(*Xn.shape) < 0.1] = np.nan
    rng = np.random.RandomState(1)
    df = pd.DataFrame(
        {
            "a": rng.randn(200),
            "b": rng.rand(200) * 10,
            "color": pd.Series(rng.choice(["red", "green", "blue"], 200), dtype=object),
        }
    )
    df.loc[::9, "a"] = np.nan
    y = (df["a"].fillna(0) + (df["color"] == "red") > 0.3).astype(int)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["a", "b"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # speed of fit is beside the point
        mlp = MLPClassifier((20,), max_iter=100, random_state=0).fit(Xg / 16, yg)
    return {
        "forest": (RandomForestClassifier(n_estimators=15, random_state=0).fit(Xc, yc), Xc),
        "hgb-nan": (HistGradientBoostingClassifier(max_iter=20).fit(Xn, yc), Xn),
        "gbr": (GradientBoostingRegressor(n_estimators=30, random_state=0).fit(Xd, yd), Xd),
        "mlp": (mlp, Xg / 16),
        "gnb": (GaussianNB().fit(Xc, yc), Xc),
        "svc": (SVC().fit(Xc[:200], yc[:200]), Xc[:60]),
        "pipeline": (make_pipeline(pre, LogisticRegression()).fit(df, y), df),
    }


MODELS = _models()


def test_the_generated_dispatcher_is_current() -> None:
    """``kernels/program.py`` is what ``python -m bundler.backends.program_gen`` writes for
    these kernels."""
    assert source_path().read_text(encoding="utf-8") == kernel_source(), (
        "kernels/program.py is stale: run `python -m bundler.backends.program_gen`"
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_one_call_gives_the_bytes_of_the_ops_one_by_one(
    aot: Any, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, X = MODELS[name]
    # the compiled call itself: no MLP layer through BLAS (tests/test_dense_batch.py)
    monkeypatch.setattr(scorer_module, "DENSE_BLAS_ROWS", 1 << 62)
    scorer = Scorer(compile_estimators(model).load(), aot, threads=1)
    rows = X.to_numpy(dtype=object) if isinstance(X, pd.DataFrame) else X
    if isinstance(X, pd.DataFrame):
        rows[:, 2] = [v if isinstance(v, str) else None for v in rows[:, 2]]
    fused = scorer.score_rows(rows)

    ws = np.empty((len(rows), scorer.plan.width))
    scorer.encoder.fill_array(ws, rows)
    for op in scorer.plan.ops:  # the reference: each kernel called on its own
        status = getattr(aot, op.kernel)(ws, *op.args)
        assert status is None or status < 0
    cols = list(scorer.plan.output.decision)
    if scorer.plan.output.label_rule == "value":
        assert np.array_equal(fused.values, ws[:, cols[0]])
    else:
        if scorer.plan.output.proba:
            proba = ws[:, list(scorer.plan.output.proba)]
            assert np.array_equal(fused.proba, proba, equal_nan=True)
        label = np.empty(len(rows), dtype=np.int64)
        rule = scorer.plan.output.label_rule
        if rule in ("argmax", "positive"):
            getattr(aot, rule)(ws, np.asarray(cols, dtype=np.int64), label)
            assert np.array_equal(fused.label_index, label)
        assert list(fused.labels()) == list(model.predict(X))


def test_a_failing_op_is_reported_as_that_op(aot: Any) -> None:
    """The status of the op that failed comes back with its index, not the first op's."""
    model, df = MODELS["pipeline"]
    scorer = Scorer(compile_estimators(model).load(), aot, threads=1)
    kernels = [op.kernel for op in scorer.plan.ops]
    fails = [i for i, k in enumerate(kernels) if k == "onehot"]
    assert fails and fails[0] > 0, kernels
    rows = df.to_numpy(dtype=object)[:5]
    rows[3, 2] = "purple"  # unknown category, but the pipeline ignores unknowns
    scorer.score_rows(rows)
    strict = copy.deepcopy(compile_estimators(model))
    for op in strict.header["ops"]:
        if op["kernel"] == "onehot":
            op["args"][-1] = 1  # refuse unknown categories instead
    refusing = Scorer(strict.load(), aot, threads=1)
    with pytest.raises(InputError, match=r"row 4, field 'color': unknown category"):
        refusing.score_rows(rows)


def test_failure_decodes_op_and_status() -> None:
    program = pack([("exp_link", (np.zeros(1, np.int64), np.ones(1, np.int64)))] * 3)
    assert program.n_ops == 3
    assert program.failure(2 + 3 * 41) == (2, 41)
    assert program.failure(0) == (0, 0)


@pytest.mark.parametrize(
    "convert",
    [
        lambda X: X.astype(np.float32),
        lambda X: np.asfortranarray(X),
        lambda X: X[:, ::-1][:, ::-1],
        lambda X: np.round(X * 100).astype(np.int64),
    ],
    ids=["float32", "fortran", "strided view", "int64"],
)
def test_rows_of_any_numeric_layout_score_as_float64(aot: Any, convert: Any) -> None:
    model, X = MODELS["forest"]
    scorer = Scorer(compile_estimators(model).load(), aot, threads=1)
    given = convert(X[:40])
    expected = scorer.score_rows(np.ascontiguousarray(given, dtype=np.float64))
    for n in (1, 40):
        got = scorer.score_rows(given[:n])
        assert np.array_equal(got.proba, expected.proba[:n])


def test_the_entry_point_is_not_a_plan_op() -> None:
    model, _ = MODELS["gbr"]
    compiled = compile_estimators(model)
    header = copy.deepcopy(compiled.header)
    header["ops"][0]["kernel"] = "run_program"
    with pytest.raises(PlanError, match="run_program"):
        parse_plan(header, compiled.arrays)


@pytest.mark.parametrize("name", ["forest", "hgb-nan", "gbr"])
def test_lone_rows_walk_like_blocks(aot: Any, name: str) -> None:
    """A lone row walks eight trees at once (with or without NaN); a block walks eight
    rows per tree: the same leaves, the same sums, to the bit."""
    model, X = MODELS[name]
    X = X[:40].copy()
    if name == "forest":
        X[5, 3] = np.nan  # a NaN in a clean model's data, too: the missing-value walk
    scorer = Scorer(compile_estimators(model).load(), aot, threads=1)
    block = scorer.score_rows(X)
    for r in range(len(X)):
        one = scorer.score_rows(X[r : r + 1])
        got, want = (
            (one.proba, block.proba) if one.proba is not None else (one.values, block.values)
        )
        assert np.array_equal(got[0], want[r], equal_nan=True), r
