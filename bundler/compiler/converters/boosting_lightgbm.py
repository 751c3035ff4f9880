"""LGBMClassifier / LGBMRegressor: LightGBM's own trees, read from its JSON dump.

The thresholds come from the model text, which keeps the ``inf`` of a split
sending NaN apart (the dump writes it as 1e300).

LightGBM predicts in float64 with no cast (``Tree::NumericalDecision``): a split
sends ``x <= threshold`` left. Before that, its predictor zeroes every value
with ``|x| <= kZeroThreshold`` (``1e-35f`` as a double; the dense row reader
keeps only larger values and NaN), and each split's missing type rules NaN:
``None`` compares NaN as 0.0, ``NaN`` sends it the ``default_left`` way, and
``Zero`` sends zero and NaN that way. All three are one threshold per node on
the ``tree_sum`` kernel (comparing float64): NaN's direction is a node flag, and
a threshold in ``[-kZeroThreshold, kZeroThreshold)`` moves to the band's edge so
that the band goes where 0.0 goes. A ``Zero`` split that sends zero against its
own comparison cannot be one threshold, and is refused.

The raw score is ``0.0`` plus every tree's leaf (``GBDT::PredictRaw``: iteration
by iteration, class by class; ``boost_from_average`` is already in the first
trees' leaves); ``decision_function`` is that sum. A model that averages
(``boosting_type="rf"``) then divides it by the number of iterations. Then the
objective's output transform: ``binary`` ``1 / (1 + exp(-x))`` and the wrapper's
``[1 - p, p]``, ``multiclass`` LightGBM's softmax (the row maximum subtracted
first, as ``Common::Softmax``), ``exp`` for poisson, gamma and tweedie, none for
the other regression objectives. The classifier predicts the class of the
largest probability, as the wrapper does (``np.argmax`` of ``predict_proba``,
not ``raw > 0``: a tiny positive raw score rounds to probability 0.5).

Categorical splits, linear trees, custom objectives and prediction early stopping
are refused: they score by rules this plan does not run.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
from lightgbm import LGBMClassifier, LGBMRegressor

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.trees import compact_trees
from bundler.errors import UnsupportedEstimatorError

#: LightGBM's ``kZeroThreshold`` (``1e-35f``, held in a double): smaller magnitudes are 0.
ZERO_THRESHOLD = float(np.float32(1e-35))
#: The largest float64 below ``-ZERO_THRESHOLD``: ``x <= BELOW_BAND`` is ``x < -kZeroThreshold``.
BELOW_BAND = float(np.nextafter(-ZERO_THRESHOLD, -np.inf))

#: Regression objectives whose output is the raw score, and those whose output is its exp.
IDENTITY_OBJECTIVES = ("regression", "regression_l1", "huber", "fair", "quantile", "mape")
EXP_OBJECTIVES = ("poisson", "gamma", "tweedie")


def _dump(est: Any, builder: PlanBuilder) -> dict[str, Any]:
    """The booster's JSON dump, of the iterations ``predict`` uses (``best_iteration``)."""
    booster = getattr(est, "_Booster", None)
    if booster is None:
        raise UnsupportedEstimatorError(f"{builder.origin(est)} is not fitted; fit it first")
    if callable(getattr(est, "objective", None)) or callable(getattr(est, "_objective", None)):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: a custom objective function has no known output "
            "transform; valid: a built-in objective given by name"
        )
    params = est.get_params()
    if any(params.get(k) for k in ("pred_early_stop", "linear_tree", "linear_trees")):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: linear_tree and pred_early_stop are not supported; "
            "valid: plain trees, every iteration scored"
        )
    return booster.dump_model()


def _text_thresholds(est: Any) -> list[list[float]]:
    """Each tree's thresholds, by split index, from the model text.

    The JSON dump writes thresholds through ``AvoidInf`` (beyond +-1e300 becomes +-1e300,
    though LightGBM compares with the real ``inf`` of a split that sends NaN apart); the
    model text keeps them, 17 significant digits, ``inf`` as it is.
    """
    out: list[list[float]] = []
    for line in est.booster_.model_to_string().splitlines():
        if line.startswith("Tree="):
            out.append([])
        elif line.startswith("threshold=") and out:
            out[-1] = [float(v) for v in line.split("=", 1)[1].split()]
    return out


