"""ExtraTree(s) classifiers and regressors compile to plans that score exactly as scikit-learn.

Extra trees share the node tables of DecisionTree / RandomForest (``forest``
kernel). Their NaN rules in scikit-learn 1.9.1: a single ExtraTree accepts NaN
only with ``splitter="random"`` (its default; ``__sklearn_tags__``), forests of
extra trees always use random splitters, and NaN is refused in sparse input.
Trained with NaN, each split sends NaN by its learned ``missing_go_to_left``.

This module also holds the helpers the other tree-family test files reuse
(data sets, NaN rows, extreme rows, comparing extra outputs such as
``decision_function``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor

from bundler import parity
from bundler.compiler import CompiledPlan, compile_estimators
from bundler.compiler.converters.trees import tree_table
from mlbundle_runtime.plan import PlanError
from mlbundle_runtime.scorer import Scorer, Scores
from tests._data import dataset, with_nan
from tests._parity import (
    assert_parity,
    assert_probes_catch,
    assert_refused,
    assert_same_outcome,
    compare,
    compile_scorer,
    f32_neighbours,
    kernels,
    mutated,
    replace,
    sklearn_predict,
    to_records,
    written_plan,
)

F32_MAX = float(np.finfo(np.float32).max)
#: float64 values just past float32's range: the first still rounds to F32_MAX,
#: the second is the halfway point, which rounds to infinity (scikit-learn refuses it).
JUST_ABOVE_F32_MAX = float(np.nextafter(F32_MAX + 2.0**103, 0.0))
F32_OVERFLOW_TIE = F32_MAX + 2.0**103
#: accepted by every float32-casting model; the second tuple overflows float32.
FINITE_EXTREMES = (0.0, -0.0, F32_MAX, -F32_MAX, JUST_ABOVE_F32_MAX, -JUST_ABOVE_F32_MAX, 1e-300)
OVERFLOWING = (1e300, -1e300, math.inf, -math.inf, F32_OVERFLOW_TIE, 1e39)

HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


pytestmark = pytest.mark.usefixtures("quiet_sklearn")


# -- shared helpers ------------------------------------------------------------------


def nan_rows(X: np.ndarray, n: int = 30) -> np.ndarray:
    """``n`` rows of ``X`` with feature f missing, for every f in turn, plus an all-NaN row."""
    blocks = []
    for f in range(X.shape[1]):
        block = np.array(X[:n], dtype=np.float64)
        block[:, f] = np.nan
        blocks.append(block)
    return np.vstack([*blocks, np.full((1, X.shape[1]), np.nan)])


def value_rows(X: np.ndarray, values: Iterable[float], features: Sequence[int]) -> np.ndarray:
    """Rows of ``X`` with one feature (of ``features``) set to each value."""
    rows = []
    for f in features:
        for v in values:
            row = np.array(X[len(rows) % len(X)], dtype=np.float64)
            row[f] = v
            rows.append(row)
    return np.array(rows)


def splits(
    trees: Iterable[Any], features: Sequence[Sequence[int]] | None = None
) -> list[tuple[int, float]]:
    """(input feature, threshold) of every finite split of scikit-learn ``Tree`` objects."""
    out = set()
    for k, t in enumerate(trees):
        for node in np.flatnonzero(t.children_left >= 0):
            thr = float(t.threshold[node])
            f = int(t.feature[node])
            if features is not None:
                f = int(features[k][f])
            if math.isfinite(thr):
                out.add((f, thr))
    return sorted(out)


def probes(
    split_list: list[tuple[int, float]],
    base: np.ndarray,
    limit: int = 200,
    float64_steps: bool = False,
) -> np.ndarray:
    """Rows of ``base`` with one feature at each threshold and one float32 step either side.

    ``float64_steps`` adds the float64 neighbours too (for models that compare in
    float64, where those are the sharp points).
    """
    if len(split_list) > limit:
        pick = np.linspace(0, len(split_list) - 1, limit).round().astype(int)
        split_list = [split_list[i] for i in pick]
    rows = []
    for k, (f, thr) in enumerate(split_list):
        values = [thr, *f32_neighbours(np.array([thr]))]
        if float64_steps:
            values += [np.nextafter(thr, -np.inf), np.nextafter(thr, np.inf)]
        for v in values:
            row = np.array(base[k % len(base)], dtype=np.float64)
            row[f] = v
            rows.append(row)
    return np.array(rows)


def sklearn_extras(est: Any, X: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(est, name)(X), dtype=np.float64) for name in names}


def compare_extras(
    ours: Scores, expected: dict[str, np.ndarray], labels: dict[str, tuple], context: str = ""
) -> float:
    """Extra outputs equal scikit-learn's (``bundler.parity``'s rule) and carry the right labels.

    Returns the largest absolute difference seen.
    """
    got = {extra.name: (extra, values) for extra, values in ours.extras}
    assert set(got) == set(expected), (sorted(got), sorted(expected))
    worst = 0.0
    for name, want in expected.items():
        extra, values = got[name]
        want2 = want.reshape(len(values), -1)
        assert values.shape == want2.shape, (name, values.shape, want2.shape)
        assert extra.labels == labels[name], (name, extra.labels, labels[name])
        result = parity.compare_arrays(values, want2, what=name)  # the build's own rule
        assert not result.problems, (
            f"{context}: {name} differs on {len(result.bad_rows)} row(s):\n  "
            + "\n  ".join(result.problems)
        )
        worst = max(worst, result.max_abs_diff)
    return worst


def assert_full_parity(
    est: Any,
    X: Any,
    scorer: Scorer,
    extras: Sequence[str] = (),
    labels: dict[str, tuple] | None = None,
    context: str = "",
) -> Scores:
    """predict / predict_proba (``assert_parity``) plus every extra output named."""
    ours = assert_parity(est, None, X, scorer=scorer, context=context)
    if extras:
        compare_extras(ours, sklearn_extras(est, X, extras), labels or {}, context)
    else:
        assert ours.extras == ()
    return ours


def assert_outcome(
    est: Any,
    X: Any,
    scorer: Scorer,
    extras: Sequence[str] = (),
    labels: dict[str, tuple] | None = None,
    context: str = "",
) -> bool:
    """Both refuse, or both score identically (extras included). True when both accepted."""
    if not assert_same_outcome(est, None, X, scorer=scorer, context=context):
        return False
    assert_full_parity(est, X, scorer, extras, labels, context)
    return True


def assert_corruption_refused(
    compiled: CompiledPlan, kernel: str, arg: int, change: Callable[[Any], Any], match: str
) -> None:
    """The plan reader's structural check refuses the changed plan (the kernels have no
    bounds checks of their own)."""
    compiled.load()  # the intact plan is fine
    with pytest.raises(PlanError, match=match):
        mutated(compiled, kernel, arg, change, last=True).load()


def _set(index: int, value: Any) -> Callable[[np.ndarray], np.ndarray]:
    def change(a: np.ndarray) -> np.ndarray:
        a.reshape(-1)[index] = value
        return a

    return change


# -- extra trees -------------------------------------------------------------------

CLASSIFICATION = ("binary", "multi3", "breast_cancer", "iris")
REGRESSION = ("regression", "diabetes")

FACTORIES = {
    "ExtraTreeClassifier": lambda: ExtraTreeClassifier(random_state=0),
    "ExtraTreeClassifier(best)": lambda: ExtraTreeClassifier(splitter="best", random_state=0),
    "ExtraTreesClassifier": lambda: ExtraTreesClassifier(n_estimators=12, random_state=0),
    "ExtraTreeRegressor": lambda: ExtraTreeRegressor(random_state=0),
    "ExtraTreeRegressor(best)": lambda: ExtraTreeRegressor(splitter="best", random_state=0),
    "ExtraTreesRegressor": lambda: ExtraTreesRegressor(n_estimators=12, random_state=0),
}

CASES = [
    (kind, ds, nan)
    for kind in FACTORIES
    for ds in (REGRESSION if "Regressor" in kind else CLASSIFICATION)
    # splitter="best" extra trees refuse NaN even in training
    for nan in ((False,) if "best" in kind else (False, True))
]


def _case_id(case: tuple[str, str, bool]) -> str:
    kind, ds, nan = case
    return f"{kind}-{ds}-{'nan' if nan else 'complete'}"


@functools.cache
def fitted(kind: str, ds: str, nan: bool) -> tuple[Any, np.ndarray, Scorer]:
    X, y = dataset(ds)
    Xtrain = with_nan(X) if nan else X
    est = FACTORIES[kind]().fit(Xtrain, y)
    return est, Xtrain, compile_scorer(est)


def _trees(est: Any) -> list[Any]:
    return [t.tree_ for t in getattr(est, "estimators_", [est])]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_training_data(case: tuple[str, str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    assert_full_parity(est, Xtrain, scorer, context="training data")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_thresholds_and_float32_neighbours(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    rows = probes(splits(_trees(est)), X)
    assert len(rows) >= 3 * min(200, len(splits(_trees(est))))
    assert_full_parity(est, rows, scorer, context="threshold probes")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_nan_in_each_feature(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    rows = nan_rows(X)
    if "best" in case[0]:
        # ExtraTree*(splitter="best") does not take NaN: both refuse it.
        err = assert_refused(est, None, rows[:3], scorer=scorer)
        assert "missing value" in str(err)
    else:
        assert_full_parity(est, rows, scorer, context="NaN rows")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_extreme_values(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    last = X.shape[1] - 1
    assert_full_parity(est, value_rows(X, FINITE_EXTREMES, (0, last)), scorer)
    for v in OVERFLOWING:
        rows = np.array(X[:3], dtype=np.float64)
        rows[1, last] = v
        err = assert_refused(est, None, rows, scorer=scorer)
        assert "record 2" in str(err) and f"x{last}" in str(err)


def test_nan_trained_extra_trees_use_both_missing_directions() -> None:
    """Sanity for the NaN tests: missing_go_to_left takes both values in these models."""
    seen = set()
    for kind, ds, nan in CASES:
        if nan:
            est, _, _ = fitted(kind, ds, nan)
            for t in _trees(est):
                seen.update(t.missing_go_to_left[t.children_left >= 0].tolist())
    assert seen == {0, 1}


def test_missing_direction_matters_for_the_comparison() -> None:
    """A plan that sent NaN left everywhere would fail the NaN tests."""
    est, _, _ = fitted("ExtraTreesClassifier", "breast_cancer", True)
    X, _ = dataset("breast_cancer")
    rows = nan_rows(X, 10)
    compiled = compile_estimators(est)
    (op,) = [op for op in compiled.header["ops"] if op["kernel"] == "tree_sum"]
    key = op["args"][5]["array"]  # nodes: clear every NaN-goes-right flag
    compiled.arrays[key][:, 0] &= 0xFFFFFF
    wrong = Scorer(written_plan(compiled), kernels())
    labels, proba = sklearn_predict(est, None, rows)
    with pytest.raises(AssertionError):
        compare(wrong.score_records(to_records(wrong, rows)), labels, proba)


def test_probes_catch_a_plan_comparing_in_float64() -> None:
    """The probes are sharp: the plan with its float32 cast turned off (``cast32``, the
    last argument of ``tree_sum``) fails the build's parity check on them."""
    est, _, scorer = fitted("ExtraTreesRegressor", "diabetes", False)
    X, _ = dataset("diabetes")
    wrong = mutated(compile_estimators(est), "tree_sum", -1, replace(1, 0))
    assert_probes_catch(est, probes(splits(_trees(est)), X), scorer, wrong)


