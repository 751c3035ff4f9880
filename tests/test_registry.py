"""The converter registry: what compiles, what is refused, and how the refusal reads."""

from __future__ import annotations

import importlib
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import FastICA
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import _registry, compile_estimators, supported
from bundler.compiler._registry import get_converter, register_converter
from bundler.errors import UnsupportedEstimatorError

# The table: every class here must have a converter.
SUPPORTED_NAMES = {
    "sklearn.pipeline": ["Pipeline"],
    "sklearn.compose": ["ColumnTransformer"],
    "sklearn.preprocessing": [
        "StandardScaler",
        "MinMaxScaler",
        "MaxAbsScaler",
        "RobustScaler",
        "Normalizer",
        "OneHotEncoder",
        "OrdinalEncoder",
        "PolynomialFeatures",
        "KBinsDiscretizer",
        "FunctionTransformer",
    ],
    "sklearn.impute": ["SimpleImputer"],
    "sklearn.decomposition": ["PCA", "TruncatedSVD"],
    "sklearn.discriminant_analysis": ["QuadraticDiscriminantAnalysis"],
    "sklearn.linear_model": [
        "LogisticRegression",
        "LinearRegression",
        "Ridge",
        "RidgeClassifier",
        "Lasso",
        "ElasticNet",
        "SGDClassifier",
        "SGDRegressor",
    ],
    "sklearn.svm": ["LinearSVC", "LinearSVR", "SVC", "SVR"],
    "sklearn.tree": [
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
    ],
    "sklearn.ensemble": [
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
        "GradientBoostingClassifier",
        "GradientBoostingRegressor",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
        "IsolationForest",
        "VotingClassifier",
        "VotingRegressor",
        "BaggingClassifier",
        "BaggingRegressor",
        "StackingClassifier",
        "StackingRegressor",
    ],
    "sklearn.calibration": ["CalibratedClassifierCV"],
    "sklearn.naive_bayes": [
        "GaussianNB",
        "BernoulliNB",
        "MultinomialNB",
        "ComplementNB",
        "CategoricalNB",
    ],
    "sklearn.neighbors": [
        "KNeighborsClassifier",
        "KNeighborsRegressor",
        "RadiusNeighborsClassifier",
        "RadiusNeighborsRegressor",
    ],
    "sklearn.neural_network": ["MLPClassifier", "MLPRegressor"],
}
SUPPORTED = [
    getattr(importlib.import_module(module), name)
    for module, names in SUPPORTED_NAMES.items()
    for name in names
]
#: Classes of the optional ``boosting`` extra: they must have a converter whenever their
#: library imports, and are skipped (never refused at import) when it is not installed.
OPTIONAL_NAMES = {
    "lightgbm": ["LGBMClassifier", "LGBMRegressor"],
    "xgboost": ["XGBClassifier", "XGBRegressor"],
}


def _xy(n: int = 60, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    return X, (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)


def _supported_names() -> list[str]:
    return [r.cls.__name__ for r in supported()]


@pytest.mark.parametrize("cls", SUPPORTED, ids=lambda c: c.__name__)
def test_supported_class_has_a_converter(cls: type) -> None:
    registered = {r.cls: r for r in supported()}
    assert cls in registered
    reg = registered[cls]
    assert callable(reg.fn) and reg.options.strip()
    if cls is Pipeline:
        est = Pipeline([("lr", LogisticRegression())])
    elif cls is ColumnTransformer:
        est = ColumnTransformer([("s", StandardScaler(), [0])])
    elif cls.__name__ == "CalibratedClassifierCV":
        est = cls(LogisticRegression())
    elif cls.__name__.startswith(("Voting", "Stacking")):
        est = cls([("m", LogisticRegression())])
    else:
        est = cls()
    assert get_converter(est) is reg.fn


@pytest.mark.parametrize(
    "library, name",
    [(lib, name) for lib, names in OPTIONAL_NAMES.items() for name in names],
    ids=lambda v: v,
)
def test_optional_class_has_a_converter_when_its_library_imports(library: str, name: str) -> None:
    cls = getattr(pytest.importorskip(library), name)
    registered = {r.cls: r for r in supported()}
    assert cls in registered and registered[cls].options.strip()
    assert get_converter(cls()) is registered[cls].fn


def test_optional_families_are_not_imported_without_their_library() -> None:
    """With the libraries hidden, importing the compiler registers every other converter."""
    import subprocess
    import sys

    hide = (
        "import importlib.util, sys; find = importlib.util.find_spec; "
        f"importlib.util.find_spec = lambda n, *a: None if n in {sorted(OPTIONAL_NAMES)} "
        "else find(n, *a); import bundler.compiler as c; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{sorted(OPTIONAL_NAMES)}), len(c.supported()))"
    )
    out = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, check=True)
    loaded, count = out.stdout.split("] ")
    assert loaded == "[" and int(count) >= len(SUPPORTED), out.stdout


def test_supported_is_sorted_and_unique() -> None:
    names = _supported_names()
    assert names == sorted(names)
    assert len(set(names)) == len(names)


