"""XGBClassifier / XGBRegressor: XGBoost's own trees and float32 arithmetic.

The trees come from the booster's JSON model (``save_raw("json")``). XGBoost
casts the input to float32 and a split sends ``x < split_condition`` left
(float32), NaN (its ``missing``) the ``default_left`` way: on the ``tree_sum``
kernel's float32 path (``float32(x) <= threshold``) that is the threshold
``nextafter(float32(condition), -inf)``. A leaf's value is its float32
``split_condition``.

XGBoost sums in float32 (its prediction vector), starting from the base margin,
tree by tree into each tree's output group, then transforms in float32. So each
tree writes its own workspace column (``tree_sum``, one output per tree: the
leaf itself) and ``xgb_sum`` adds them in XGBoost's order; then
``xgb_sigmoid`` (``binary:logistic``, ``reg:logistic``; the wrapper's
``[1 - p, p]`` in float32), ``xgb_softmax`` (``multi:softprob``) or
``xgb_exp`` (poisson, gamma, tweedie). The base margin is XGBoost's own: the
model's ``base_score`` taken to margin space by its objective in float32
(``ProbToMargin``), read by predicting with a copy of the model whose trees are
a single zero leaf each, since a float64 logit of the stored base score can
differ in the last bit.

The classifier predicts class 1 where ``p > 0.5`` (binary) or the first largest
probability, which is the argmax of ``[1 - p, p]`` / the probabilities. Trees used
are those ``predict`` uses (``best_iteration`` after early stopping). Categorical
splits, vector leaves, dart and gblinear boosters, a ``missing`` other than NaN,
sparse input (XGBoost takes its left-out zeros as missing),
``multi:softmax`` (its probabilities come from scipy) and custom objectives are
refused.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
from xgboost import Booster, XGBClassifier, XGBRegressor

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.trees import compact_trees
from bundler.errors import UnsupportedEstimatorError

IDENTITY_OBJECTIVES = (
    "reg:squarederror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "reg:quantileerror",
)
EXP_OBJECTIVES = ("count:poisson", "reg:gamma", "reg:tweedie")
#: What JSON writes for a node with no parent (the root).
_NO_PARENT = 2147483647


def _model(est: Any, builder: PlanBuilder) -> dict[str, Any]:
    """The booster's JSON model, after refusing what this converter cannot score."""
    if getattr(est, "_Booster", None) is None:
        raise UnsupportedEstimatorError(f"{builder.origin(est)} is not fitted; fit it first")
    if callable(est.objective):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: a custom objective function has no known output "
            "transform; valid: a built-in objective given by name"
        )
    missing = est.missing
    if not (isinstance(missing, float) and math.isnan(missing)):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: missing={missing!r} is not supported; valid: missing=nan "
            "(NaN follows each split's default direction)"
        )
    model = json.loads(est.get_booster().save_raw("json"))
    learner = model["learner"]
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree":
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: booster {booster.get('name')!r} is not supported; "
            "valid: gbtree"
        )
    targets = int(learner["learner_model_param"].get("num_target", "1"))
    if targets > 1:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: {targets} targets (a 2-d y, or several quantile_alpha) "
            "are not supported; valid: one target"
        )
    if any(t not in ("float", "int", "i", "q") for t in learner.get("feature_types") or []):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: categorical features are not supported; valid: numeric "
            "features only (enable_categorical=False)"
        )
    return model


def _objective(model: dict[str, Any]) -> str:
    return str(model["learner"]["objective"]["name"])


def base_margin(model: dict[str, Any], n_features: int) -> np.ndarray:
    """XGBoost's starting margin per output group, computed by XGBoost itself: a copy
    of the model whose trees are one zero leaf per group predicts exactly it."""
    learner = model["learner"]
    fitted = learner["gradient_booster"]["model"]
    k = max(fitted["tree_info"]) + 1
    leaf = {
        **fitted["trees"][0],
        "left_children": [-1],
        "right_children": [-1],
        "parents": [_NO_PARENT],
        "split_indices": [0],
        "split_conditions": [0.0],
        "split_type": [0],
        "default_left": [0],
        "base_weights": [0.0],
        "loss_changes": [0.0],
        "sum_hessian": [0.0],
        "categories": [],
        "categories_nodes": [],
        "categories_segments": [],
        "categories_sizes": [],
    }
    leaf["tree_param"] = {**leaf["tree_param"], "num_nodes": "1"}
    gbtree = {
        **fitted,
        "trees": [{**leaf, "id": g} for g in range(k)],
        "tree_info": list(range(k)),
        "iteration_indptr": [0, k],
        "gbtree_model_param": {**fitted["gbtree_model_param"], "num_trees": str(k)},
    }
    # new dicts along the path to the trees: the model itself is left as it is
    booster_json = {**learner["gradient_booster"], "model": gbtree}
    leaf_model = {**model, "learner": {**learner, "gradient_booster": booster_json}}
    booster = Booster()
    booster.load_model(bytearray(json.dumps(leaf_model).encode()))
    margin = booster.inplace_predict(np.zeros((1, n_features)), predict_type="margin")
    return np.asarray(margin, dtype=np.float64).reshape(-1)


