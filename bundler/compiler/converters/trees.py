"""Decision trees and random forests: one node table, traversed as scikit-learn does.

Thresholds stay float64 and the input is rounded to float32 before comparing
(``float32(x) <= threshold`` goes left), NaN follows ``missing_go_to_left``,
and forest outputs are summed in estimator order then divided by the number
of trees: the same arithmetic as scikit-learn, so results match to the bit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


def _emit_forest(
    builder: PlanBuilder,
    est: object,
    cols: Cols,
    trees: Sequence[object],
    names: list[str],
    value_of: str,
) -> Cols:
    if getattr(est, "n_outputs_", 1) != 1:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: multi-output trees are not supported; valid: one target"
        )
    first = trees[0]
    # scikit-learn's trees take NaN in dense input only; a sparse ColumnTransformer
    # output makes them refuse it.
    allow_nan = bool(first._support_missing_values(np.zeros((1, len(cols))))) and not any(
        c in builder.sparse for c in cols.idx
    )
    builder.check(cols, est, allow_nan=allow_nan, float32=True)
    roots, feature, threshold, left, right, missing, values = [], [], [], [], [], [], []
    offset = 0
    for tree in trees:
        t = tree.tree_
        is_leaf = t.children_left < 0
        roots.append(offset)
        feature.append(np.where(is_leaf, 0, t.feature))
        threshold.append(t.threshold)
        left.append(np.where(is_leaf, -1, t.children_left + offset))
        right.append(np.where(is_leaf, -1, t.children_right + offset))
        missing.append(t.missing_go_to_left)
        if value_of == "proba":
            values.append(t.value[:, 0, :])
        else:
            values.append(t.value[:, 0, :1])
        offset += t.node_count
    value = np.concatenate(values)
    if value.shape[1] != len(names):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: trees have {value.shape[1]} outputs, expected {len(names)}"
        )
    out = builder.new_cols(names)
    builder.emit(
        "forest",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(roots, np.int64),
        builder.array(np.concatenate(feature), np.int64),
        builder.array(np.concatenate(threshold), np.float64),
        builder.array(np.concatenate(left), np.int64),
        builder.array(np.concatenate(right), np.int64),
        builder.array(np.concatenate(missing), np.uint8),
        builder.array(value, np.float64),
        float(len(trees)) if len(trees) > 1 else 1.0,
    )
    return out


def _classifier(
    est: object, builder: PlanBuilder, cols: Cols, trees: Sequence[object]
) -> Prediction:
    classes = tuple(est.classes_)
    proba = _emit_forest(builder, est, cols, trees, [f"proba[{c}]" for c in classes], "proba")
    return Prediction("classification", proba, "argmax", classes, proba)


def _regressor(
    est: object, builder: PlanBuilder, cols: Cols, trees: Sequence[object]
) -> Prediction:
    value = _emit_forest(builder, est, cols, trees, ["value"], "value")
    return Prediction("regression", value, "value")


@register_converter(DecisionTreeClassifier, "predict, predict_proba; NaN via missing_go_to_left")
def convert_tree_classifier(
    est: DecisionTreeClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    return _classifier(est, builder, cols, [est])


@register_converter(DecisionTreeRegressor, "predict; NaN via missing_go_to_left")
def convert_tree_regressor(
    est: DecisionTreeRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction:
    return _regressor(est, builder, cols, [est])


@register_converter(RandomForestClassifier, "predict, predict_proba; NaN via missing_go_to_left")
def convert_forest_classifier(
    est: RandomForestClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    return _classifier(est, builder, cols, est.estimators_)


@register_converter(RandomForestRegressor, "predict; NaN via missing_go_to_left")
def convert_forest_regressor(
    est: RandomForestRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction:
    return _regressor(est, builder, cols, est.estimators_)