def _assert_refusal(exc: UnsupportedEstimatorError, cls_name: str) -> None:
    msg = str(exc)
    assert re.search(rf"\b{cls_name}\b", msg), msg
    assert "Supported:" in msg, msg
    listed = msg.split("Supported:", 1)[1]
    for cls in SUPPORTED:
        assert cls.__name__ in listed, (cls.__name__, msg)


def test_an_estimator_without_a_converter_is_refused() -> None:
    from sklearn.neighbors import NearestCentroid

    X, y = _xy()
    est = NearestCentroid().fit(X, y)
    with pytest.raises(UnsupportedEstimatorError) as info:
        compile_estimators(est)
    _assert_refusal(info.value, "NearestCentroid")


def test_pipeline_with_fastica_is_refused_naming_fastica() -> None:
    X, y = _xy()
    est = make_pipeline(
        StandardScaler(), FastICA(n_components=2, random_state=0), LogisticRegression()
    ).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError) as info:
        compile_estimators(est)
    _assert_refusal(info.value, "FastICA")
    assert "sklearn.decomposition" in str(info.value)


def test_unsupported_step_inside_a_column_transformer_is_refused() -> None:
    df = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0)[::-1]})
    y = (df["a"] > 9).astype(int)
    est = make_pipeline(
        ColumnTransformer([("ica", FastICA(n_components=1, random_state=0), ["a", "b"])]),
        LogisticRegression(),
    ).fit(df, y)
    with pytest.raises(UnsupportedEstimatorError) as info:
        compile_estimators(est)
    _assert_refusal(info.value, "FastICA")


def test_subclass_of_a_supported_class_is_refused() -> None:
    """Exact classes only: a subclass may score differently."""

    class MyLogistic(LogisticRegression):
        def predict(self, X: Any) -> Any:
            return 1 - super().predict(X)

    X, y = _xy()
    est = MyLogistic().fit(X, y)
    with pytest.raises(UnsupportedEstimatorError) as info:
        compile_estimators(est)
    _assert_refusal(info.value, "MyLogistic")


def test_model_must_end_in_a_predictor() -> None:
    X, _ = _xy()
    with pytest.raises(UnsupportedEstimatorError, match="transformer"):
        compile_estimators(make_pipeline(StandardScaler()).fit(X))


def test_extractor_must_not_end_in_a_predictor() -> None:
    X, y = _xy()
    lr = LogisticRegression().fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match="extractor"):
        compile_estimators(lr, make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y))


def test_extractor_width_must_match_the_model() -> None:
    X, y = _xy(d=4)
    extractor = ColumnTransformer([("s", StandardScaler(), [0, 1, 2])]).fit(X)
    model = LogisticRegression().fit(X, y)  # 4 features, the extractor gives 3
    with pytest.raises(UnsupportedEstimatorError, match=r"3 features.*4"):
        compile_estimators(model, extractor)


def test_unfitted_estimator_is_refused() -> None:
    with pytest.raises(UnsupportedEstimatorError, match="fitted"):
        compile_estimators(LogisticRegression())


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda: SimpleImputer(missing_values=-1.0, add_indicator=True),
            "missing_values",
        ),
        (lambda: FunctionTransformer(np.square), "square"),
    ],
    ids=["imputer-missing_values", "function-transformer-square"],
)
def test_unsupported_options_are_refused(make: Any, match: str) -> None:
    rng = np.random.RandomState(0)
    X = rng.randint(0, 4, size=(80, 2)).astype(float)
    if "missing_values" in match:
        X[::7, 0] = -1.0
    y = (X[:, 1] > 1).astype(int)
    est = make_pipeline(make(), LogisticRegression()).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match=match) as info:
        compile_estimators(est)
    assert type(est[0]).__name__ in str(info.value)


def test_brute_force_neighbours_with_an_unsupported_metric_are_refused() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = _xy()
    est = KNeighborsClassifier(algorithm="brute", metric="cosine").fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match="cosine"):
        compile_estimators(est)


def test_multi_output_trees_compile_one_output_per_target() -> None:
    X, y = _xy()
    est = DecisionTreeRegressor(max_depth=3).fit(X, np.column_stack([y, 1 - y]).astype(float))
    header = compile_estimators(est).header
    assert [o["name"] for o in header["outputs"]] == ["y0", "y1"]


def test_register_converter_refuses_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    before = get_converter(LogisticRegression())

    def another(est: Any, builder: Any, cols: Any) -> Any:
        raise AssertionError("must not be registered")

    with pytest.raises(ValueError, match="LogisticRegression"):
        register_converter(LogisticRegression)(another)
    assert get_converter(LogisticRegression()) is before


def test_register_converter_accepts_a_new_class_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))

    class Doubler:
        pass

    def convert_doubler(est: Any, builder: Any, cols: Any) -> Any:
        return cols

    register_converter(Doubler, "doubles")(convert_doubler)
    assert get_converter(Doubler()) is convert_doubler
    assert "Doubler" in _supported_names()
    with pytest.raises(ValueError, match="already registered"):
        register_converter(Doubler)(convert_doubler)


def test_register_converter_checks_the_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))

    class Thing:
        pass

    def wrong(model: Any, b: Any, c: Any) -> Any:
        return c

    with pytest.raises(TypeError, match="est, builder, cols"):
        register_converter(Thing)(wrong)
    with pytest.raises(UnsupportedEstimatorError):
        get_converter(Thing())
