"""Multi-output and multilabel models (plan format 2.3): one output per column of ``y``.

Each family is compared with scikit-learn as its single-output tests compare it: trees and
forests to the bit (the same leaf values summed in the same order, per target), linear
models within the parity bar (the compensated dot product against BLAS). The plan reader
refuses a malformed ``outputs`` list, and single-output plans keep their ``output``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    MultiTaskElasticNet,
    MultiTaskElasticNetCV,
    MultiTaskLasso,
    MultiTaskLassoCV,
    RANSACRegressor,
    Ridge,
    RidgeCV,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from bundler import parity
from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.plan import FORMAT_VERSION, PlanError, output_columns, parse_plan
from mlbundle_runtime.scorer import MultiScores, Scorer
from tests._data import dataset, with_nan
from tests._parity import TOL, compile_scorer, kernels, to_records


def _targets(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Three regression targets that differ in scale and sign."""
    return np.column_stack([y, -2.5 * y + X[:, 0], 1e3 * np.sin(X[:, 1]) + 0.01 * y])


def _labels(X: np.ndarray) -> np.ndarray:
    """Two classification targets: one binary, one with three classes."""
    return np.column_stack(
        [
            np.where(X[:, 0] > np.median(X[:, 0]), "yes", "no"),
            np.where(X[:, 1] > 0.3, "high", np.where(X[:, 1] < -0.3, "low", "mid")),
        ]
    )


def _multi_scores(scorer: Scorer, X: np.ndarray) -> MultiScores:
    scores = scorer.score_records(to_records(scorer, X))
    assert isinstance(scores, MultiScores)
    return scores


def _values(scores: MultiScores) -> np.ndarray:
    return np.column_stack([o.values for o in scores.outputs])


TREE_REGRESSORS: list[Callable[[], Any]] = [
    lambda: DecisionTreeRegressor(max_depth=8, random_state=0),
    lambda: ExtraTreeRegressor(random_state=0),
    lambda: RandomForestRegressor(n_estimators=15, max_depth=7, random_state=0),
    lambda: ExtraTreesRegressor(n_estimators=15, random_state=0),
]
TREE_CLASSIFIERS: list[Callable[[], Any]] = [
    lambda: DecisionTreeClassifier(max_depth=6, random_state=0),
    lambda: ExtraTreeClassifier(random_state=0),
    lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    lambda: ExtraTreesClassifier(n_estimators=15, random_state=0),
]


@pytest.mark.parametrize("make", TREE_REGRESSORS)
def test_tree_regressors_score_each_target_bit_for_bit(make: Callable[[], Any]) -> None:
    X, y = dataset("regression")
    X = with_nan(X, 0.05)  # trained with NaN: each split's missing_go_to_left, per target
    Y = _targets(np.nan_to_num(X), y)
    est = make().fit(X, Y)
    scorer = compile_scorer(est)
    scores = _multi_scores(scorer, X)
    assert scores.names == ("y0", "y1", "y2")
    assert np.array_equal(_values(scores), est.predict(X))
    # a batch of many blocks (the threads' path) and the one-row path agree too
    big = np.repeat(X, 4, axis=0)
    assert np.array_equal(_values(scorer.score_rows(big)), est.predict(big))  # type: ignore[arg-type]
    one = scorer.score_record(to_records(scorer, X[:1])[0])
    assert np.array_equal(_values(one), est.predict(X[:1]))  # type: ignore[arg-type]


@pytest.mark.parametrize("make", TREE_CLASSIFIERS)
def test_tree_classifiers_label_and_probabilities_per_target(make: Callable[[], Any]) -> None:
    X, _ = dataset("regression")
    Y = _labels(X)
    est = make().fit(X, Y)
    scorer = compile_scorer(est)
    scores = _multi_scores(scorer, X)
    want, proba = est.predict(X), est.predict_proba(X)
    for k, out in enumerate(scores.outputs):
        assert out.labels() == want[:, k].tolist()
        assert out.proba is not None and np.array_equal(out.proba, proba[k])
    report = parity.compare(scores, want, proba)
    assert report.passed and report.max_abs_diff == 0.0
    assert scores.header() == [
        "prediction_y0",
        "proba_y0_no",
        "proba_y0_yes",
        "prediction_y1",
        "proba_y1_high",
        "proba_y1_low",
        "proba_y1_mid",
    ]


