"""VotingClassifier / VotingRegressor compile from their members' own converters.

Identical labels, probabilities and values within 1e-9: soft and hard voting, weights
(including integer and zero weights), members of every kind (linear, trees, boosting,
neighbours, naive Bayes, SVMs, pipelines), dropped members, string classes, NaN where the
members take it (and refused where a member refuses it, as scikit-learn raises), extreme
values, and refusals where a member does not compile.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.plan import PlanError, parse_plan
from tests._data import dataset, with_nan
from tests._parity import (
    TOL,
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    sklearn_predict,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

MEASURED: dict[str, float] = {}


def classifiers() -> list[tuple[str, object]]:
    return [
        ("lr", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))),
        ("tree", DecisionTreeClassifier(max_depth=4, random_state=0)),
        ("rf", RandomForestClassifier(n_estimators=15, max_depth=5, random_state=0)),
        ("knn", KNeighborsClassifier(7)),
        ("nb", GaussianNB()),
        ("gb", GradientBoostingClassifier(n_estimators=10, random_state=0)),
    ]


def record(key: str, model, X, ours) -> None:
    labels, proba = sklearn_predict(model, None, X)
    theirs = proba if proba is not None else labels
    mine = ours.proba if proba is not None else ours.values
    if mine is None:
        return
    diff = np.abs(np.asarray(mine, dtype=float) - np.asarray(theirs, dtype=float))
    MEASURED[key] = max(MEASURED.get(key, 0.0), float(np.nanmax(diff)))


@pytest.mark.parametrize("voting", ["soft", "hard"])
@pytest.mark.parametrize("weights", [None, [1, 2, 0.5, 3, 1, 1], [0, 1, 1, 0, 2, 1]])
@pytest.mark.parametrize("data", ["binary", "multi3", "iris"])
def test_voting_classifier(voting: str, weights, data: str) -> None:
    X, y = dataset(data)
    model = VotingClassifier(classifiers(), voting=voting, weights=weights).fit(X, y)
    scorer = compile_scorer(model)
    ours = assert_parity(model, None, X, scorer=scorer, context="training data")
    record(f"VotingClassifier {voting}", model, X, ours)
    rng = np.random.default_rng(3)
    other = X[:60] + rng.normal(0, 0.5, (60, X.shape[1])) * X.std(axis=0)
    ours = assert_parity(model, None, other, scorer=scorer, context="perturbed")
    record(f"VotingClassifier {voting}", model, other, ours)
    assert (ours.proba is None) == (voting == "hard")


def test_hard_voting_with_binary_rules_and_ties() -> None:
    """Members whose labels come from a decision sign (LinearSVC, SVC) and even splits."""
    X, y = dataset("binary")
    members = [
        ("svc", make_pipeline(StandardScaler(), LinearSVC())),
        ("rbf", SVC(gamma=0.1)),
        ("tree", DecisionTreeClassifier(max_depth=2, random_state=0)),
        ("lr", LogisticRegression(max_iter=1000)),
    ]
    for weights in (None, [1, 1, 1, 1], [2, 1, 1, 0]):
        model = VotingClassifier(members, voting="hard", weights=weights).fit(X, y)
        ours = assert_parity(model, None, X)
        assert ours.proba is None


def test_string_classes_and_dropped_members() -> None:
    X, y = dataset("iris")
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    members = classifiers()
    members[2] = ("rf", "drop")
    for voting in ("soft", "hard"):
        model = VotingClassifier(members, voting=voting, weights=[1, 2, 9, 1, 1, 1])
        model.fit(X, names)
        scorer = compile_scorer(model)
        assert_parity(model, None, X, scorer=scorer)
        assert set(
            scorer.score_records(
                [dict(zip(scorer.plan.input_names, map(float, X[0]), strict=True))]
            ).labels()
        ) <= set(names)


@pytest.mark.parametrize("weights", [None, [3, 1, 0.25, 2, 1]])
@pytest.mark.parametrize("data", ["regression", "diabetes"])
def test_voting_regressor(weights, data: str) -> None:
    X, y = dataset(data)
    members = [
        ("lr", LinearRegression()),
        ("ridge", make_pipeline(StandardScaler(), Ridge(alpha=3.0))),
        ("tree", DecisionTreeRegressor(max_depth=5, random_state=0)),
        ("rf", RandomForestRegressor(n_estimators=10, max_depth=4, random_state=0)),
        ("knn", KNeighborsRegressor(5, weights="distance")),
    ]
    model = VotingRegressor(members, weights=weights).fit(X, y)
    scorer = compile_scorer(model)
    ours = assert_parity(model, None, X, scorer=scorer)
    record("VotingRegressor", model, X, ours)
    for value in (0.0, 1e6, -1e6, 1e100):
        rows = X[:5].copy()
        rows[:, 1] = value
        assert_same_outcome(model, None, rows, scorer=scorer, context=f"x1={value}")


def test_nan_taken_where_every_member_takes_it() -> None:
    X, y = dataset("multi3")
    Xn = with_nan(X)
    members = [
        ("hgb", HistGradientBoostingClassifier(max_iter=15, random_state=0)),
        ("tree", DecisionTreeClassifier(max_depth=5, random_state=0)),
    ]
    model = VotingClassifier(members, voting="soft", weights=[2, 1]).fit(Xn, y)
    ours = assert_parity(model, None, Xn)
    record("VotingClassifier soft", model, Xn, ours)
    reg = VotingRegressor(
        [("hgb", HistGradientBoostingRegressor(max_iter=15)), ("tree", DecisionTreeRegressor())]
    ).fit(Xn, X[:, 0] * 2.0)
    assert_parity(reg, None, Xn)


def test_nan_refused_where_a_member_refuses_it() -> None:
    X, y = dataset("multi3")
    model = VotingClassifier(classifiers()[:3], voting="soft").fit(X, y)
    scorer = compile_scorer(model)
    for bad in (math.nan, math.inf, -math.inf):
        rows = X[:3].copy()
        rows[1, 2] = bad
        assert_refused(model, None, rows, scorer=scorer)


def test_members_that_do_not_compile_are_refused_by_name() -> None:
    X, y = dataset("binary")
    from sklearn.gaussian_process import GaussianProcessClassifier

    model = VotingClassifier(
        [("lr", LogisticRegression()), ("odd", GaussianProcessClassifier())], voting="soft"
    ).fit(X[:80], y[:80])
    with pytest.raises(UnsupportedEstimatorError, match="GaussianProcessClassifier"):
        compile_estimators(model)
    soft = VotingClassifier([("lr", LogisticRegression()), ("svc", LinearSVC())], voting="hard")
    soft.fit(X, y)
    soft.voting = "soft"  # LinearSVC has no predict_proba
    with pytest.raises(UnsupportedEstimatorError, match="predict_proba"):
        compile_estimators(soft)


@pytest.mark.parametrize(
    ("kernel", "arg"), [("member_average", 2), ("hard_vote", 2), ("hard_vote", 3)]
)
def test_plan_checks_refuse_broken_ops(kernel: str, arg: int) -> None:
    X, y = dataset("binary")
    voting = "soft" if kernel == "member_average" else "hard"
    model = VotingClassifier(classifiers()[:3], voting=voting).fit(X, y)
    plan = compile_estimators(model)
    op = next(op for op in plan.header["ops"] if op["kernel"] == kernel)
    arrays = dict(plan.arrays)
    key = op["args"][arg]["array"]
    arrays[key] = np.ascontiguousarray(arrays[key][:-1])
    with pytest.raises(PlanError):
        parse_plan(plan.header, arrays)


# -- bagging ---------------------------------------------------------------------------

BAGGED_CLASSIFIERS = {
    "trees": lambda: _bagging_classifier(None),
    "features": lambda: _bagging_classifier(
        DecisionTreeClassifier(max_depth=4), max_features=0.5, bootstrap_features=True
    ),
    "logistic": lambda: _bagging_classifier(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)), max_features=3
    ),
    "knn": lambda: _bagging_classifier(KNeighborsClassifier(5), max_samples=0.7),
    "nb": lambda: _bagging_classifier(GaussianNB(), max_features=0.6, bootstrap=False),
}


def _bagging_classifier(member, **kw):
    from sklearn.ensemble import BaggingClassifier

    return BaggingClassifier(member, n_estimators=9, random_state=1, **kw)


@pytest.mark.parametrize("name", list(BAGGED_CLASSIFIERS))
@pytest.mark.parametrize("data", ["binary", "multi3"])
def test_bagging_classifier(name: str, data: str) -> None:
    X, y = dataset(data)
    model = BAGGED_CLASSIFIERS[name]().fit(X, y)
    scorer = compile_scorer(model)
    ours = assert_parity(model, None, X, scorer=scorer, context="training data")
    record("BaggingClassifier", model, X, ours)
    rng = np.random.default_rng(4)
    other = X[:60] + rng.normal(0, 0.5, (60, X.shape[1])) * X.std(axis=0)
    ours = assert_parity(model, None, other, scorer=scorer, context="perturbed")
    record("BaggingClassifier", model, other, ours)


@pytest.mark.parametrize("max_features", [1.0, 0.5, 2])
def test_bagging_regressor(max_features) -> None:
    from sklearn.ensemble import BaggingRegressor

    X, y = dataset("regression")
    for member in (DecisionTreeRegressor(max_depth=5), Ridge(alpha=2.0), KNeighborsRegressor(4)):
        model = BaggingRegressor(
            member, n_estimators=8, max_features=max_features, bootstrap_features=True,
            random_state=2,
        ).fit(X, y)  # fmt: skip
        scorer = compile_scorer(model)
        ours = assert_parity(model, None, X, scorer=scorer)
        record("BaggingRegressor", model, X, ours)
        for value in (0.0, 1e8, -1e8):
            rows = X[:5].copy()
            rows[:, 0] = value
            assert_same_outcome(model, None, rows, scorer=scorer, context=f"x0={value}")


def test_bagging_nan_where_members_take_it_and_string_classes() -> None:
    from sklearn.ensemble import BaggingClassifier

    X, y = dataset("iris")
    Xn = with_nan(X)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = BaggingClassifier(
        HistGradientBoostingClassifier(max_iter=10), n_estimators=4, max_features=3,
        random_state=0,
    ).fit(Xn, names)  # fmt: skip
    assert_parity(model, None, Xn)
    refusing = BaggingClassifier(GaussianNB(), n_estimators=4, random_state=0).fit(X, names)
    scorer = compile_scorer(refusing)
    rows = X[:3].copy()
    rows[1, 0] = math.nan
    assert_refused(refusing, None, rows, scorer=scorer)


def test_bagging_member_missing_a_class_or_probabilities_is_refused() -> None:
    from sklearn.ensemble import BaggingClassifier

    X, y = dataset("iris")
    y = y.copy()
    y[:3] = 3  # a rare class: some bootstrap samples miss it (KNN: no sample_weight)
    model = BaggingClassifier(
        KNeighborsClassifier(1), n_estimators=20, max_samples=0.1, random_state=0
    ).fit(X, y)
    assert any(len(m.classes_) < 4 for m in model.estimators_)
    with pytest.raises(UnsupportedEstimatorError, match="without every class"):
        compile_estimators(model)
    hard = BaggingClassifier(LinearSVC(), n_estimators=3, random_state=0).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match="predict_proba"):
        compile_estimators(hard)


# -- stacking --------------------------------------------------------------------------


def _stacking_members() -> list[tuple[str, object]]:
    return [
        ("lr", make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))),
        ("rf", RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)),
        ("svc", make_pipeline(StandardScaler(), LinearSVC())),  # decision_function
        ("gb", GradientBoostingClassifier(n_estimators=8, random_state=0)),
    ]


@pytest.mark.parametrize("passthrough", [False, True])
@pytest.mark.parametrize("stack_method", ["auto", "decision_function"])
@pytest.mark.parametrize("data", ["binary", "multi3"])
def test_stacking_classifier(passthrough: bool, stack_method: str, data: str) -> None:
    from sklearn.ensemble import StackingClassifier

    X, y = dataset(data)
    members = _stacking_members()
    if stack_method == "decision_function":
        members = [m for m in members if m[0] != "rf"]
    for final in (LogisticRegression(max_iter=1000), DecisionTreeClassifier(max_depth=3)):
        model = StackingClassifier(
            members, final_estimator=final, stack_method=stack_method,
            passthrough=passthrough, cv=3,
        ).fit(X, y)  # fmt: skip
        scorer = compile_scorer(model)
        ours = assert_parity(model, None, X, scorer=scorer, context="training data")
        record("StackingClassifier", model, X, ours)


def test_stacking_classifier_string_classes_and_regressor_members() -> None:
    from sklearn.ensemble import StackingClassifier

    X, y = dataset("iris")
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = StackingClassifier(
        [("nb", GaussianNB()), ("knn", KNeighborsClassifier(5)), ("drop", "drop")], cv=3
    ).fit(X, names)
    ours = assert_parity(model, None, X)
    assert set(ours.labels()) == set(names)
    hard = StackingClassifier([("svc", LinearSVC())], stack_method="predict", cv=3).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match="'predict'"):
        compile_estimators(hard)


@pytest.mark.parametrize("passthrough", [False, True])
def test_stacking_regressor(passthrough: bool) -> None:
    from sklearn.ensemble import StackingRegressor

    X, y = dataset("diabetes")
    members = [
        ("ridge", Ridge(alpha=1.0)),
        ("tree", DecisionTreeRegressor(max_depth=4, random_state=0)),
        ("knn", KNeighborsRegressor(7)),
    ]
    for final in (None, RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0)):
        model = StackingRegressor(
            members, final_estimator=final, passthrough=passthrough, cv=3
        ).fit(X, y)
        scorer = compile_scorer(model)
        ours = assert_parity(model, None, X, scorer=scorer)
        record("StackingRegressor", model, X, ours)
        rows = X[:5].copy()
        rows[:, 2] = 1e6
        assert_same_outcome(model, None, rows, scorer=scorer)
        rows[1, 0] = math.nan
        assert_refused(model, None, rows, scorer=scorer)


# -- calibration -----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
@pytest.mark.parametrize("ensemble", [True, False])
@pytest.mark.parametrize("data", ["binary", "multi3"])
def test_calibrated_classifier(method: str, ensemble: bool, data: str) -> None:
    from sklearn.calibration import CalibratedClassifierCV

    X, y = dataset(data)
    bases = (
        make_pipeline(StandardScaler(), LinearSVC()),  # decision_function
        GaussianNB(),  # predict_proba
        RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0),
        LogisticRegression(max_iter=1000),
    )
    rng = np.random.default_rng(6)
    far = X[:40] * 3.0 + rng.normal(0, 2.0, (40, X.shape[1]))  # beyond the thresholds
    for base in bases:
        model = CalibratedClassifierCV(base, method=method, ensemble=ensemble, cv=3)
        model.fit(X, y)
        scorer = compile_scorer(model)
        for rows, what in ((X, "training data"), (far, "far rows")):
            ours = assert_parity(model, None, rows, scorer=scorer, context=what)
            record(f"CalibratedClassifierCV {method}", model, rows, ours)


def test_calibrated_classifier_string_classes_and_refusals() -> None:
    from sklearn.calibration import CalibratedClassifierCV

    X, y = dataset("iris")
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = CalibratedClassifierCV(GaussianNB(), method="isotonic", cv=3).fit(X, names)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    rows = X[:3].copy()
    rows[0, 1] = math.nan
    assert_refused(model, None, rows, scorer=scorer)
    # GaussianNB's probabilities at 1e300 are NaN: the isotonic calibrators refuse them
    # (sigmoid ones pass NaN on, and so does the plan)
    far = X[:4].copy()
    far[1, 0] = 1e300
    for method, ensemble in (("isotonic", False), ("isotonic", True), ("sigmoid", False)):
        model = CalibratedClassifierCV(GaussianNB(), method=method, ensemble=ensemble, cv=3)
        model.fit(X, names)
        if method == "isotonic":
            assert_refused(model, None, far, scorer=compile_scorer(model))
        else:
            assert_parity(model, None, far, scorer=compile_scorer(model))
    temp = CalibratedClassifierCV(GaussianNB(), method="temperature", cv=3).fit(X, names)
    with pytest.raises(UnsupportedEstimatorError, match="temperature"):
        compile_estimators(temp)


def test_zzz_report_measured_differences() -> None:
    print("\nvoting ensembles, largest differences vs scikit-learn:", MEASURED)
    assert all(v <= TOL for v in MEASURED.values())