def _objective(dump: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """``"binary sigmoid:1"`` as ``("binary", {"sigmoid": "1"})``; a bare word (``sqrt``)
    maps to ``""``."""
    name, *options = str(dump.get("objective", "")).split()
    return name, dict((*o.split(":", 1), "")[:2] for o in options)


def _nan_left_and_threshold(
    est: Any, builder: PlanBuilder, node: dict[str, Any], thresholds: list[float]
) -> tuple[bool, float]:
    """Where NaN goes, and the float64 threshold that sends every other value as LightGBM does.

    Values in the band ``[-kZeroThreshold, kZeroThreshold]`` are 0.0 to LightGBM, which a
    ``Zero`` split sends the default way and the others compare with the threshold.
    """
    thr = thresholds[int(node["split_index"])]
    if thr != float(node["threshold"]) and abs(float(node["threshold"])) != 1e300:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: the model text and its JSON dump disagree on a "
            f"threshold ({thr!r}, {node['threshold']!r}); cannot tell which LightGBM uses"
        )
    missing = node["missing_type"]
    if missing not in ("None", "NaN", "Zero"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: unknown missing_type {missing!r}; valid: None, Zero, NaN"
        )
    band_left = bool(node["default_left"]) if missing == "Zero" else thr >= 0.0
    nan_left = band_left if missing != "NaN" else bool(node["default_left"])
    if -ZERO_THRESHOLD <= thr < ZERO_THRESHOLD:
        # no value outside the band lies in [-kZeroThreshold, thr]: only the band moves
        return nan_left, ZERO_THRESHOLD if band_left else BELOW_BAND
    if band_left != (thr >= ZERO_THRESHOLD):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: a zero_as_missing split sends zero "
            f"{'left' if band_left else 'right'} past its threshold {thr!r}, which one "
            "comparison cannot do; valid: zero_as_missing=False"
        )
    return nan_left, thr


def _preorder(root: dict[str, Any]) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One dumped tree's nodes in pre-order, and each one's (left, right) positions
    (-1 at leaves); iterative, as trees can be deeper than Python's recursion limit."""
    nodes: list[dict[str, Any]] = []
    children: list[list[int]] = []
    stack = [(root, -1, 0)]
    while stack:
        node, parent, side = stack.pop()
        if parent >= 0:
            children[parent][side] = len(nodes)
        nodes.append(node)
        children.append([-1, -1])
        if "split_index" in node:
            stack += [
                (node["right_child"], len(nodes) - 1, 1),
                (node["left_child"], len(nodes) - 1, 0),
            ]
    return nodes, np.asarray(children, dtype=np.int64).reshape(-1, 2)


def _tree(
    est: Any, builder: PlanBuilder, root: dict[str, Any], thresholds: list[float]
) -> SimpleNamespace:
    """One dumped tree as ``compact_trees`` takes it, with its leaf values as ``value``."""
    nodes, children = _preorder(root)
    n = len(nodes)
    feature, threshold = np.zeros(n, dtype=np.int64), np.full(n, np.inf)
    nan_left, value = np.zeros(n, dtype=np.uint8), np.zeros((n, 1))
    for i, node in enumerate(nodes):
        if "split_index" not in node:
            value[i, 0] = float(node["leaf_value"])
            continue
        if node.get("decision_type") != "<=":
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: categorical splits are not supported; valid: "
                "numeric features only (no categorical_feature, no pandas category columns)"
            )
        nan_left[i], threshold[i] = _nan_left_and_threshold(est, builder, node, thresholds)
        feature[i] = int(node["split_feature"])
    return SimpleNamespace(
        children_left=children[:, 0],
        children_right=children[:, 1],
        feature=feature,
        threshold=threshold,
        missing_go_to_left=nan_left,
        value=value,
    )


def _trees(est: Any, builder: PlanBuilder, dump: dict[str, Any], k: int) -> list[SimpleNamespace]:
    """Every tree of the dump, in LightGBM's order (iteration by iteration, class by class)."""
    text = _text_thresholds(est)
    if len(text) != len(dump["tree_info"]) or not text or len(text) % k:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: {len(dump['tree_info'])} trees in the dump, {len(text)} "
            f"in the model text, for {k} per iteration; cannot read the model"
        )
    out = []
    for info, thresholds in zip(dump["tree_info"], text, strict=True):
        if "leaf_coeff" in info["tree_structure"] or info.get("is_linear"):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: linear trees are not supported; valid: linear_tree=False"
            )
        out.append(_tree(est, builder, info["tree_structure"], thresholds))
    return out