def test_extra_trees_string_classes_and_class_weight() -> None:
    X, y = dataset("multi3")
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    est = ExtraTreesClassifier(
        n_estimators=10,
        class_weight="balanced",
        bootstrap=True,
        max_samples=0.6,
        random_state=0,
    ).fit(with_nan(X), labels)
    scorer = compile_scorer(est)
    assert_full_parity(est, probes(splits(_trees(est)), X, limit=100), scorer)
    assert_full_parity(est, nan_rows(X, 10), scorer)


def test_single_leaf_extra_trees() -> None:
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    reg = ExtraTreeRegressor().fit(X, np.full(40, 2.5))
    assert_full_parity(reg, np.vstack([X, [[np.nan, 0.0, 1e30]]]), compile_scorer(reg))
    clf = ExtraTreesClassifier(n_estimators=3, random_state=0).fit(X, ["only"] * 40)
    assert_full_parity(clf, X, compile_scorer(clf))


def test_extra_trees_refuse_nan_after_sparse_output() -> None:
    """Trees take NaN only in dense input; here a ColumnTransformer hands them CSR."""
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame(
        {
            "code": pd.Series(rng.choice([f"k{i}" for i in range(30)], n), dtype=object),
            "a": rng.randn(n),
        }
    )
    y = (df["a"] > 0).astype(int).to_numpy()
    model = make_pipeline(
        ColumnTransformer(
            [
                ("c", OneHotEncoder(handle_unknown="ignore"), ["code"]),
                ("a", StandardScaler(), ["a"]),
            ]
        ),
        ExtraTreesClassifier(n_estimators=5, random_state=0),
    ).fit(df, y)
    assert_parity(model, None, df)
    q = df.head(3).copy()
    q.loc[1, "a"] = np.nan
    assert not assert_same_outcome(model, None, q)