LINEAR: list[Callable[[], Any]] = [
    LinearRegression,
    Ridge,
    lambda: RidgeCV(alphas=(0.1, 1.0, 10.0)),
    lambda: Lasso(alpha=0.05),
    lambda: ElasticNet(alpha=0.05, l1_ratio=0.3),
    lambda: MultiTaskLasso(alpha=0.05),
    lambda: MultiTaskElasticNet(alpha=0.05, l1_ratio=0.7),
    lambda: MultiTaskLassoCV(cv=3),
    lambda: MultiTaskElasticNetCV(cv=3, l1_ratio=(0.2, 0.8)),
    lambda: RANSACRegressor(random_state=0),
    lambda: make_pipeline(StandardScaler(), Ridge(alpha=0.5)),
]


@pytest.mark.parametrize("make", LINEAR)
def test_linear_regressors_score_every_target_within_the_bar(make: Callable[[], Any]) -> None:
    X, y = dataset("regression")
    Y = _targets(X, y)
    est = make().fit(X, Y)
    scores = _multi_scores(compile_scorer(est), X)
    got, want = _values(scores), est.predict(X)
    assert not parity.disagreeing(got, want).any(), np.abs(got - want).max()
    assert np.abs(got - want).max() <= max(TOL, 1e-12 * np.abs(want).max())
    report = parity.compare(scores, want, None)
    assert report.passed, report.problems


def test_a_wrong_target_is_named_by_the_parity_check() -> None:
    X, y = dataset("regression")
    est = Ridge().fit(X, _targets(X, y))
    scores = _multi_scores(compile_scorer(est), X)
    want = est.predict(X)
    want[3, 1] += 1e-6
    report = parity.compare(scores, want, None)
    assert not report.passed
    assert report.problems[0].startswith("target 'y1': row 3: value")


def test_target_names_name_the_columns() -> None:
    X, y = dataset("regression")
    est = Ridge().fit(X, _targets(X, y))
    compiled = compile_estimators(est, target_names=["price", "rent", "tax"])
    plan = compiled.load()
    assert "output" not in compiled.header
    assert [o["name"] for o in compiled.header["outputs"]] == ["price", "rent", "tax"]
    assert output_columns(plan.output) == ["price", "rent", "tax"]
    assert compiled.header["format_version"] == f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}"
    with pytest.raises(UnsupportedEstimatorError, match="3 targets but 2 target names"):
        compile_estimators(est, target_names=["price", "rent"])


def test_single_output_plans_keep_their_output() -> None:
    X, y = dataset("regression")
    compiled = compile_estimators(Ridge().fit(X, y))
    assert "outputs" not in compiled.header and compiled.header["output"]["task"] == "regression"
    assert compiled.load().output.outputs == ()
    # a y of shape (n, 1) is one target, as before
    one = compile_estimators(DecisionTreeRegressor(max_depth=3).fit(X, y.reshape(-1, 1)))
    assert "output" in one.header


def test_csv_and_json_rows() -> None:
    X, y = dataset("regression")
    est = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, _targets(X, y))
    scorer = compile_scorer(est)
    scores = _multi_scores(scorer, X[:3])
    want = est.predict(X[:3])
    lines = scores.to_csv().splitlines()
    assert [list(map(float, line.split(","))) for line in lines] == want.tolist()
    assert scores.csv_texts() == lines
    assert [[float(c) for c in row] for row in scores.rows()] == want.tolist()
    assert scores.record(1) == {
        "prediction": dict(zip(("y0", "y1", "y2"), want[1].tolist(), strict=True))
    }
    assert scores.labels()[2] == tuple(want[2].tolist())
    assert scorer.empty_header() == ["y0", "y1", "y2"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.lists(
            st.one_of(st.floats(-4, 4, allow_nan=False), st.just(float("nan"))),
            min_size=6,
            max_size=6,
        ),
        min_size=1,
        max_size=20,
    )
)
def test_forest_targets_match_on_any_rows(rows: list[list[float]]) -> None:
    scorer, est = _nan_forest()
    X = np.asarray(rows, dtype=np.float64)
    assert np.array_equal(_values(scorer.score_rows(X)), est.predict(X))  # type: ignore[arg-type]


