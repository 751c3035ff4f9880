"""Hyperparameter searches compile to their ``best_estimator_``'s plan, and the record
keeps what they searched.

GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV and HalvingRandomSearchCV over
pipelines and single estimators: labels, probabilities, values and extras
(``decision_function``) within the parity bar on the training data, with NaN where the
best estimator takes it, at extreme values; NaN refused where the best estimator refuses
it. A search that did not refit (``refit=False``) has nothing to predict with and is
refused with a one-line message saying what to do, at the top and inside a pipeline.
``bundle prepare`` of a search over the example's features writes ``model.search``
(grid, best parameters, best score) into a record that validates against the schema.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators, supported
from bundler.errors import UnsupportedEstimatorError
from bundler.record import search_record
from bundler.verify import record_schema, validate_record
from tests._data import with_nan
from tests._parity import (
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    parity_problems,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def classification() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(300, 6, n_informative=4, n_classes=3, random_state=3)


@functools.cache
def regression() -> tuple[np.ndarray, np.ndarray]:
    return make_regression(300, 6, n_informative=5, noise=4.0, random_state=3)


def _pipe_logreg() -> Pipeline:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


SEARCHES: dict[str, tuple[Any, str]] = {
    "grid-pipeline-logreg": (
        lambda: GridSearchCV(_pipe_logreg(), {"logisticregression__C": [0.01, 1.0, 100.0]}),
        "classification",
    ),
    "grid-estimator-choice": (
        lambda: GridSearchCV(
            Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]),
            [
                {"clf": [LinearSVC()], "clf__C": [0.1, 1.0]},
                {"clf": [LogisticRegression(max_iter=2000)], "clf__C": [1.0]},
            ],
        ),
        "classification",
    ),
    "grid-multimetric-refit-name": (
        lambda: GridSearchCV(
            Ridge(), {"alpha": [0.1, 10.0]}, scoring=["r2", "neg_mean_absolute_error"], refit="r2"
        ),
        "regression",
    ),
    "grid-refit-callable": (
        lambda: GridSearchCV(Ridge(), {"alpha": [0.1, 1.0, 10.0]}, refit=lambda results: 0),
        "regression",
    ),
    "random-hgb-nan": (
        lambda: RandomizedSearchCV(
            HistGradientBoostingClassifier(max_iter=15, random_state=0),
            {"learning_rate": stats.loguniform(0.03, 0.3), "max_depth": [2, 3]},
            n_iter=3,
            cv=3,
            random_state=0,
        ),
        "classification-nan",
    ),
    "halving-grid-imputer-ridge": (
        lambda: HalvingGridSearchCV(
            make_pipeline(SimpleImputer(), StandardScaler(), Ridge()),
            {"simpleimputer__strategy": ["mean", "median"], "ridge__alpha": [0.1, 1.0, 10.0]},
            cv=3,
        ),
        "regression-nan",
    ),
    "halving-random-tree": (
        lambda: HalvingRandomSearchCV(
            DecisionTreeRegressor(random_state=0),
            {"max_depth": stats.randint(2, 8), "min_samples_leaf": [1, 5]},
            cv=3,
            random_state=0,
        ),
        "regression",
    ),
}


def data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = classification() if kind.startswith("classification") else regression()
    return (with_nan(X, 0.1), y) if kind.endswith("-nan") else (X, y)


@functools.cache
def fitted(name: str) -> tuple[Any, np.ndarray, Any]:
    factory, kind = SEARCHES[name]
    X, y = data(kind)
    search = factory().fit(X, y)
    return search, X, compile_scorer(search)


@pytest.mark.parametrize("name", list(SEARCHES))
def test_training_data(name: str) -> None:
    search, X, scorer = fitted(name)
    assert parity_problems(search, None, X, scorer) == ()  # labels, proba and extras
    assert_parity(search, None, X, scorer=scorer, context=name)


@pytest.mark.parametrize("name", list(SEARCHES))
def test_the_plan_is_the_best_estimators(name: str) -> None:
    """Same kernels and arrays as compiling ``best_estimator_`` itself."""
    search, _, _ = fitted(name)
    ours, best = compile_estimators(search), compile_estimators(search.best_estimator_)
    assert [op["kernel"] for op in ours.header["ops"]] == [
        op["kernel"] for op in best.header["ops"]
    ]
    assert ours.header["output"] == best.header["output"]
    assert ours.arrays.keys() == best.arrays.keys()
    assert all(np.array_equal(ours.arrays[k], best.arrays[k]) for k in ours.arrays)
    origins = {op["origin"] for op in ours.header["ops"]}
    assert all("best_estimator_" in o for o in origins), origins


@pytest.mark.parametrize("name", list(SEARCHES))
def test_extreme_values_and_nan(name: str) -> None:
    """Extremes in one feature, and NaN: scored alike where the best estimator takes them,
    refused by both where it refuses them."""
    search, X, scorer = fitted(name)
    X = np.nan_to_num(X, nan=0.0)
    for v in (0.0, 5e-324, 3.4e38, -1e39, 1e300, math.nan):
        rows = X[:5].copy()
        rows[:, 2] = v
        assert_same_outcome(search, None, rows, scorer=scorer, context=f"{name}: x2={v!r}")


def test_nan_refused_where_the_best_estimator_refuses_it() -> None:
    search, X, scorer = fitted("grid-pipeline-logreg")
    rows = X[:3].copy()
    rows[1, 0] = math.nan
    err = assert_refused(search, None, rows, scorer=scorer)
    assert "record 2" in str(err) and "'x0'" in str(err)
    takes_nan, Xn, scorer_n = fitted("random-hgb-nan")
    assert np.isnan(Xn).any()
    assert_parity(takes_nan, None, Xn[:40], scorer=scorer_n)


def test_feature_names_come_from_the_search() -> None:
    X, y = classification()
    frame = pd.DataFrame(X, columns=[f"m{i}" for i in range(X.shape[1])])
    search = GridSearchCV(_pipe_logreg(), {"logisticregression__C": [0.1, 1.0]}).fit(frame, y)
    scorer = compile_scorer(search)
    assert list(scorer.plan.input_names) == list(frame.columns)
    assert_parity(search, None, frame, scorer=scorer)


def test_a_pipeline_ending_in_a_search() -> None:
    X, y = regression()
    model = make_pipeline(StandardScaler(), GridSearchCV(Ridge(), {"alpha": [0.1, 3.0]}))
    model.fit(X, y)
    assert_parity(model, None, X, scorer=compile_scorer(model))
    record = search_record(model)
    assert record is not None and record["best_params"] == model[-1].best_params_


# -- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [GridSearchCV, HalvingGridSearchCV])
def test_refit_false_is_refused(cls: type) -> None:
    X, y = classification()
    search = cls(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, refit=False).fit(X, y)
    with pytest.raises(AttributeError):
        search.predict(X)  # scikit-learn cannot predict either
    with pytest.raises(UnsupportedEstimatorError) as info:
        compile_estimators(search)
    message = str(info.value)
    assert "\n" not in message
    assert f"{cls.__name__} was fitted with refit=False" in message
    assert "no best_estimator_" in message and "refit=True" in message


def test_refit_false_inside_a_pipeline_names_its_step() -> None:
    X, y = regression()
    search = RandomizedSearchCV(
        Ridge(), {"alpha": stats.uniform(0.1, 5)}, n_iter=2, refit=False, random_state=0
    )
    model = make_pipeline(StandardScaler(), search).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match=r"RandomizedSearchCV \(model/.*refit"):
        compile_estimators(model)


def test_unfitted_search_is_refused() -> None:
    search = GridSearchCV(Ridge(), {"alpha": [1.0]})
    with pytest.raises(UnsupportedEstimatorError, match="GridSearchCV is not fitted"):
        compile_estimators(search)


def test_an_uncompilable_best_estimator_is_refused_by_name() -> None:
    X, y = regression()
    search = GridSearchCV(GaussianProcessRegressor(), {"alpha": [1e-10, 1e-2]}, cv=2).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match="GaussianProcessRegressor"):
        compile_estimators(search)


def test_a_multi_target_best_estimator_compiles_one_output_per_target() -> None:
    X, y = regression()
    search = GridSearchCV(Ridge(), {"alpha": [0.1, 1.0]}).fit(X, np.column_stack([y, 2 * y]))
    assert [o["name"] for o in compile_estimators(search).header["outputs"]] == ["y0", "y1"]
    scores = compile_scorer(search).score_rows(np.asarray(X, dtype=np.float64))
    got = np.column_stack([o.values for o in scores.outputs])
    assert np.abs(got - search.predict(X)).max() <= 1e-9


def test_registered_with_options() -> None:
    registered = {r.cls: r for r in supported()}
    for cls in (GridSearchCV, RandomizedSearchCV, HalvingGridSearchCV, HalvingRandomSearchCV):
        assert cls in registered and "best_estimator_" in registered[cls].options


# -- the record ---------------------------------------------------------------------------


def _search_schema_errors(value: Any) -> list[str]:
    from jsonschema import Draft202012Validator

    schema = record_schema()
    sub = {**schema["$defs"]["artifact"]["properties"]["search"], "$defs": schema["$defs"]}
    return [e.message for e in Draft202012Validator(sub).iter_errors(value)]


@pytest.mark.parametrize("name", list(SEARCHES))
def test_search_record(name: str) -> None:
    search, _, _ = fitted(name)
    record = search_record(search)
    assert record is not None
    json.dumps(record, allow_nan=False)  # plain JSON
    assert _search_schema_errors(record) == []
    assert record["class"].endswith(type(search).__name__)
    grid = hasattr(search, "param_grid")
    assert record["space_kind"] == ("param_grid" if grid else "param_distributions")
    assert record["candidates"] == len(search.cv_results_["params"])
    assert record["best_index"] == search.best_index_
    if callable(search.refit):
        assert record["best_score"] is None
    else:
        assert record["best_score"] == pytest.approx(search.best_score_, abs=0)
    assert set(record["best_params"]) == set(search.best_params_)


def test_search_record_describes_distributions_and_estimators() -> None:
    lr, hgb, tree = (
        search_record(fitted(n)[0])
        for n in ("grid-estimator-choice", "random-hgb-nan", "halving-random-tree")
    )
    assert lr is not None and hgb is not None and tree is not None
    assert hgb["space"]["learning_rate"] == "scipy.stats.loguniform(0.03, 0.3)"
    assert hgb["space"]["max_depth"] == [2, 3]
    assert tree["space"]["max_depth"] == "scipy.stats.randint(2, 8)"
    assert lr["space"][0]["clf"] == [
        {"class": "sklearn.svm._classes.LinearSVC", "params": LinearSVC().get_params()}
    ]
    assert lr["best_params"]["clf"]["class"].startswith("sklearn.")
    assert search_record(Ridge()) is None and search_record(_pipe_logreg()) is None


def test_search_record_schema_is_closed() -> None:
    record = search_record(fitted("grid-pipeline-logreg")[0])
    assert record is not None
    assert _search_schema_errors({**record, "extra": 1})
    assert _search_schema_errors({**record, "space_kind": "grid"})


def search_spec(work: Path, *, onedir_only: bool = False) -> tuple[Path, GridSearchCV]:
    """The example's spec with its model replaced by a GridSearchCV over a pipeline, fitted
    on the example's features, and an e2e set of that search's outputs."""
    import joblib

    from tests._packs import set_e2e, set_model, spec_text, train_module

    train = train_module()
    raw = train.load_raw(train.DATA_CSV)
    raw = raw[raw[train.TARGET].notna()].reset_index(drop=True)
    training, _confidence, e2e = train.split(raw)
    extractor = joblib.load(Path(train.__file__).parent / "artifacts" / "extractor.joblib")
    features = extractor.transform(train.to_features(training))
    search = GridSearchCV(_pipe_logreg(), {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=3)
    search.fit(features, training[train.TARGET].to_numpy(dtype=object))
    model_path = work / "model.joblib"
    sha = train.dump_joblib(search, model_path)
    inputs = e2e[train.INPUT_COLUMNS]
    x = extractor.transform(train.to_features(inputs))
    labels, proba = search.predict(x), search.predict_proba(x)
    decision = search.decision_function(x)
    classes = [str(c) for c in search.classes_]
    e2e_path = work / "e2e.csv"
    train.write_csv(
        e2e_path,
        [
            *train.INPUT_COLUMNS,
            "prediction",
            *(f"proba_{c}" for c in classes),
            *(f"decision_function_{c}" for c in classes),
        ],
        [
            [*cells, str(label), *(repr(float(p)) for p in (*row, *d))]
            for cells, label, row, d in zip(
                train.raw_cells(inputs, train.INPUT_COLUMNS), labels, proba, decision, strict=True
            )
        ],
    )
    text = set_e2e(set_model(spec_text(), path=model_path, sha256=sha, version="2.0.0"), e2e_path)
    if onedir_only:  # the aot kernels are the session's cached ones: only the freeze is new
        text = text.replace('modes = ["onedir", "onefile"]', 'modes = ["onedir"]')
        assert 'modes = ["onedir"]' in text
    spec = work / "search.toml"
    spec.write_text(text, encoding="utf-8")
    return spec, search


@pytest.fixture(scope="module")
def prepared_search(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``bundle prepare`` of the search's spec: the gate and the parity check run against
    the search itself."""
    from tests.conftest import run_bundle

    work = tmp_path_factory.mktemp("search")
    spec, search = search_spec(work)
    out = work / "payload"
    proc = run_bundle("prepare", str(spec), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((out / "record.json").read_text())
    return {"record": record, "search": search}


def test_prepared_record_keeps_the_search(prepared_search: dict[str, Any]) -> None:
    record, search = prepared_search["record"], prepared_search["search"]
    assert record["schema_version"] == "1.5"
    assert validate_record(record) == []
    assert record["model"]["algorithm"] == "GridSearchCV"
    kept = record["model"]["search"]
    assert kept["space"] == {"logisticregression__C": [0.1, 1.0, 10.0]}
    assert kept["best_params"] == search.best_params_
    assert kept["best_score"] == search.best_score_
    assert record["extractor"].get("search") is None
    assert record["parity"]["label_mismatches"] == 0


@pytest.mark.frozen
def test_frozen_app_from_a_search_passes_its_gate(tmp_path: Path) -> None:
    """A GridSearchCV over a pipeline, built into an app (onedir): the
    release gate passes inside the binary and its record keeps the search."""
    from bundler.freeze import run_frozen
    from tests.conftest import run_bundle

    spec, search = search_spec(tmp_path, onedir_only=True)
    proc = run_bundle("build", str(spec), "--output-dir", str(tmp_path / "dist"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    app = tmp_path / "dist" / "penguins" / "onedir" / "penguins" / "penguins"
    gate = run_frozen(app, "selftest")
    assert gate.returncode == 0 and "selftest: PASSED" in gate.stdout, gate.stdout + gate.stderr
    about = run_frozen(app, "about", "--json")
    assert about.returncode == 0, about.stderr
    record = json.loads(about.stdout)
    assert record["model"]["search"]["best_params"] == search.best_params_
    assert validate_record(record) == []
