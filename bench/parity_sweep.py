"""Parity sweep: every registered estimator class, compiled and scored against its library.

For each class in the converter registry (``bundler.compiler.supported()``), one to three
configurations a user would ship are fitted here (fixed seeds, small standard data) and
compiled; the plan (written and read back, as the app does, with the JIT kernels) and the
library score the same probe sets:

- ``train``: the training rows;
- ``noise``: the training rows plus small Gaussian noise;
- ``thresholds``: rows with one feature at a tree split threshold and one float32 step
  either side (trees, forests, boosting);
- ``nan``: rows with NaN cells (where the estimator accepts NaN; otherwise both sides
  must refuse them);
- ``extreme``: rows with a feature at +-1e300 (accepted or refused alike);
- ``unseen``: unknown categories or words (encoders, text).

A probe set that the library refuses (ValueError) must be refused by the plan too
(InputError), and the reverse; either mismatch is a failure. Outputs compared: labels
(or ``predict`` values), ``predict_proba``, every extra the plan writes
(``decision_function``, ``score_samples``) and, for a Pipeline, the transformed
features the final model reads (``transform``). The verdict is the build's own parity
check (``bundler.parity``: 1e-9 absolute, or 1e-12 relative above 1e3, labels
identical); the table also gives the largest absolute and relative difference
(relative over cells where the library's value is not zero) and whether every
compared number is bit-identical.

Configurations the compiler refuses (named in the supported-options list) are
compiled too and their refusal message captured. Registered classes without a case
are listed as not covered, computed from the registry. A row's status is ``ok``,
``differs`` (a number over the bar, a label, or one side refusing rows the other
scores), ``refused`` (the compiler's message kept) or ``error`` (the sweep could not fit
the model); the exit code is 1 when any row differs, errs, or is refused (or compiles)
against expectation.

Usage::

    .venv/bin/python bench/parity_sweep.py                # every class, about 1 minute on 2 cores
    .venv/bin/python bench/parity_sweep.py --classes SVC,PCA --out /tmp/sweep.json
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: the repository's packages
    sys.path.insert(0, str(ROOT))

from bundler import parity  # noqa: E402
from bundler.compiler import supported  # noqa: E402
from mlbundle_runtime.inputs import InputError  # noqa: E402
from mlbundle_runtime.scorer import MultiScores, Scores  # noqa: E402
from tests._parity import compile_scorer, f32_neighbours, to_records  # noqa: E402
from tests._transform_parity import MODEL_KERNELS, bits_differ, dense, run_ops  # noqa: E402

OUT = ROOT / "bench" / "results" / "parity_sweep.json"
SEED = 0
BAR = parity.TOLERANCE


# -- data ------------------------------------------------------------------------------


def _data() -> dict[str, tuple[Any, Any]]:
    from sklearn import datasets

    iris = datasets.load_iris(return_X_y=True)
    bc = datasets.load_breast_cancer(return_X_y=True)
    dia = datasets.load_diabetes(return_X_y=True)
    dig = datasets.load_digits(return_X_y=True)
    cls = datasets.make_classification(
        200, 6, n_informative=4, n_classes=3, n_clusters_per_class=1, random_state=SEED
    )
    bin_ = datasets.make_classification(200, 6, n_informative=4, random_state=1)
    reg = datasets.make_regression(200, 5, n_informative=4, noise=5.0, random_state=SEED)
    multi = datasets.make_regression(200, 5, n_targets=3, noise=2.0, random_state=SEED)
    mlab = datasets.make_multilabel_classification(200, 6, n_classes=3, random_state=SEED)
    rng = np.random.default_rng(SEED)
    counts = np.floor(np.abs(cls[0]) * 3)
    return {
        "iris": iris,
        "breast_cancer": (bc[0][::2], bc[1][::2]),
        "diabetes": dia,
        "digits": (dig[0][:300], dig[1][:300]),
        "classification": cls,
        "binary": bin_,
        "regression": reg,
        "multi_target": multi,
        "multilabel": (mlab[0], mlab[1]),
        "counts": (counts, cls[1]),
        "positive": (reg[0], np.exp(reg[1] / reg[1].std())),
        "grid": (rng.integers(0, 4, (200, 4)).astype(float), rng.integers(0, 3, 200)),
        "positive_features": (np.exp(reg[0] / 2.0), reg[1]),
    }


DATA: dict[str, tuple[Any, Any]] = {}


def data(name: str) -> tuple[Any, Any]:
    if not DATA:
        DATA.update(_data())
    return DATA[name]


SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "a fast brown dog leaps over a sleepy fox",
    "machine learning models predict outcomes from data",
    "the model scores rows of data quickly",
    "foxes and dogs are not friends in this story",
    "compiled plans run without pickles",
    "scikit-learn fits the model on training data",
    "lazy dogs sleep all day in the sun",
    "the sun rises over the quiet hills",
    "data scientists ship models to users",
    "a quiet fox watches the sleepy dog",
    "prediction quality depends on the data",
]
TEXT_Y = np.array([0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1])
UNSEEN_TEXT = ["completely unknown vocabulary here", "", "THE FOX, the DOG!", "café naïve résumé"]


def frame() -> tuple[pd.DataFrame, np.ndarray]:
    """A small mixed frame: two numeric columns and two categorical ones."""
    rng = np.random.default_rng(SEED)
    n = 200
    df = pd.DataFrame(
        {
            "num_a": rng.normal(size=n),
            "num_b": rng.normal(5, 2, size=n),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "size": rng.choice(["S", "M", "L", "XL"], size=n, p=[0.4, 0.3, 0.2, 0.1]),
        }
    )
    y = ((df["num_a"] > 0) ^ (df["colour"] == "red")).to_numpy().astype(int)
    return df, y


# -- probes ----------------------------------------------------------------------------


def noisy(X: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    scale = np.nanstd(X, axis=0) * 0.05 + 1e-3
    return X + rng.normal(size=X.shape) * scale


def nan_rows(X: np.ndarray, n: int = 20) -> np.ndarray:
    rows = np.array(X[:n], dtype=np.float64)
    for i in range(len(rows)):
        rows[i, i % rows.shape[1]] = np.nan
    return rows


def extreme_rows(X: np.ndarray) -> np.ndarray:
    rows = []
    for k, v in enumerate((1e300, -1e300)):
        for f in range(X.shape[1]):
            row = np.array(X[(k + f) % len(X)], dtype=np.float64)
            row[f] = v
            rows.append(row)
    return np.array(rows)


def _tree_splits(est: Any) -> set[tuple[int, float]]:
    """(feature, threshold) of the splits of any scikit-learn tree inside ``est``."""
    out: set[tuple[int, float]] = set()
    tree = getattr(est, "tree_", None)
    if tree is not None and hasattr(tree, "children_left"):
        for node in np.flatnonzero(tree.children_left >= 0):
            if math.isfinite(tree.threshold[node]):
                out.add((int(tree.feature[node]), float(tree.threshold[node])))
    for pred in (p for it in getattr(est, "_predictors", None) or [] for p in it):
        nodes = pred.nodes[(pred.nodes["is_leaf"] == 0) & (pred.nodes["is_categorical"] == 0)]
        out.update(zip(nodes["feature_idx"].tolist(), nodes["num_threshold"].tolist(), strict=True))
    members = getattr(est, "estimators_", None)
    if members is not None:
        for m in np.asarray(members, dtype=object).ravel():
            out |= _tree_splits(m)
    return out


def _booster_splits(est: Any) -> set[tuple[int, float]]:
    name = type(est).__name__
    if name.startswith("LGBM"):
        df = est.booster_.trees_to_dataframe().dropna(subset=["split_feature"])
        df = df[df["decision_type"] == "<="]  # numeric splits (categorical ones list values)
        names = list(est.booster_.feature_name())
        return {
            (names.index(f), float(t))
            for f, t in zip(df["split_feature"], df["threshold"], strict=True)
        }
    if name.startswith("XGB"):
        df = est.get_booster().trees_to_dataframe()
        df = df[df["Feature"] != "Leaf"]
        return {(int(f[1:]), float(t)) for f, t in zip(df["Feature"], df["Split"], strict=True)}
    return set()


def threshold_rows(est: Any, X: np.ndarray, limit: int = 120) -> np.ndarray | None:
    """Rows of ``X`` with one feature at a split threshold, and one float32 step either side."""
    splits = sorted(_tree_splits(est) | _booster_splits(est))
    if not splits:
        return None
    if len(splits) > limit:
        splits = [splits[i] for i in np.linspace(0, len(splits) - 1, limit).round().astype(int)]
    at = [(f, v) for f, thr in splits for v in (thr, *f32_neighbours(np.array([thr])))]
    rows = np.array(X, dtype=np.float64)[np.arange(len(at)) % len(X)]
    rows[np.arange(len(at)), [f for f, _ in at]] = [v for _, v in at]
    return rows


def numeric_probes(model: Any, X: np.ndarray, *, nan: bool = True) -> dict[str, Any]:
    """The standard probe sets for a model fitted on the numeric array ``X``."""
    X = np.asarray(X, dtype=np.float64)
    probes: dict[str, Any] = {"train": X, "noise": noisy(X)}
    last = model.steps[-1][1] if hasattr(model, "steps") else model
    thresholds = threshold_rows(last, X)
    if thresholds is not None:
        probes["thresholds"] = thresholds
    if nan:
        probes["nan"] = nan_rows(X)
    probes["extreme"] = extreme_rows(X)
    return probes


# -- cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One configuration of one registered class: ``build()`` gives the fitted model and
    its probe sets; ``refused`` marks a configuration the compiler is known to refuse."""

    cls: str
    config: str
    build: Callable[[], tuple[Any, dict[str, Any]]]
    family: str | None = None
    refused: bool = False


