"""TargetEncoder compiles to ``transform`` (the predict-time encoding), bit for bit.

``fit_transform`` cross-fits (each training row encoded by the other folds) and
is never what a fitted model sees at predict time: ``transform`` looks each category
up in ``encodings_``, and an unknown one (NaN included, when training had none)
gets ``target_mean_``. Binary, multiclass and continuous targets; text and numeric
columns; infinity in a numeric column is refused as scikit-learn refuses it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import TargetEncoder
from sklearn.tree import DecisionTreeRegressor

from tests._parity import assert_parity, assert_refused, compile_scorer
from tests._transform_parity import assert_features_identical

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def frame(with_nan: bool) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(4)
    n = 300
    color = rng.choice(["red", "green", "blue", "grey"], n).astype(object)
    if with_nan:
        color[rng.rand(n) < 0.1] = np.nan
    df = pd.DataFrame(
        {
            "color": color,
            "size": rng.choice(["S", "M", "L"], n).astype(object),
            "code": rng.randint(0, 6, n).astype(float),
        }
    )
    score = (df["color"] == "red") * 1.5 + (df["size"] == "L") + df["code"] * 0.3
    return df, score.to_numpy() + rng.normal(scale=0.5, size=n)


def target(kind: str, score: np.ndarray) -> np.ndarray:
    if kind == "binary":
        return (score > np.median(score)).astype(int)
    if kind == "multiclass":
        return np.digitize(score, np.quantile(score, [0.33, 0.66]))
    return score


def final(kind: str) -> Any:
    return DecisionTreeRegressor(random_state=0) if kind == "continuous" else LogisticRegression()


def probes(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    unseen = df.iloc[:4].copy()
    unseen["color"] = ["purple", np.nan, "Red", ""]
    unseen["code"] = [7.0, np.nan, -0.0, 1e300]
    return [("unseen and missing", unseen)]


@pytest.mark.parametrize("smooth", ["auto", 5.0])
@pytest.mark.parametrize("with_nan", [False, True])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "continuous"])
def test_target_encoder(kind: str, with_nan: bool, smooth: Any) -> None:
    df, score = frame(with_nan)
    y = target(kind, score)
    model = make_pipeline(TargetEncoder(smooth=smooth, random_state=0), final(kind)).fit(df, y)
    assert model[0].target_type_ == kind
    scorer = compile_scorer(model)
    assert_features_identical(model, df, scorer, context="training data")
    assert_parity(model, None, df, scorer=scorer)
    for context, block in probes(df):
        assert_features_identical(model, block, scorer, context=context)
        assert_parity(model, None, block, scorer=scorer, context=context)
    for v in (math.inf, -math.inf):
        block = df.iloc[:3].copy()
        block.iloc[1, 2] = v
        assert_refused(model, None, block, scorer=scorer)