_CACHE: dict[str, Any] = {}


def _nan_forest() -> tuple[Scorer, Any]:
    if "forest" not in _CACHE:
        X, y = dataset("regression")
        Y = _targets(X, y)
        X = with_nan(X[:, :6], 0.1)
        est = RandomForestRegressor(n_estimators=8, random_state=1).fit(X, Y)
        _CACHE["forest"] = (compile_scorer(est), est)
    return _CACHE["forest"]


# -- the plan reader ---------------------------------------------------------------


def _multi_header() -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    X, y = dataset("regression")
    compiled = compile_estimators(Ridge().fit(X, _targets(X, y)))
    return copy.deepcopy(compiled.header), compiled.arrays


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.update(output=h["outputs"][0]), "'output' .one target. or 'outputs', not"),
        (lambda h: h.update(outputs=h["outputs"][:1]), "lists 1 target.s.; a multi-output plan"),
        (lambda h: h["outputs"][1].update(name="y0"), "output column.s. 'y0' repeat"),
        (lambda h: h["outputs"][1].update(name="x0"), "'x0' repeat or share an input's name"),
        (lambda h: h["outputs"][1].update(name="a,b"), "target name 'a,b' must be non-empty"),
        (lambda h: h["outputs"][1].update(name="error"), "'error' repeat or share .* app's"),
        (lambda h: h["outputs"][1].update(name=""), "target name '' must be non-empty"),
        (lambda h: h["outputs"][1].pop("name"), r"outputs\[1\]: 'name' is missing"),
        (lambda h: h["outputs"][0].update(decision=[10**6]), "outside the workspace"),
        (
            lambda h: h["outputs"][0].update(
                task="classification", label_rule="argmax", classes=[0]
            ),
            "mix tasks",
        ),
        (
            lambda h: h["outputs"][0].update(extras=[{"name": "e", "cols": [0]}]),
            "targets have no extra outputs",
        ),
        (lambda h: h.update(outputs={"y0": 1}), "'outputs' must be a list"),
    ],
)
def test_reader_refuses_malformed_outputs(
    edit: Callable[[dict[str, Any]], Any], message: str
) -> None:
    header, arrays = _multi_header()
    edit(header)
    with pytest.raises(PlanError, match=message):
        parse_plan(header, arrays)


def test_reader_of_a_single_output_ignores_nothing() -> None:
    """A 2.3 multi-output plan has no ``output``: a reader of one output refuses it
    instead of scoring its first target (what a 2.2 reader does, by the same check)."""
    header, arrays = _multi_header()
    del header["outputs"]
    with pytest.raises(PlanError, match="'output' is missing"):
        parse_plan(header, arrays)


def test_multi_output_refused_where_one_output_is_read() -> None:
    """A wrapper that reads one output refuses a multi-output member, saying why."""
    from sklearn.ensemble import VotingRegressor

    X, y = dataset("regression")
    Y = _targets(X, y)
    plain = Scorer(compile_estimators(Ridge().fit(X, Y)).load(), kernels())
    assert isinstance(plain.score_rows(X[:2]), MultiScores)
    voting = VotingRegressor([("a", Ridge()), ("b", Lasso())]).fit(X, y)
    voting.estimators_ = [Ridge().fit(X, Y), Lasso().fit(X, Y)]
    with pytest.raises(UnsupportedEstimatorError):
        compile_estimators(voting)


# -- k-neighbours and MLPs ----------------------------------------------------------


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("algorithm", ["kd_tree", "brute"])
def test_knn_classifier_votes_per_target(weights: str, algorithm: str) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    X, _ = dataset("regression")
    est = KNeighborsClassifier(7, weights=weights, algorithm=algorithm).fit(X, _labels(X))
    scores = _multi_scores(compile_scorer(est), X)
    ref = parity.reference_model(est)
    report = parity.compare(scores, ref.predict(X), ref.predict_proba(X))
    assert report.passed and report.max_abs_diff == 0.0, report.problems