CASES: list[Case] = []


def case(cls: str, config: str, *, family: str | None = None, refused: bool = False) -> Any:
    def decorate(fn: Callable[[], tuple[Any, dict[str, Any]]]) -> Any:
        CASES.append(Case(cls, config, fn, family, refused))
        return fn

    return decorate


def fitted(make: Callable[[], Any], ds: str, *, nan: bool = True, nan_train: bool = False) -> Any:
    """A builder: ``make()`` fitted on data set ``ds`` (with NaN cells if ``nan_train``)."""

    def build() -> tuple[Any, dict[str, Any]]:
        X, y = data(ds)
        X = np.array(X, dtype=np.float64)
        if nan_train:
            X[np.random.default_rng(SEED).random(X.shape) < 0.1] = np.nan
        model = make().fit(X, y)
        return model, numeric_probes(model, X, nan=nan)

    return build


def add(cls: str, config: str, make: Callable[[], Any], ds: str, **kw: Any) -> None:
    family = kw.pop("family", None)
    refused = kw.pop("refused", False)
    CASES.append(Case(cls, config, fitted(make, ds, **kw), family, refused))


def _register_cases() -> None:
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn import (
        calibration,
        cluster,
        compose,
        decomposition,
        discriminant_analysis,
        neighbors,
        neural_network,
        pipeline,
        svm,
        tree,
    )
    from sklearn import ensemble as en
    from sklearn import impute as imp
    from sklearn import linear_model as lm
    from sklearn import naive_bayes as nb
    from sklearn import preprocessing as pp
    from sklearn.experimental import enable_halving_search_cv, enable_iterative_imputer  # noqa: F401
    from sklearn.feature_extraction import text as ft
    from sklearn.model_selection import (
        GridSearchCV,
        HalvingGridSearchCV,
        HalvingRandomSearchCV,
        RandomizedSearchCV,
    )
    from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor

    P = functools.partial
    rs = {"random_state": SEED}
    da, nn, kn = discriminant_analysis, neural_network, neighbors
    dt, dtr, std = tree.DecisionTreeClassifier, tree.DecisionTreeRegressor, pp.StandardScaler
    pipe = pipeline.make_pipeline

    def then_ridge(step: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: pipe(step(), lm.Ridge(alpha=1.0))

    nan_fit = {"nan_train": True}
    multi = {"family": "multi-output"}
    refused = {"refused": True}
    lgb_kw = {"n_estimators": 15, "num_leaves": 8, "verbose": -1, **rs}
    xgb_kw = {"n_estimators": 15, "max_depth": 3, **rs}
    voters = [
        ("lr", lm.LogisticRegression(max_iter=500)),
        ("dt", dt(max_depth=3, **rs)),
        ("nb", nb.GaussianNB()),
    ]
    pair = [("r", lm.Ridge()), ("t", dtr(max_depth=4, **rs))]
    # (class, configuration, estimator factory, data set, options)
    # fmt: off
    table: list[tuple[str, str, Callable[[], Any], str, dict[str, Any]]] = [
        # trees and forests
        ("DecisionTreeClassifier", "default", P(dt, **rs), "iris", {}),
        ("DecisionTreeClassifier", "max_depth=4, NaN in training", P(dt, max_depth=4, **rs),
         "iris", nan_fit),
        ("ExtraTreeClassifier", "default", P(tree.ExtraTreeClassifier, **rs), "breast_cancer", {}),
        ("ExtraTreeClassifier", "NaN in training", P(tree.ExtraTreeClassifier, **rs),
         "breast_cancer", nan_fit),
        ("DecisionTreeRegressor", "default", P(dtr, **rs), "diabetes", {}),
        ("DecisionTreeRegressor", "max_depth=5, NaN in training", P(dtr, max_depth=5, **rs),
         "diabetes", nan_fit),
        ("DecisionTreeRegressor", "multi-output", P(dtr, max_depth=6, **rs), "multi_target", multi),
        ("ExtraTreeRegressor", "default", P(tree.ExtraTreeRegressor, **rs), "diabetes", {}),
        ("ExtraTreeRegressor", "NaN in training", P(tree.ExtraTreeRegressor, **rs), "diabetes",
         nan_fit),
        ("ExtraTreeRegressor", "multi-output", P(tree.ExtraTreeRegressor, max_depth=6, **rs),
         "multi_target", multi),
        ("RandomForestClassifier", "n_estimators=10", P(en.RandomForestClassifier, 10, **rs),
         "breast_cancer", {}),
        ("RandomForestClassifier", "n_estimators=10, max_depth=6, NaN in training",
         P(en.RandomForestClassifier, 10, max_depth=6, **rs), "breast_cancer", nan_fit),
        ("RandomForestClassifier", "multilabel", P(en.RandomForestClassifier, 5, **rs),
         "multilabel", multi),
        ("ExtraTreesClassifier", "n_estimators=10", P(en.ExtraTreesClassifier, 10, **rs), "iris",
         {}),
        ("ExtraTreesClassifier", "n_estimators=10, NaN in training",
         P(en.ExtraTreesClassifier, 10, max_depth=6, **rs), "iris", nan_fit),
        ("ExtraTreesClassifier", "multilabel", P(en.ExtraTreesClassifier, 5, **rs), "multilabel",
         multi),
        ("RandomForestRegressor", "n_estimators=10", P(en.RandomForestRegressor, 10, **rs),
         "diabetes", {}),
        ("RandomForestRegressor", "multi-output", P(en.RandomForestRegressor, 5, **rs),
         "multi_target", multi),
        ("ExtraTreesRegressor", "n_estimators=10", P(en.ExtraTreesRegressor, 10, **rs),
         "diabetes", {}),
        ("ExtraTreesRegressor", "multi-output", P(en.ExtraTreesRegressor, 5, **rs),
         "multi_target", multi),
        ("IsolationForest", "n_estimators=20", P(en.IsolationForest, n_estimators=20, **rs),
         "breast_cancer", {}),
        ("IsolationForest", "contamination=0.1",
         P(en.IsolationForest, n_estimators=20, contamination=0.1, **rs), "diabetes", {}),
        # boosting
        ("GradientBoostingClassifier", "binary, 20 trees",
         P(en.GradientBoostingClassifier, n_estimators=20, **rs), "breast_cancer", {}),
        ("GradientBoostingClassifier", "multiclass, 10 trees",
         P(en.GradientBoostingClassifier, n_estimators=10, **rs), "iris", {}),
        ("GradientBoostingRegressor", "squared_error, 20 trees",
         P(en.GradientBoostingRegressor, n_estimators=20, **rs), "diabetes", {}),
        ("GradientBoostingRegressor", "huber, subsample=0.8",
         P(en.GradientBoostingRegressor, n_estimators=20, loss="huber", subsample=0.8, **rs),
         "regression", {}),
        ("HistGradientBoostingClassifier", "max_iter=20, NaN in training",
         P(en.HistGradientBoostingClassifier, max_iter=20, **rs), "breast_cancer", nan_fit),
        ("HistGradientBoostingClassifier", "multiclass, max_iter=10",
         P(en.HistGradientBoostingClassifier, max_iter=10, **rs), "iris", {}),
        ("HistGradientBoostingRegressor", "max_iter=20, NaN in training",
         P(en.HistGradientBoostingRegressor, max_iter=20, **rs), "diabetes", nan_fit),
        ("HistGradientBoostingRegressor", "loss=poisson",
         P(en.HistGradientBoostingRegressor, max_iter=20, loss="poisson", **rs), "positive", {}),
        # LightGBM and XGBoost
        ("LGBMClassifier", "binary, NaN in training", P(lgb.LGBMClassifier, **lgb_kw),
         "breast_cancer", nan_fit),
        ("LGBMClassifier", "multiclass", P(lgb.LGBMClassifier, **lgb_kw), "iris", {}),
        ("LGBMRegressor", "regression, NaN in training", P(lgb.LGBMRegressor, **lgb_kw),
         "diabetes", nan_fit),
        ("LGBMRegressor", "objective=poisson",
         P(lgb.LGBMRegressor, objective="poisson", **lgb_kw), "positive", {}),
        ("XGBClassifier", "binary:logistic, NaN in training", P(xgb.XGBClassifier, **xgb_kw),
         "breast_cancer", nan_fit),
        ("XGBClassifier", "multi:softprob", P(xgb.XGBClassifier, **xgb_kw), "iris", {}),
        ("XGBRegressor", "reg:squarederror, NaN in training", P(xgb.XGBRegressor, **xgb_kw),
         "diabetes", nan_fit),
        ("XGBRegressor", "objective=count:poisson",
         P(xgb.XGBRegressor, objective="count:poisson", **xgb_kw), "positive", {}),
        # linear models
        ("LinearRegression", "default", lm.LinearRegression, "diabetes", {}),
        ("LinearRegression", "multi-output", lm.LinearRegression, "multi_target", multi),
        ("Ridge", "default", lm.Ridge, "diabetes", {}),
        ("Ridge", "solver=cholesky, alpha=10", P(lm.Ridge, alpha=10.0, solver="cholesky"),
         "regression", {}),
        ("Ridge", "multi-output", lm.Ridge, "multi_target", multi),
        ("Lasso", "default", lm.Lasso, "diabetes", {}),
        ("Lasso", "multi-output", lm.Lasso, "multi_target", multi),
        ("ElasticNet", "default", lm.ElasticNet, "diabetes", {}),
        ("ElasticNet", "l1_ratio=0.2, alpha=0.1", P(lm.ElasticNet, alpha=0.1, l1_ratio=0.2),
         "regression", {}),
        ("ElasticNet", "multi-output", lm.ElasticNet, "multi_target", multi),
        ("RidgeCV", "default", lm.RidgeCV, "diabetes", {}),
        ("RidgeCV", "multi-output, alphas=(0.1, 1, 10)", P(lm.RidgeCV, alphas=(0.1, 1.0, 10.0)),
         "multi_target", multi),
        ("LassoCV", "cv=3", P(lm.LassoCV, cv=3), "diabetes", {}),
        ("ElasticNetCV", "cv=3", P(lm.ElasticNetCV, cv=3), "diabetes", {}),
        ("LarsCV", "cv=3", P(lm.LarsCV, cv=3), "diabetes", {}),
        ("LassoLarsCV", "cv=3", P(lm.LassoLarsCV, cv=3), "diabetes", {}),
        ("OrthogonalMatchingPursuitCV", "cv=3", P(lm.OrthogonalMatchingPursuitCV, cv=3),
         "diabetes", {}),
        ("Lars", "default", lm.Lars, "diabetes", {}),
        ("Lars", "multi-output", lm.Lars, "multi_target", {**multi, **refused}),
        ("LassoLars", "default", lm.LassoLars, "diabetes", {}),
        ("LassoLarsIC", "criterion=bic", P(lm.LassoLarsIC, criterion="bic"), "diabetes", {}),
        ("OrthogonalMatchingPursuit", "default", lm.OrthogonalMatchingPursuit, "diabetes", {}),
        ("ARDRegression", "default", lm.ARDRegression, "diabetes", {}),
        ("BayesianRidge", "default", lm.BayesianRidge, "diabetes", {}),
        ("HuberRegressor", "default", lm.HuberRegressor, "diabetes", {}),
        ("TheilSenRegressor", "default", P(lm.TheilSenRegressor, **rs), "regression", {}),
        ("QuantileRegressor", "quantile=0.8, alpha=0",
         P(lm.QuantileRegressor, quantile=0.8, alpha=0.0), "regression", {}),
        ("RANSACRegressor", "default", P(lm.RANSACRegressor, **rs), "regression", {}),
        ("PassiveAggressiveRegressor", "default", P(lm.PassiveAggressiveRegressor, **rs),
         "regression", {}),
        ("SGDRegressor", "default", P(lm.SGDRegressor, **rs), "regression", {}),
        ("SGDRegressor", "loss=huber, average=True",
         P(lm.SGDRegressor, loss="huber", average=True, **rs), "regression", {}),
        ("MultiTaskLasso", "default", lm.MultiTaskLasso, "multi_target", multi),
        ("MultiTaskElasticNet", "default", lm.MultiTaskElasticNet, "multi_target", multi),
        ("MultiTaskLassoCV", "cv=3", P(lm.MultiTaskLassoCV, cv=3), "multi_target", multi),
        ("MultiTaskElasticNetCV", "cv=3", P(lm.MultiTaskElasticNetCV, cv=3), "multi_target",
         multi),
        ("LogisticRegression", "default (scaled)", lambda: pipe(std(), lm.LogisticRegression()),
         "breast_cancer", {}),
        ("LogisticRegression", "multinomial, C=0.1", P(lm.LogisticRegression, C=0.1, max_iter=500),
         "iris", {}),
        ("LogisticRegressionCV", "cv=3", P(lm.LogisticRegressionCV, cv=3, max_iter=500), "iris",
         {}),
        ("RidgeClassifier", "multiclass", lm.RidgeClassifier, "classification", {}),
        ("RidgeClassifier", "multilabel", lm.RidgeClassifier, "multilabel", {**multi, **refused}),
        ("RidgeClassifierCV", "binary", lm.RidgeClassifierCV, "breast_cancer", {}),
        ("SGDClassifier", "hinge", P(lm.SGDClassifier, **rs), "classification", {}),
        ("SGDClassifier", "log_loss", P(lm.SGDClassifier, loss="log_loss", **rs), "binary", {}),
        ("SGDOneClassSVM", "nu=0.1", P(lm.SGDOneClassSVM, nu=0.1, **rs), "classification", {}),
        # GLM
        ("PoissonRegressor", "default", lm.PoissonRegressor, "positive", {}),
        ("GammaRegressor", "default", lm.GammaRegressor, "positive", {}),
        ("TweedieRegressor", "power=1.5", P(lm.TweedieRegressor, power=1.5), "positive", {}),
        ("TweedieRegressor", "power=0 (identity link)", P(lm.TweedieRegressor, power=0.0),
         "regression", {}),
        # SVM
        ("SVC", "rbf (scaled)", lambda: pipe(std(), svm.SVC()), "breast_cancer", {}),
        ("SVC", "poly, probability=True", P(svm.SVC, kernel="poly", probability=True, **rs),
         "iris", {}),
        ("NuSVC", "rbf, decision_function_shape=ovo", P(svm.NuSVC, decision_function_shape="ovo"),
         "iris", {}),
        ("SVR", "rbf, C=50 (scaled)", lambda: pipe(std(), svm.SVR(C=50.0)), "diabetes", {}),
        ("NuSVR", "linear", P(svm.NuSVR, kernel="linear"), "regression", {}),
        ("OneClassSVM", "rbf, nu=0.1", P(svm.OneClassSVM, nu=0.1), "iris", {}),
        ("LinearSVC", "default", P(svm.LinearSVC, **rs), "iris", {}),
        ("LinearSVC", "crammer_singer", P(svm.LinearSVC, multi_class="crammer_singer", **rs),
         "classification", {}),
        ("LinearSVR", "default", P(svm.LinearSVR, **rs), "regression", {}),
        # neighbours
        ("KNeighborsClassifier", "k=5", kn.KNeighborsClassifier, "iris", {}),
        ("KNeighborsClassifier", "distance, brute, p=1",
         P(kn.KNeighborsClassifier, weights="distance", algorithm="brute", p=1), "grid", {}),
        ("KNeighborsRegressor", "k=5", kn.KNeighborsRegressor, "diabetes", {}),
        ("KNeighborsRegressor", "multi-output, distance",
         P(kn.KNeighborsRegressor, weights="distance"), "multi_target", multi),
        ("RadiusNeighborsClassifier", "radius=1.5, outlier_label=most_frequent",
         P(kn.RadiusNeighborsClassifier, radius=1.5, outlier_label="most_frequent"), "iris", {}),
        ("RadiusNeighborsRegressor", "radius=40, distance",
         P(kn.RadiusNeighborsRegressor, radius=40.0, weights="distance"), "regression", {}),
        # naive Bayes
        ("GaussianNB", "default", nb.GaussianNB, "iris", {}),
        ("GaussianNB", "var_smoothing=0", P(nb.GaussianNB, var_smoothing=0.0), "breast_cancer",
         {}),
        ("MultinomialNB", "alpha=0.5", P(nb.MultinomialNB, alpha=0.5), "counts", {}),
        ("ComplementNB", "norm=True", P(nb.ComplementNB, norm=True), "counts", {}),
        ("BernoulliNB", "binarize=1", P(nb.BernoulliNB, binarize=1.0), "counts", {}),
        ("CategoricalNB", "default", nb.CategoricalNB, "grid", {}),
        # discriminant analysis
        ("LinearDiscriminantAnalysis", "svd", da.LinearDiscriminantAnalysis, "iris", {}),
        ("LinearDiscriminantAnalysis", "lsqr, shrinkage=auto",
         P(da.LinearDiscriminantAnalysis, solver="lsqr", shrinkage="auto"), "breast_cancer", {}),
        ("QuadraticDiscriminantAnalysis", "reg_param=0.1",
         P(da.QuadraticDiscriminantAnalysis, reg_param=0.1), "iris", {}),
        # MLP
        ("MLPClassifier", "relu (20,), scaled",
         lambda: pipe(std(), nn.MLPClassifier((20,), max_iter=300, **rs)), "breast_cancer", {}),
        ("MLPClassifier", "tanh (10, 10), digits",
         P(nn.MLPClassifier, (10, 10), activation="tanh", max_iter=200, **rs), "digits", {}),
        ("MLPClassifier", "multilabel", P(nn.MLPClassifier, (10,), max_iter=300, **rs),
         "multilabel", multi),
        ("MLPRegressor", "relu (20,), scaled",
         lambda: pipe(std(), nn.MLPRegressor(hidden_layer_sizes=(20,), max_iter=300, **rs)),
         "diabetes", {}),
        ("MLPRegressor", "multi-output, logistic",
         P(nn.MLPRegressor, hidden_layer_sizes=(10,), activation="logistic", max_iter=300, **rs),
         "multi_target", multi),
        # clusters and decompositions, as models and as steps
        ("KMeans", "n_clusters=3", P(cluster.KMeans, 3, n_init=1, **rs), "iris", {}),
        ("KMeans", "as a step (distances)",
         lambda: pipe(cluster.KMeans(4, n_init=1, **rs), lm.LinearRegression()), "diabetes", {}),
        ("MiniBatchKMeans", "n_clusters=3",
         P(cluster.MiniBatchKMeans, 3, n_init=1, batch_size=64, **rs), "iris", {}),
        ("PCA", "n_components=5",
         lambda: pipe(decomposition.PCA(5, **rs), lm.LinearRegression()), "diabetes", {}),
        ("PCA", "whiten, randomized",
         lambda: pipe(decomposition.PCA(3, whiten=True, svd_solver="randomized", **rs),
                      lm.LogisticRegression()), "iris", {}),
        ("TruncatedSVD", "n_components=4",
         lambda: pipe(decomposition.TruncatedSVD(4, **rs), lm.Ridge()), "diabetes", {}),
        # preprocessors, each before a Ridge
        ("StandardScaler", "default", then_ridge(std), "diabetes", {}),
        ("StandardScaler", "with_mean=False", then_ridge(P(std, with_mean=False)), "regression",
         {}),
        ("MinMaxScaler", "clip=True", then_ridge(P(pp.MinMaxScaler, clip=True)), "diabetes", {}),
        ("MaxAbsScaler", "default", then_ridge(pp.MaxAbsScaler), "diabetes", {}),
        ("RobustScaler", "quantile_range=(10, 90)",
         then_ridge(P(pp.RobustScaler, quantile_range=(10.0, 90.0))), "diabetes", {}),
        ("Normalizer", "l2", then_ridge(pp.Normalizer), "regression", {}),
        ("Normalizer", "norm=max", then_ridge(P(pp.Normalizer, norm="max")), "regression", {}),
        ("PolynomialFeatures", "degree 2", then_ridge(pp.PolynomialFeatures), "regression", {}),
        ("PolynomialFeatures", "interaction_only, degree 3",
         then_ridge(P(pp.PolynomialFeatures, 3, interaction_only=True)), "regression", {}),
        ("SplineTransformer", "n_knots=4", then_ridge(P(pp.SplineTransformer, n_knots=4)),
         "diabetes", {}),
        ("SplineTransformer", "degree 2, knots=quantile, extrapolation=constant",
         then_ridge(P(pp.SplineTransformer, degree=2, knots="quantile", extrapolation="constant")),
         "diabetes", {}),
        ("SplineTransformer", "extrapolation=periodic",
         then_ridge(P(pp.SplineTransformer, extrapolation="periodic")), "diabetes", refused),
        ("SplineTransformer", "extrapolation=linear",
         then_ridge(P(pp.SplineTransformer, extrapolation="linear")), "diabetes", refused),
        ("PowerTransformer", "yeo-johnson", then_ridge(pp.PowerTransformer), "diabetes", {}),
        ("PowerTransformer", "box-cox", then_ridge(P(pp.PowerTransformer, method="box-cox")),
         "positive_features", {}),
        ("QuantileTransformer", "uniform, n_quantiles=50",
         then_ridge(P(pp.QuantileTransformer, n_quantiles=50)), "diabetes", {}),
        ("QuantileTransformer", "output_distribution=normal",
         then_ridge(P(pp.QuantileTransformer, n_quantiles=50, output_distribution="normal")),
         "diabetes", {}),
        ("KBinsDiscretizer", "4 bins, onehot-dense",
         then_ridge(P(pp.KBinsDiscretizer, 4, encode="onehot-dense")), "diabetes", {}),
        ("KBinsDiscretizer", "ordinal, kmeans",
         then_ridge(P(pp.KBinsDiscretizer, 3, encode="ordinal", strategy="kmeans")), "diabetes",
         {}),
        ("FunctionTransformer", "func=numpy.abs", then_ridge(P(pp.FunctionTransformer, np.abs)),
         "regression", {}),
        ("FunctionTransformer", "func=numpy.log1p",
         then_ridge(P(pp.FunctionTransformer, np.log1p)), "positive_features", {}),
        ("SimpleImputer", "median", then_ridge(P(imp.SimpleImputer, strategy="median")),
         "diabetes", {}),
        ("SimpleImputer", "mean, add_indicator, NaN in training",
         then_ridge(P(imp.SimpleImputer, add_indicator=True)), "diabetes", nan_fit),
        ("IterativeImputer", "max_iter=3", then_ridge(P(imp.IterativeImputer, max_iter=3, **rs)),
         "diabetes", {}),
        ("IterativeImputer", "max_iter=3, NaN in training",
         then_ridge(P(imp.IterativeImputer, max_iter=3, **rs)), "diabetes", nan_fit),
        ("IterativeImputer", "sample_posterior=True",
         then_ridge(P(imp.IterativeImputer, sample_posterior=True, **rs)), "diabetes", refused),
        ("Pipeline", "imputer, scaler, logistic regression, NaN in training",
         lambda: pipe(imp.SimpleImputer(), std(), lm.LogisticRegression()), "breast_cancer",
         nan_fit),
        ("MultiOutputRegressor", "SVR per target",
         lambda: MultiOutputRegressor(pipe(std(), svm.SVR(C=10.0))), "multi_target", multi),
        ("MultiOutputRegressor", "GradientBoostingRegressor per target",
         lambda: MultiOutputRegressor(en.GradientBoostingRegressor(n_estimators=10, **rs)),
         "multi_target", multi),
        ("MultiOutputClassifier", "LogisticRegression per label",
         lambda: MultiOutputClassifier(lm.LogisticRegression(max_iter=500)), "multilabel", multi),
        ("MultiOutputClassifier", "HistGradientBoostingClassifier per label, NaN in training",
         lambda: MultiOutputClassifier(en.HistGradientBoostingClassifier(max_iter=10, **rs)),
         "multilabel", {**multi, **nan_fit}),
        # ensembles of estimators and meta-estimators
        ("AdaBoostClassifier", "stumps, 20", P(en.AdaBoostClassifier, n_estimators=20, **rs),
         "breast_cancer", {}),
        ("AdaBoostClassifier", "depth-2 trees, multiclass",
         lambda: en.AdaBoostClassifier(dt(max_depth=2), n_estimators=10, **rs), "iris", {}),
        ("AdaBoostRegressor", "10 trees", P(en.AdaBoostRegressor, n_estimators=10, **rs),
         "diabetes", {}),
        ("BaggingClassifier", "trees, max_features=0.7",
         lambda: en.BaggingClassifier(dt(), n_estimators=5, max_features=0.7, **rs), "iris", {}),
        ("BaggingRegressor", "default (trees)", P(en.BaggingRegressor, n_estimators=5, **rs),
         "diabetes", {}),
        ("VotingClassifier", "soft: logistic, tree, GaussianNB",
         P(en.VotingClassifier, voters, voting="soft"), "iris", {}),
        ("VotingClassifier", "hard, weights=(2, 1, 1)",
         P(en.VotingClassifier, voters, weights=[2, 1, 1]), "iris", {}),
        ("VotingRegressor", "ridge + tree", P(en.VotingRegressor, pair), "diabetes", {}),
        ("StackingClassifier", "logistic + tree, passthrough",
         P(en.StackingClassifier, voters[:2], passthrough=True, cv=3), "iris", {}),
        ("StackingRegressor", "ridge + tree", P(en.StackingRegressor, pair, cv=3), "diabetes",
         {}),
        ("CalibratedClassifierCV", "sigmoid, LinearSVC",
         lambda: calibration.CalibratedClassifierCV(svm.LinearSVC(**rs), cv=3), "breast_cancer",
         {}),
        ("CalibratedClassifierCV", "isotonic, ensemble=False, GaussianNB",
         lambda: calibration.CalibratedClassifierCV(nb.GaussianNB(), method="isotonic",
                                                    ensemble=False, cv=3), "iris", {}),
        ("GridSearchCV", "Ridge alpha grid",
         lambda: GridSearchCV(lm.Ridge(), {"alpha": [0.1, 1.0, 10.0]}, cv=3), "diabetes", {}),
        ("RandomizedSearchCV", "tree max_depth",
         lambda: RandomizedSearchCV(dt(**rs), {"max_depth": [2, 3, 4, 5]}, n_iter=3, cv=3, **rs),
         "iris", {}),
        ("HalvingGridSearchCV", "logistic C grid",
         lambda: HalvingGridSearchCV(lm.LogisticRegression(max_iter=500),
                                     {"C": [0.1, 1.0, 10.0]}, cv=3, **rs), "iris", {}),
        ("HalvingRandomSearchCV", "Ridge alpha",
         lambda: HalvingRandomSearchCV(lm.Ridge(), {"alpha": [0.1, 1.0, 10.0, 100.0]}, cv=3,
                                       **rs), "diabetes", {}),
    ]
    # fmt: on
    for cls, config, make, ds, options in table:
        add(cls, config, make, ds, **options)

    @case("HistGradientBoostingClassifier", "categorical_features='from_dtype' (strings)")
    def _hgb_categorical() -> tuple[Any, dict[str, Any]]:
        df, y = frame()
        df = df.astype({"colour": "category", "size": "category"})
        model = en.HistGradientBoostingClassifier(
            max_iter=10, categorical_features="from_dtype", **rs
        ).fit(df, y)
        return model, frame_probes(df, categorical_cols=("colour", "size"))

    def categories() -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(SEED)
        X = np.column_stack([rng.integers(0, 8, 300), rng.normal(size=300)]).astype(float)
        return X, np.isin(X[:, 0], (1, 4, 6)).astype(int)

    @case("LGBMClassifier", "categorical_feature=[0]", refused=True)
    def _lgb_categorical() -> tuple[Any, dict[str, Any]]:
        X, y = categories()
        model = lgb.LGBMClassifier(
            n_estimators=5, verbose=-1, min_data_per_group=5, cat_smooth=1.0, **rs
        )
        model.fit(X, y, categorical_feature=[0])
        return model, numeric_probes(model, X)

    @case("XGBClassifier", "enable_categorical, a category column", refused=True)
    def _xgb_categorical() -> tuple[Any, dict[str, Any]]:
        X, y = categories()
        df = pd.DataFrame({"c": pd.Categorical(X[:, 0].astype(int)), "x": X[:, 1]})
        model = xgb.XGBClassifier(
            n_estimators=5, enable_categorical=True, tree_method="hist", **rs
        ).fit(df, y)
        return model, {"train": df}

    @case("QuantileTransformer", "normal, repeated end quantile beyond 1e9", refused=True)
    def _quantile_repeated() -> tuple[Any, dict[str, Any]]:
        X, y = data("regression")
        X = np.array(X, dtype=np.float64)
        X[:40, 0] = 5e9  # the largest 20 % of x0 equal and huge: the last quantiles repeat
        normal = P(pp.QuantileTransformer, n_quantiles=50, output_distribution="normal")
        model = then_ridge(normal)().fit(X, y)
        return model, numeric_probes(model, X)

    # encoders and column transformers on a mixed frame
    def on_frame(make: Callable[[], Any], final: Callable[[], Any] | None = None) -> Any:
        def build() -> tuple[Any, dict[str, Any]]:
            df, y = frame()
            ct = compose.ColumnTransformer(
                [("cat", make(), ["colour", "size"])], remainder="passthrough"
            )
            last = final() if final is not None else lm.LogisticRegression(max_iter=500)
            return pipe(ct, last).fit(df, y), frame_probes(df)

        return build

    oh, oe = pp.OneHotEncoder, pp.OrdinalEncoder
    # fmt: off
    CASES.extend([
        Case("OneHotEncoder", "handle_unknown=ignore", on_frame(P(oh, handle_unknown="ignore"))),
        Case("OneHotEncoder", "drop=first, handle_unknown=error", on_frame(P(oh, drop="first"))),
        Case("OneHotEncoder", "min_frequency=30, infrequent_if_exist",
             on_frame(P(oh, min_frequency=30, handle_unknown="infrequent_if_exist"))),
        Case("OrdinalEncoder", "use_encoded_value, unknown_value=-1 + forest",
             on_frame(P(oe, handle_unknown="use_encoded_value", unknown_value=-1),
                      P(en.RandomForestClassifier, n_estimators=5, **rs))),
        Case("OrdinalEncoder", "default (unknown refused) + tree", on_frame(oe, P(dt, **rs))),
        Case("TargetEncoder", "binary target", on_frame(P(pp.TargetEncoder, **rs))),
        Case("TargetEncoder", "continuous target, smooth=5",
             on_frame(P(pp.TargetEncoder, smooth=5.0, target_type="continuous", **rs),
                      lm.LinearRegression)),
        Case("ColumnTransformer", "one-hot + scaler, remainder=drop", _column_transformer),
    ])
    # fmt: on

    # text: a Pipeline from documents to a classifier
    def on_text(*steps: Callable[[], Any]) -> Callable[[], tuple[Any, dict[str, Any]]]:
        def build() -> tuple[Any, dict[str, Any]]:
            model = pipe(*(s() for s in steps)).fit(SENTENCES, TEXT_Y)
            noise = [s.upper() + " fox fox" for s in SENTENCES]
            return model, {"train": SENTENCES, "noise": noise, "unseen": UNSEEN_TEXT}

        return build

    logit = lm.LogisticRegression
    # fmt: off
    CASES.extend([
        Case("CountVectorizer", "default + MultinomialNB",
             on_text(ft.CountVectorizer, nb.MultinomialNB)),
        Case("CountVectorizer", "char_wb (2, 3), binary + logistic",
             on_text(P(ft.CountVectorizer, analyzer="char_wb", ngram_range=(2, 3), binary=True),
                     logit)),
        Case("TfidfVectorizer", "default + logistic", on_text(ft.TfidfVectorizer, logit)),
        Case("TfidfVectorizer", "bigrams, sublinear_tf, stop_words=english + LinearSVC",
             on_text(P(ft.TfidfVectorizer, ngram_range=(1, 2), sublinear_tf=True,
                       stop_words="english"), P(svm.LinearSVC, **rs))),
        Case("TfidfTransformer", "after CountVectorizer, norm=l1 + logistic",
             on_text(ft.CountVectorizer, P(ft.TfidfTransformer, norm="l1"), logit)),
    ])
    # fmt: on


def _column_transformer() -> tuple[Any, dict[str, Any]]:
    from sklearn import compose, linear_model, pipeline, preprocessing

    df, y = frame()
    ct = compose.ColumnTransformer(
        [
            ("cat", preprocessing.OneHotEncoder(handle_unknown="ignore"), ["colour", "size"]),
            ("num", preprocessing.StandardScaler(), ["num_a", "num_b"]),
        ]
    )
    model = pipeline.make_pipeline(ct, linear_model.LogisticRegression()).fit(df, y)
    return model, frame_probes(df)


def frame_probes(df: pd.DataFrame, categorical_cols: tuple[str, ...] = ()) -> dict[str, Any]:
    """Probe frames for the mixed frame: training rows, noisy numbers, unseen categories,
    missing numbers, extreme numbers."""
    plain = df.astype({c: object for c in categorical_cols}) if categorical_cols else df
    noise = plain.copy()
    noise[["num_a", "num_b"]] = noisy(plain[["num_a", "num_b"]].to_numpy())
    unseen = plain.iloc[:8].copy()
    unseen.loc[unseen.index[::2], "colour"] = "purple"
    unseen.loc[unseen.index[1::2], "size"] = "XXS"
    missing = plain.iloc[:8].copy()
    missing.loc[missing.index[::2], "num_a"] = np.nan
    extreme = plain.iloc[:4].copy()
    extreme["num_b"] = [1e300, -1e300, 1e300, -1e300]
    probes = {"train": plain, "noise": noise, "unseen": unseen, "nan": missing, "extreme": extreme}
    if categorical_cols:  # the model was fitted on category columns: score it on them
        dtype = df.dtypes
        return {
            k: v.astype({c: pd.CategoricalDtype(dtype[c].categories) for c in categorical_cols})
            if k != "unseen"
            else v
            for k, v in probes.items()
        }
    return probes


# -- scoring ---------------------------------------------------------------------------


@dataclass
class Stats:
    """The largest differences over every output compared, and how many rows."""

    rows: int = 0
    outputs: set[str] = field(default_factory=set)
    max_abs: float = 0.0
    max_rel: float = 0.0
    labels_identical: bool = True
    bit_identical: bool = True
    problems: list[str] = field(default_factory=list)
    probes: dict[str, Any] = field(default_factory=dict)

    def add(self, what: str, ours: Any, theirs: Any) -> None:
        ours = np.asarray(ours, dtype=np.float64)
        theirs = np.asarray(theirs, dtype=np.float64).reshape(ours.shape)
        self.outputs.add(what)
        finite = np.isfinite(ours) & np.isfinite(theirs)
        diff = np.abs(ours[finite] - theirs[finite])
        if diff.size:
            self.max_abs = max(self.max_abs, float(diff.max()))
            scale = np.abs(theirs[finite])
            nonzero = scale > 0
            if nonzero.any():
                self.max_rel = max(self.max_rel, float((diff[nonzero] / scale[nonzero]).max()))
        if bits_differ(ours, theirs).any():
            self.bit_identical = False
        bad = parity.disagreeing(ours, theirs)
        if bad.any():
            self.problems.append(f"{what}: {int(bad.sum())} cell(s) over the bar")

    def merge(self, other: Stats) -> None:
        self.outputs |= other.outputs
        self.max_abs = max(self.max_abs, other.max_abs)
        self.max_rel = max(self.max_rel, other.max_rel)
        self.labels_identical &= other.labels_identical
        self.bit_identical &= other.bit_identical

    def labels(self, ours: list[Any], theirs: Any) -> None:
        self.outputs.add("labels")
        if list(ours) != list(np.asarray(theirs).tolist()):
            self.labels_identical = self.bit_identical = False
            self.problems.append("labels differ")


def _measure(stats: Stats, ours: Scores | MultiScores, model: Any, Xt: Any) -> None:
    ref = parity.reference_model(model)
    labels = np.asarray(ref.predict(Xt))
    proba = ref.predict_proba(Xt) if hasattr(ref, "predict_proba") else None
    if isinstance(ours, MultiScores):
        if isinstance(proba, np.ndarray):  # multilabel: each label's [1 - p, p]
            proba = [
                np.column_stack([1 - proba[:, j], proba[:, j]]) for j in range(labels.shape[1])
            ]
        for j, sub in enumerate(ours.outputs):
            _measure_one(stats, sub, labels[:, j], None if proba is None else proba[j])
    else:
        _measure_one(stats, ours, labels, proba)
    for extra, values in ours.extras:
        stats.add(extra.name, values, getattr(ref, extra.name)(Xt))


def _measure_one(stats: Stats, ours: Scores, labels: Any, proba: Any) -> None:
    if ours.task == "regression":
        stats.add("predict", ours.values, labels)
        return
    stats.labels(ours.labels(), labels)
    if proba is not None:
        stats.add("predict_proba", ours.proba, proba)


def _records(scorer: Any, X: Any) -> list[dict[str, Any]]:
    if isinstance(X, list):  # documents
        return [{scorer.plan.input_names[0]: d} for d in X]
    if isinstance(X, pd.DataFrame):
        X = X.astype({c: object for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)})
    return to_records(scorer, X)