def emit_lightgbm(
    est: Any, builder: PlanBuilder, cols: Cols, names: list[str], dump: dict[str, Any]
) -> tuple[Cols, Cols]:
    """Raw scores (``predict(raw_score=True)``, the sum of the trees) of a fitted LightGBM
    model, and what its objective transforms: the raw scores, or their average over the
    iterations when the model averages (``GBDT::Predict`` divides, ``PredictRaw`` does not)."""
    k = int(dump["num_tree_per_iteration"])
    n_features = int(dump["max_feature_idx"]) + 1
    if n_features != len(cols) or k != len(names):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: fitted on {n_features} features with {k} trees per "
            f"iteration, given {len(cols)} features for {len(names)} outputs"
        )
    if dump.get("pandas_categorical"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: fitted on pandas category columns, which LightGBM "
            "encodes itself; valid: numeric columns (encode categories in the extractor)"
        )
    # LightGBM takes NaN and infinity in every feature (no validation to mirror)
    builder.use_as_numbers(cols, est)
    trees = _trees(est, builder, dump, k)
    table = compact_trees(trees, [t.value for t in trees], [t % k for t in range(len(trees))])
    raw = table.emit(builder, est, cols, names, start=np.zeros(k), cast32=False)
    if not dump.get("average_output"):
        return raw, raw
    mean = builder.new_cols([f"{n} (average)" for n in names])
    iterations = np.full(k, float(len(trees) // k))
    # (raw - 0.0) / iterations: the division LightGBM does
    builder.emit(
        "scale", est, builder.idx(raw), builder.idx(mean),
        builder.array(np.zeros(k), np.float64), builder.array(iterations, np.float64),
    )  # fmt: skip
    return raw, mean


@register_converter(
    LGBMClassifier,
    "objective binary (sigmoid:1) and multiclass (softmax); predict, predict_proba, "
    "decision_function; NaN and infinity as LightGBM (missing types None, NaN, Zero); "
    "numeric features only",
)
def convert_lgbm_classifier(est: LGBMClassifier, builder: PlanBuilder, cols: Cols) -> Prediction:
    dump = _dump(est, builder)
    classes = tuple(est.classes_)
    name, options = _objective(dump)
    decision = [f"decision[{c}]" for c in classes]
    if len(classes) == 2 and name == "binary" and options == {"sigmoid": "1"}:
        raw, score = emit_lightgbm(est, builder, cols, ["decision"], dump)
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit("expit_pair", est, builder.idx(score), builder.idx(proba))
        labels: tuple[str, ...] = ()
    elif len(classes) > 2 and name == "multiclass":
        raw, score = emit_lightgbm(est, builder, cols, decision, dump)
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit("softmax", est, builder.idx(score), builder.idx(proba))
        labels = tuple(map(str, classes))
    else:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: objective {dump.get('objective')!r} with {len(classes)} "
            "classes is not supported; valid: binary (sigmoid:1) or multiclass"
        )
    # predict: the wrapper's argmax of predict_proba
    return Prediction(
        "classification", proba, "argmax", classes, proba,
        extras=(("decision_function", raw, labels),),
    )  # fmt: skip


@register_converter(
    LGBMRegressor,
    f"objective {', '.join(IDENTITY_OBJECTIVES)} (identity), {', '.join(EXP_OBJECTIVES)} "
    "(exp); NaN and infinity as LightGBM; numeric features only",
)
def convert_lgbm_regressor(est: LGBMRegressor, builder: PlanBuilder, cols: Cols) -> Prediction:
    dump = _dump(est, builder)
    name, options = _objective(dump)
    if name in IDENTITY_OBJECTIVES and "sqrt" not in options:
        _, value = emit_lightgbm(est, builder, cols, ["value"], dump)
        return Prediction("regression", value, "value")
    if name in EXP_OBJECTIVES:
        _, score = emit_lightgbm(est, builder, cols, ["raw"], dump)
        value = builder.new_cols(["value"])
        builder.emit("exp_link", est, builder.idx(score), builder.idx(value))
        return Prediction("regression", value, "value")
    raise UnsupportedEstimatorError(
        f"{builder.origin(est)}: objective {dump.get('objective')!r} is not supported; valid: "
        f"{', '.join(IDENTITY_OBJECTIVES + EXP_OBJECTIVES)} (without reg_sqrt)"
    )