@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("k", [5, 12])
def test_knn_regressor_means_per_target(weights: str, k: int) -> None:
    from sklearn.neighbors import KNeighborsRegressor

    X, y = dataset("regression")
    est = KNeighborsRegressor(k, weights=weights, algorithm="kd_tree").fit(X, _targets(X, y))
    got, want = _values(_multi_scores(compile_scorer(est), X)), est.predict(X)
    assert not parity.disagreeing(got, want).any()
    if k <= 8:  # up to 8 values numpy's pairwise sum is the sum in order: to the bit
        assert np.array_equal(got, want)


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic"])
def test_mlp_regressor_every_target(activation: str) -> None:
    from sklearn.neural_network import MLPRegressor

    X, y = dataset("regression")
    Y = _targets(X, y) / 100
    est = MLPRegressor(
        hidden_layer_sizes=(12, 7), activation=activation, max_iter=300, random_state=0
    )
    est.fit(X, Y)
    scorer = compile_scorer(est)
    for rows in (X[:40], np.repeat(X, 3, axis=0)):  # the compiled sum, then BLAS's product
        got = _values(scorer.score_rows(np.ascontiguousarray(rows)))  # type: ignore[arg-type]
        assert not parity.disagreeing(got, est.predict(rows)).any()


def test_mlp_multilabel_classifier() -> None:
    from sklearn.neural_network import MLPClassifier

    X, _ = dataset("regression")
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0.5, X[:, 3] < -0.2]).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(10,), max_iter=400, random_state=0).fit(X, Y)
    scorer = compile_scorer(est)
    scores = _multi_scores(scorer, X)
    labels, p = est.predict(X), est.predict_proba(X)
    report = parity.compare(scores, labels, p)
    assert report.passed, report.problems
    for k, out in enumerate(scores.outputs):
        assert out.classes == (0, 1) and out.labels() == labels[:, k].tolist()
        assert out.proba is not None and not parity.disagreeing(out.proba[:, 1], p[:, k]).any()
    assert scores.header()[:3] == ["prediction_y0", "proba_y0_0", "proba_y0_1"]


# -- MultiOutputRegressor / MultiOutputClassifier --------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        lambda: Ridge(alpha=0.3),
        lambda: DecisionTreeRegressor(max_depth=5, random_state=0),
        lambda: make_pipeline(StandardScaler(), Lasso(alpha=0.01)),
    ],
)
def test_multi_output_regressor_one_member_per_target(member: Callable[[], Any]) -> None:
    from sklearn.multioutput import MultiOutputRegressor

    X, y = dataset("regression")
    est = MultiOutputRegressor(member()).fit(X, _targets(X, y))
    scores = _multi_scores(compile_scorer(est), X)
    report = parity.compare(scores, est.predict(X), None)
    assert report.passed, report.problems


def test_multi_output_classifier_labels_and_probabilities() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    X, _ = dataset("regression")
    for member in (LogisticRegression(), RandomForestClassifier(n_estimators=5, random_state=0)):
        est = MultiOutputClassifier(member).fit(X, _labels(X))
        scores = _multi_scores(compile_scorer(est), X)
        report = parity.compare(scores, est.predict(X), est.predict_proba(X))
        assert report.passed, report.problems
        assert scores.extras == () and "decision_function" not in ",".join(scores.header())


def test_multi_output_members_that_do_not_compile_are_refused() -> None:
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.multioutput import MultiOutputRegressor, RegressorChain

    X, y = dataset("regression")
    Y = _targets(X, y)
    with pytest.raises(UnsupportedEstimatorError, match="GaussianProcessRegressor"):
        compile_estimators(MultiOutputRegressor(GaussianProcessRegressor()).fit(X[:50], Y[:50]))
    with pytest.raises(UnsupportedEstimatorError, match="RegressorChain"):
        compile_estimators(RegressorChain(Ridge()).fit(X, Y))
    nested = MultiOutputRegressor(Ridge()).fit(X, Y)
    nested.estimators_[1] = Ridge().fit(X, Y)  # a member with several targets
    with pytest.raises(UnsupportedEstimatorError, match=r"estimators_\[1\] \(Ridge\) does not"):
        compile_estimators(nested)