#: Kernels a final model reads its features with: the transform tests' own, and the
#: compensated dot product of the linear regressors.
FINAL_KERNELS = (*MODEL_KERNELS, "linear_dot2")


def _transform(stats: Stats, model: Any, scorer: Any, X: Any) -> None:
    """The features the plan's final model reads against ``model[:-1].transform``."""
    if not hasattr(model, "steps") or isinstance(X, list):
        return
    finals = [op for op in scorer.plan.ops if op.kernel in FINAL_KERNELS]
    if not finals:
        return  # the predictions are compared
    columns = [int(c) for c in finals[-1].args[0]]
    ours = run_ops(scorer, X.astype(object) if isinstance(X, pd.DataFrame) else X)[:, columns]
    theirs = dense(model[:-1].transform(X))
    if ours.shape == theirs.shape:
        stats.add("transform", ours, theirs)


def score_probe(stats: Stats, name: str, model: Any, scorer: Any, X: Any) -> None:
    """Score one probe set both ways: both refuse, or both score and are compared."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parity.sklearn_scores(model, None, X)
        theirs_ok, theirs_msg = True, ""
    except ValueError as exc:
        theirs_ok, theirs_msg = False, str(exc).splitlines()[0]
    try:
        ours = scorer.score_records(_records(scorer, X))
        ours_ok, ours_msg = True, ""
    except InputError as exc:
        ours_ok, ours_msg = False, str(exc).splitlines()[0]
    if not theirs_ok and not ours_ok:
        stats.probes[name] = "refused by both"
        return
    if theirs_ok != ours_ok:
        who = "the plan refused" if theirs_ok else "scikit-learn refused"
        stats.problems.append(f"{name}: {who} the rows ({ours_msg or theirs_msg})")
        stats.probes[name] = "outcomes differ"
        return
    part = Stats()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        report = parity.compare_with_model(ours, model, X)
        _measure(part, ours, model, X)
        _transform(part, model, scorer, X)
    stats.merge(part)
    stats.problems += [f"{name}: {p}" for p in (*part.problems, *report.problems[:3])]
    stats.rows += len(ours)
    stats.probes[name] = {
        "rows": len(ours),
        "max_abs_diff": part.max_abs,
        "max_rel_diff": part.max_rel,
    }


def run_case(c: Case) -> dict[str, Any]:
    """Fit, compile and score one configuration; its row of the report."""
    start = time.perf_counter()
    row: dict[str, Any] = {"class": c.cls, "config": c.config, "expected_refusal": c.refused}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, probes = c.build()
    except Exception as exc:  # noqa: BLE001 (a fit failure is the sweep's own bug: shown)
        row.update(status="error", message=f"fit failed: {type(exc).__name__}: {exc}")
        return row
    row["family"] = c.family or family(model, c.cls)
    try:
        scorer = compile_scorer(model)
    except Exception as exc:  # noqa: BLE001 (the refusal, or a crash, is the result)
        row.update(status="refused", message=f"{type(exc).__name__}: {exc}")
        row["seconds"] = round(time.perf_counter() - start, 2)
        return row
    stats = Stats()
    try:
        for name, X in probes.items():
            score_probe(stats, name, model, scorer, X)
    except Exception as exc:  # noqa: BLE001 (a crash while scoring is a finding)
        stats.problems.append(f"crash: {type(exc).__name__}: {exc}")
    row.update(
        status="ok" if not stats.problems else "differs",
        rows=stats.rows,
        outputs=sorted(stats.outputs, key=OUTPUT_ORDER.index),
        max_abs_diff=stats.max_abs,
        max_rel_diff=stats.max_rel,
        # the rows at +-1e300 make the absolute differences of huge values: without them
        max_abs_diff_without_extremes=max(
            (
                p["max_abs_diff"]
                for k, p in stats.probes.items()
                if k != "extreme" and isinstance(p, dict)
            ),
            default=0.0,
        ),  # fmt: skip
        labels_identical=stats.labels_identical if "labels" in stats.outputs else None,
        bit_identical=stats.bit_identical,
        probes=stats.probes,
        problems=stats.problems[:8],
        seconds=round(time.perf_counter() - start, 2),
    )
    if c.refused:
        row["message"] = "compiled, although this configuration is documented as refused"
    return row


OUTPUT_ORDER = [
    "labels",
    "predict",
    "predict_proba",
    "decision_function",
    "score_samples",
    "transform",
]

FAMILIES = [
    ("lightgbm", "LightGBM"),
    ("xgboost", "XGBoost"),
    ("sklearn.tree", "trees"),
    ("sklearn.ensemble._forest", "trees"),
    ("sklearn.ensemble._iforest", "trees"),
    ("sklearn.ensemble._gb", "boosting"),
    ("sklearn.ensemble._hist_gradient_boosting", "boosting"),
    ("sklearn.ensemble", "ensembles of estimators"),
    ("sklearn.calibration", "ensembles of estimators"),
    ("sklearn.model_selection", "ensembles of estimators"),
    ("sklearn.linear_model._ransac", "ensembles of estimators"),
    ("sklearn.multioutput", "multi-output"),
    ("sklearn.linear_model._glm", "GLM"),
    ("sklearn.linear_model", "linear"),
    ("sklearn.svm", "SVM"),
    ("sklearn.neighbors", "neighbours"),
    ("sklearn.naive_bayes", "naive Bayes"),
    ("sklearn.discriminant_analysis", "discriminant"),
    ("sklearn.neural_network", "MLP"),
    ("sklearn.feature_extraction", "text"),
    ("sklearn.decomposition", "decomposition"),
    ("sklearn.cluster", "decomposition"),
    ("sklearn.preprocessing", "preprocessors"),
    ("sklearn.impute", "preprocessors"),
    ("sklearn.compose", "preprocessors"),
    ("sklearn.pipeline", "preprocessors"),
]


def registered() -> dict[str, type]:
    """Every class in the converter registry, by name."""
    return {r.cls.__name__: r.cls for r in supported()}


def family(model: Any, cls_name: str) -> str:
    cls = registered().get(cls_name, type(model))
    module = cls.__module__
    for prefix, name in FAMILIES:
        if module.startswith(prefix):
            return name
    return module.split(".")[0]


def cases() -> list[Case]:
    if not CASES:
        _register_cases()
    return CASES


def sweep(classes: set[str] | None = None) -> dict[str, Any]:
    """Run every case (of ``classes`` if given); the report as JSON-ready data."""
    reg = registered()
    all_cases = cases()
    unknown = sorted({c.cls for c in all_cases} - set(reg))
    if unknown:
        raise SystemExit(f"cases name classes the registry does not hold: {unknown}")
    if classes is not None and (missing := sorted(classes - set(reg))):
        raise SystemExit(f"not registered: {missing}")
    chosen = [c for c in all_cases if classes is None or c.cls in classes]
    start = time.perf_counter()
    rows = []
    for c in chosen:
        rows.append(run_case(c))
        print(f"{c.cls:32} {c.config[:40]:40} {rows[-1]['status']}", file=sys.stderr)
    with_case = {c.cls for c in all_cases}
    return {
        "tolerance": BAR,
        "relative_tolerance": parity.RELATIVE_TOLERANCE,
        "registered": len(reg),
        "covered": sorted(with_case & set(reg)),
        "not_covered": sorted(set(reg) - with_case),
        "not_run": sorted((with_case - classes) if classes is not None else set()),
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
        "failures": [
            f"{r['class']} ({r['config']}): {r['status']}"
            for r in rows
            if r["status"] in ("error", "differs")
            or (r["status"] == "refused") != r["expected_refusal"]
        ],
    }


# -- report ----------------------------------------------------------------------------


def _num(x: float | None) -> str:
    return "-" if x is None else ("0" if x == 0 else f"{x:.2g}")


def _yes(x: bool | None) -> str:
    return "-" if x is None else ("yes" if x else "no")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Parity sweep",
        "",
        "Every class of the converter registry, compiled and scored against its library "
        "(`bench/parity_sweep.py`). Bar: labels identical, numbers within "
        f"{report['tolerance']:g} absolute (or {report['relative_tolerance']:g} relative above "
        "1e3). Relative difference over cells where the library's value is not zero. "
        f"{report['registered']} classes registered, {len(report['covered'])} covered; "
        f"{sum(r.get('rows', 0) for r in report['rows'])} rows scored in {report['seconds']} s.",
        "",
        "| class | family | configuration | rows | outputs | max abs | max rel | labels "
        "identical | bit-identical | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        if r["status"] in ("refused", "error"):
            msg = r["message"].replace("|", "\\|").replace("\n", " ")
            lines.append(
                f"| `{r['class']}` | {r.get('family', '-')} | {r['config']} | - | - | - | - | - "
                f"| - | {r['status']}: {msg} |"
            )
            continue
        result = "ok" if r["status"] == "ok" else "; ".join(r["problems"]).replace("|", "\\|")
        refused_by_both = [k for k, v in r["probes"].items() if v == "refused by both"]
        if refused_by_both and r["status"] == "ok":
            result += f" ({', '.join(refused_by_both)} refused by both)"
        lines.append(
            f"| `{r['class']}` | {r['family']} | {r['config']} | {r['rows']} | "
            f"{', '.join(r['outputs'])} | {_num(r['max_abs_diff'])} | {_num(r['max_rel_diff'])} "
            f"| {_yes(r['labels_identical'])} | {_yes(r['bit_identical'])} | {result} |"
        )
    lines += ["", *family_summary(report)]
    lines += ["", "## Refused configurations (the compiler's messages)", ""]
    lines += [
        f"- `{r['class']}` ({r['config']}): {r['message']}"
        for r in report["rows"]
        if r["status"] == "refused"
    ] or ["none"]
    lines += ["", "## Not covered", ""]
    lines.append(
        ", ".join(f"`{n}`" for n in report["not_covered"])
        or "none: every registered class has a case."
    )
    if report["not_run"]:
        lines += ["", "Not run this time (`--classes`): " + ", ".join(report["not_run"])]
    lines += ["", "## Failures", ""]
    by_name = {f"{r['class']} ({r['config']})": r for r in report["rows"]}
    for f in report["failures"]:
        detail = by_name[f.rsplit(":", 1)[0]]
        lines.append(f"- {f}: " + "; ".join(detail.get("problems") or [detail.get("message", "")]))
    if not report["failures"]:
        lines.append("none")
    return "\n".join(lines) + "\n"


def family_summary(report: dict[str, Any]) -> list[str]:
    """The largest differences per family, over its scored configurations."""
    lines = [
        "## Largest difference per family",
        "",
        "| family | configurations (refused) | max abs | max abs without the +-1e300 rows "
        "| max rel | bit-identical configurations |",
        "|---|---|---|---|---|---|",
    ]
    families: dict[str, list[dict[str, Any]]] = {}
    for r in report["rows"]:
        families.setdefault(r.get("family", "-"), []).append(r)
    for name in sorted(families):
        rows = families[name]
        scored = [r for r in rows if "max_abs_diff" in r]
        refused = sum(r["status"] == "refused" for r in rows)
        worst = {
            k: max((r[k] for r in scored), default=0.0)
            for k in ("max_abs_diff", "max_abs_diff_without_extremes", "max_rel_diff")
        }
        exact = sum(bool(r["bit_identical"]) for r in scored)
        lines.append(
            f"| {name} | {len(rows)} ({refused}) | {_num(worst['max_abs_diff'])} | "
            f"{_num(worst['max_abs_diff_without_extremes'])} | {_num(worst['max_rel_diff'])} | "
            f"{exact} of {len(scored)} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", help="comma-separated registered class names to run")
    ap.add_argument("--out", type=Path, default=OUT, help="JSON report (markdown beside it)")
    args = ap.parse_args(argv)
    classes = {c.strip() for c in args.classes.split(",") if c.strip()} if args.classes else None
    report = sweep(classes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    print(
        f"{len(report['rows'])} configurations, {len(report['failures'])} failure(s); "
        f"not covered: {report['not_covered'] or 'none'}"
    )
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