def test_tree_table_lays_trees_end_to_end() -> None:
    """The shared node table: offsets, leaves at -1, feature maps, values in tree order."""
    X, y = dataset("regression")
    a = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, y).tree_
    b = DecisionTreeRegressor(max_depth=3, random_state=1).fit(X[:, [5, 2]], y).tree_
    table = tree_table([a, b], [a.value[:, 0, :], b.value[:, 0, :]], [np.arange(8), [5, 2]])
    n = a.node_count
    assert table.roots.tolist() == [0, n]
    assert table.value.shape == (n + b.node_count, 1)
    internal_b = b.children_left >= 0
    assert (table.left[n:][internal_b] == b.children_left[internal_b] + n).all()
    assert (table.left[n:][~internal_b] == -1).all() and (table.right[n:][~internal_b] == -1).all()
    assert (table.feature[n:][internal_b] == np.array([5, 2])[b.feature[internal_b]]).all()
    assert (table.feature[:n][a.children_left >= 0] == a.feature[a.children_left >= 0]).all()
    assert (table.threshold == np.concatenate([a.threshold, b.threshold])).all()


def test_compact_trees_walk_to_scikit_learns_leaves() -> None:
    """Breadth-first layout, siblings adjacent, self-looping leaves: ``depth`` steps
    from each root reach the leaf ``tree.apply`` reaches, NaN included."""
    X, y = dataset("binary")
    Xn = with_nan(X)
    est = RandomForestClassifier(n_estimators=4, random_state=0).fit(Xn, y)
    compiled = compile_estimators(est)
    (op,) = [op for op in compiled.header["ops"] if op["kernel"] == "tree_sum"]
    trees, nodes, thr, value = (compiled.arrays[a["array"]] for a in op["args"][4:8])
    assert trees.dtype == nodes.dtype == np.int32
    assert op["args"][8:] == [1.0, 4.0, 1]
    x32 = Xn.astype(np.float32).astype(np.float64)
    for k, tree in enumerate(est.estimators_):
        root, depth, first = trees[k]
        assert first == 0 and depth == tree.tree_.max_depth
        leaves = tree.apply(Xn)
        for i in range(len(Xn)):
            node = root
            for _ in range(depth):
                word, child = nodes[node]
                x = x32[i, word & 0xFFFFFF]
                node = child + int(x > thr[node]) + ((word >> 24) & int(np.isnan(x)))
            assert (value[node] == tree.tree_.value[leaves[i], 0, :]).all()


@pytest.mark.parametrize(
    "case",
    [("ExtraTreesClassifier", "breast_cancer", True), ("ExtraTreesRegressor", "diabetes", True)],
    ids=_case_id,
)
@HYPOTHESIS
@given(data=st.data())
def test_random_rows_around_thresholds(case: tuple[str, str, bool], data: Any) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    split_list = splits(_trees(est))
    rows = []
    for _ in range(data.draw(st.integers(1, 10), label="rows")):
        row = np.array(X[data.draw(st.integers(0, len(X) - 1), label="base")], dtype=np.float64)
        for _ in range(data.draw(st.integers(1, 4), label="features moved")):
            f, thr = split_list[data.draw(st.integers(0, len(split_list) - 1), label="split")]
            move = data.draw(st.sampled_from(["exact", "nan", -2, -1, 1, 2]), label="move")
            if move == "exact":
                row[f] = thr
            elif move == "nan":
                row[f] = math.nan
            else:
                v = np.float32(thr)
                for _ in range(abs(move)):
                    v = np.nextafter(v, np.float32(np.inf if move > 0 else -np.inf))
                row[f] = float(v)
        rows.append(row)
    assert_full_parity(est, np.array(rows), scorer)