def _tree(est: Any, builder: PlanBuilder, tree: dict[str, Any]) -> SimpleNamespace:
    """One JSON tree as ``compact_trees`` takes it, thresholds for ``float32(x) <= t``."""
    left = np.asarray(tree["left_children"], dtype=np.int64)
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: vector leaves (multi_strategy='multi_output_tree') are "
            "not supported; valid: multi_strategy='one_output_per_tree'"
        )
    if any(tree["split_type"]):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: categorical splits are not supported; valid: numeric "
            "features only"
        )
    cond = np.asarray(tree["split_conditions"], dtype=np.float32)
    leaf = left < 0
    if np.any(~leaf & (cond == -np.inf)):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: a split at -inf sends nothing left but NaN, which a "
            "threshold cannot say; cannot compile it"
        )
    # float32(x) < c  <=>  float32(x) <= the float32 just below c
    below = np.nextafter(cond, np.float32(-np.inf)).astype(np.float64)
    return SimpleNamespace(
        children_left=left,
        children_right=np.asarray(tree["right_children"], dtype=np.int64),
        feature=np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)),
        threshold=np.where(leaf, np.inf, below),
        missing_go_to_left=np.asarray(tree["default_left"], dtype=np.uint8),
        value=np.where(leaf, cond, 0.0).astype(np.float64).reshape(-1, 1),
    )


def emit_margin(
    est: Any, builder: PlanBuilder, cols: Cols, names: list[str], model: dict[str, Any]
) -> Cols:
    """XGBoost's margins (``predict(output_margin=True)``), one column per output group."""
    gbtree = model["learner"]["gradient_booster"]["model"]
    n_features = int(model["learner"]["learner_model_param"]["num_feature"])
    if n_features != len(cols):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: fitted on {n_features} features, given {len(cols)}"
        )
    begin, end = est._get_iteration_range(None)  # what predict uses (best_iteration)
    indptr = gbtree["iteration_indptr"]
    first, last = indptr[begin], indptr[end] if end > 0 else indptr[-1]
    info = np.asarray(gbtree["tree_info"][first:last], dtype=np.int64)
    k = len(names)
    # the trees first: what they refuse must not reach XGBoost's model loader below
    trees = [_tree(est, builder, t) for t in gbtree["trees"][first:last]]
    start = base_margin(model, n_features)
    if start.size == 1:
        start = np.repeat(start, k)
    if info.size == 0 or info.max() >= k or start.size != k:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: {info.size} trees and {start.size} base margins for "
            f"{k} outputs; cannot read the model"
        )
    if cols.sparse:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: receives a sparse matrix, whose left-out zeros XGBoost "
            "treats as missing values (not as 0.0); make the previous step produce dense "
            "output (e.g. OneHotEncoder(sparse_output=False), sparse_threshold=0)"
        )
    # XGBoost accepts NaN and infinity (float32 overflow is infinity too)
    builder.use_as_numbers(cols, est)
    table = compact_trees(trees, [t.value for t in trees], list(range(len(trees))))
    leaves = table.emit(
        builder, est, cols, [f"tree {t} leaf" for t in range(len(trees))], start=0.0
    )
    margin = builder.new_cols(names)
    builder.emit(
        "xgb_sum", est, builder.idx(leaves), builder.idx(margin),
        builder.array(start, np.float64), builder.array(info, np.int64),
    )  # fmt: skip
    return margin


@register_converter(
    XGBClassifier,
    "objective binary:logistic and multi:softprob; predict, predict_proba in XGBoost's "
    "float32 arithmetic; NaN (missing=nan) and infinity; numeric features only",
)
def convert_xgb_classifier(est: XGBClassifier, builder: PlanBuilder, cols: Cols) -> Prediction:
    model = _model(est, builder)
    objective = _objective(model)
    classes = tuple(est.classes_)
    proba = builder.new_cols([f"proba[{c}]" for c in classes])
    if len(classes) == 2 and objective == "binary:logistic":
        margin = emit_margin(est, builder, cols, ["margin"], model)
        builder.emit("xgb_sigmoid", est, builder.idx(margin), builder.idx(proba))
    elif len(classes) > 2 and objective == "multi:softprob":
        margin = emit_margin(est, builder, cols, [f"margin[{c}]" for c in classes], model)
        builder.emit("xgb_softmax", est, builder.idx(margin), builder.idx(proba))
    else:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: objective {objective!r} with {len(classes)} classes is not "
            "supported; valid: binary:logistic or multi:softprob"
        )
    # predict: p > 0.5 (binary), the first largest probability (multiclass)
    return Prediction("classification", proba, "argmax", classes, proba)


@register_converter(
    XGBRegressor,
    f"objective {', '.join(IDENTITY_OBJECTIVES)} (identity), {', '.join(EXP_OBJECTIVES)} "
    "(expf), reg:logistic (sigmoid), one target; XGBoost's float32 arithmetic; NaN "
    "(missing=nan) and infinity; numeric features only",
)
def convert_xgb_regressor(est: XGBRegressor, builder: PlanBuilder, cols: Cols) -> Prediction:
    model = _model(est, builder)
    objective = _objective(model)
    kernel = {"reg:logistic": "xgb_sigmoid", **dict.fromkeys(EXP_OBJECTIVES, "xgb_exp")}
    if objective not in (*IDENTITY_OBJECTIVES, *kernel):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: objective {objective!r} is not supported; valid: "
            f"{', '.join((*IDENTITY_OBJECTIVES, *kernel))}"
        )
    margin = emit_margin(est, builder, cols, ["margin"], model)
    if objective in IDENTITY_OBJECTIVES:
        return Prediction("regression", margin, "value")
    value = builder.new_cols(["value"])
    builder.emit(kernel[objective], est, builder.idx(margin), builder.idx(value))
    return Prediction("regression", value, "value")
