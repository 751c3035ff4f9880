"""HistGradientBoostingClassifier / Regressor: float64 trees with NaN and categorical splits.

scikit-learn (``BaseHistGradientBoosting._raw_predict``) does not cast X: it
validates it as float64 accepting NaN and infinity. With categorical features
it first runs its ``_preprocessor``: an ``OrdinalEncoder`` turns each
categorical column into category positions (unknown and missing become NaN;
infinity is refused), and a ColumnTransformer puts those columns first, so the
trees' feature indices count categorical features first, then the numeric
ones. The raw prediction is ``0 + _baseline_prediction`` then every
predictor's leaf value (learning rate already included), iteration by
iteration and output by output, exactly as the kernels do (``tree_sum`` when
no split is categorical, comparing in float64; ``hgb`` otherwise); a split
sends NaN by ``missing_go_to_left``, a numeric value left when
``x <= num_threshold``, a category left when it is in the split's bitset,
right when it is a known category, and as missing otherwise
(``_predictor.pyx``).

Then: the regressor applies its loss's inverse link (identity, or ``exp`` for
``poisson`` / ``gamma``); a binary classifier predicts ``classes_[raw > 0]``
with ``[1 - expit(raw), expit(raw)]``; multiclass predicts the argmax with
softmax probabilities. ``decision_function`` is the raw value (1-D when binary).
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
from sklearn._loss.link import IdentityLink, LogitLink, LogLink, MultinomialLogit
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.preprocessing import OrdinalEncoder

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.trees import compact_trees
from bundler.errors import UnsupportedEstimatorError


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _encoder_table(est: Any, builder: PlanBuilder, col: int, categories: np.ndarray) -> list[float]:
    """The workspace values of one categorical feature's categories, in code order."""
    cats = list(categories)
    if cats and _is_missing(cats[-1]):
        cats = cats[:-1]  # NaN is last; the encoder sends it to NaN (missing)
    if any(_is_missing(c) for c in cats):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: a missing value among the categories of "
            f"{builder.name(col)!r} that is not the last one; cannot compile its codes"
        )
    if categories.dtype.kind in "biuf":
        # Numbers: matched by value; the encoder refuses infinity (NaN is missing).
        builder.check(Cols((col,)), est, allow_nan=True)
        return [float(c) for c in cats]
    if all(isinstance(c, str) for c in cats):
        owner = builder.make_categorical(col, est)
        return [builder.code(owner, c) for c in cats]
    raise UnsupportedEstimatorError(
        f"{builder.origin(est)}: categories of {builder.name(col)!r} mix types "
        f"({sorted({type(c).__name__ for c in cats})}); valid: all numbers or all strings"
    )


def _feature_columns(est: Any, builder: PlanBuilder, cols: Cols) -> Cols:
    """Workspace columns of the trees' features, in the order the trees index them."""
    if cols.sparse:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: receives a sparse matrix, which scikit-learn refuses; "
            "make the previous step produce dense output"
        )
    pre = est._preprocessor
    if pre is None:
        builder.use_as_numbers(cols, est)
        return cols
    order: list[int | None] = [None] * len(cols)
    for name, trans, columns in pre.transformers_:
        if name == "remainder" or (isinstance(trans, str) and trans == "drop"):
            continue
        positions = np.arange(len(cols))[columns]
        out = range(len(cols))[pre.output_indices_[name]]
        if len(out) != len(positions):
            raise UnsupportedEstimatorError(f"{builder.origin(est)}: unexpected preprocessor")
        if name == "encoder":
            enc = trans
            if (
                type(enc) is not OrdinalEncoder
                or enc.handle_unknown != "use_encoded_value"
                or not _is_missing(enc.unknown_value)
                or not _is_missing(enc.encoded_missing_value)
                or getattr(enc, "_infrequent_enabled", False)
                or len(enc.categories_) != len(positions)
            ):
                raise UnsupportedEstimatorError(
                    f"{builder.origin(est)}: unexpected categorical encoder {enc!r}"
                )
            src = cols.take(positions.tolist())
            starts, values = [0], []
            for j, col in enumerate(src.idx):
                values += _encoder_table(est, builder, col, enc.categories_[j])
                starts.append(len(values))
            codes = builder.new_cols([f"{builder.name(c)} (category code)" for c in src.idx])
            # each category becomes its position in its column; missing and unknown, NaN
            code_of = np.concatenate([np.arange(n) for n in np.diff(starts)])
            builder.emit(
                "ordinal_encode",
                est,
                builder.idx(src),
                builder.array(starts, np.int64),
                builder.array(values, np.float64),
                builder.array(code_of, np.float64),
                builder.idx(codes),
                builder.array([np.nan] * len(src), np.float64),
                0,
            )
            for pos, c in zip(out, codes.idx, strict=True):
                order[pos] = c
        else:
            # check_array(dtype=float64, ensure_all_finite=False): every number passes.
            src = cols.take(positions.tolist())
            builder.use_as_numbers(src, est)
            for pos, c in zip(out, src.idx, strict=True):
                order[pos] = c
    if any(c is None for c in order):
        raise UnsupportedEstimatorError(f"{builder.origin(est)}: unexpected preprocessor")
    return Cols(tuple(int(c) for c in order if c is not None))


def emit_hgb(est: Any, builder: PlanBuilder, cols: Cols, names: list[str]) -> Cols:
    """Raw predictions (``_raw_predict``) of a fitted HistGradientBoosting model."""
    if est.n_features_in_ != len(cols):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: fitted on {est.n_features_in_} features, given {len(cols)}"
        )
    src = _feature_columns(est, builder, cols)
    k = est.n_trees_per_iteration_
    baseline = np.asarray(est._baseline_prediction, dtype=np.float64).reshape(-1)
    if baseline.size != k or len(names) != k:
        raise UnsupportedEstimatorError(f"{builder.origin(est)}: unexpected baseline shape")
    if not any(
        ((p.nodes["is_categorical"] != 0) & (p.nodes["is_leaf"] == 0)).any()
        for predictors in est._predictors
        for p in predictors
    ):
        return _emit_numeric(est, builder, src, baseline, names)
    mapper = est._bin_mapper
    if mapper.is_categorical_ is not None and mapper.is_categorical_.any():
        known_bits, f_idx_map = mapper.make_known_categories_bitsets()
    else:
        known_bits = np.zeros((0, 8), dtype=np.uint32)
        f_idx_map = np.zeros(len(src), dtype=np.uint32)
    roots, tree_out, feature, threshold, left, right, missing = [], [], [], [], [], [], []
    cat_left, cat_known, left_bits, value = [], [], [], []
    offset = n_bitsets = 0
    for predictors in est._predictors:
        if len(predictors) != k:
            raise UnsupportedEstimatorError(f"{builder.origin(est)}: unexpected predictors")
        for j, predictor in enumerate(predictors):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"] != 0
            feat = np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64)
            cat = (nodes["is_categorical"] != 0) & ~leaf
            bits = np.asarray(predictor.raw_left_cat_bitsets, dtype=np.int64).reshape(-1, 8)
            roots.append(offset)
            tree_out.append(j)
            feature.append(feat)
            threshold.append(nodes["num_threshold"])
            left.append(np.where(leaf, -1, nodes["left"].astype(np.int64) + offset))
            right.append(np.where(leaf, -1, nodes["right"].astype(np.int64) + offset))
            missing.append(nodes["missing_go_to_left"])
            cat_left.append(np.where(cat, nodes["bitset_idx"].astype(np.int64) + n_bitsets, -1))
            cat_known.append(np.where(cat, f_idx_map[feat].astype(np.int64), 0))
            left_bits.append(bits)
            value.append(nodes["value"])
            offset += len(nodes)
            n_bitsets += len(bits)
    out = builder.new_cols(names)
    builder.emit(
        "hgb",
        est,
        builder.idx(src),
        builder.idx(out),
        builder.array(baseline, np.float64),
        builder.array(roots, np.int64),
        builder.array(tree_out, np.int64),
        builder.array(np.concatenate(feature), np.int64),
        builder.array(np.concatenate(threshold), np.float64),
        builder.array(np.concatenate(left), np.int64),
        builder.array(np.concatenate(right), np.int64),
        builder.array(np.concatenate(missing), np.uint8),
        builder.array(np.concatenate(cat_left), np.int64),
        builder.array(np.concatenate(cat_known), np.int64),
        builder.array(np.concatenate(left_bits).reshape(-1), np.int64),
        builder.array(np.asarray(known_bits, dtype=np.int64).reshape(-1), np.int64),
        builder.array(np.concatenate(value).reshape(-1, 1), np.float64),
    )
    return out


def _emit_numeric(
    est: Any, builder: PlanBuilder, src: Cols, baseline: np.ndarray, names: list[str]
) -> Cols:
    """No categorical split: the compact ``tree_sum`` kernel, comparing in float64."""
    k = len(names)
    trees, values, first = [], [], []
    for predictors in est._predictors:
        if len(predictors) != k:
            raise UnsupportedEstimatorError(f"{builder.origin(est)}: unexpected predictors")
        for j, predictor in enumerate(predictors):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"] != 0
            trees.append(
                SimpleNamespace(
                    children_left=np.where(leaf, -1, nodes["left"].astype(np.int64)),
                    children_right=np.where(leaf, -1, nodes["right"].astype(np.int64)),
                    feature=np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64),
                    threshold=nodes["num_threshold"],
                    missing_go_to_left=nodes["missing_go_to_left"],
                )
            )
            values.append(nodes["value"].reshape(-1, 1))
            first.append(j)
    table = compact_trees(trees, values, first)
    # scikit-learn starts from zeros and adds the baseline: 0.0 + b, as it does
    return table.emit(builder, est, src, names, start=np.zeros(k) + baseline, cast32=False)


@register_converter(
    HistGradientBoostingClassifier,
    "binary (expit) and multiclass (softmax); predict, predict_proba, decision_function; "
    "NaN, categorical features (numbers or strings; unknown categories as missing)",
)
def convert_hist_gradient_boosting_classifier(
    est: HistGradientBoostingClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    classes = tuple(est.classes_)
    link = est._loss.link
    if len(classes) == 2 and type(link) is LogitLink:
        raw = emit_hgb(est, builder, cols, ["decision"])
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit("expit_pair", est, builder.idx(raw), builder.idx(proba))
        # predict: classes_[raw > 0]
        return Prediction(
            "classification",
            raw,
            "positive",
            classes,
            proba,
            extras=(("decision_function", raw, ()),),
        )
    if len(classes) > 2 and type(link) is MultinomialLogit:
        raw = emit_hgb(est, builder, cols, [f"decision[{c}]" for c in classes])
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit("softmax", est, builder.idx(raw), builder.idx(proba))
        return Prediction(
            "classification",
            raw,
            "argmax",
            classes,
            proba,
            extras=(("decision_function", raw, tuple(map(str, classes))),),
        )
    raise UnsupportedEstimatorError(
        f"{builder.origin(est)}: loss {type(est._loss).__name__} with {len(classes)} classes "
        "is not supported; valid: log_loss (binary or multiclass)"
    )


@register_converter(
    HistGradientBoostingRegressor,
    "loss squared_error, absolute_error, quantile (identity), poisson, gamma (exp); NaN, "
    "categorical features (numbers or strings; unknown categories as missing)",
)
def convert_hist_gradient_boosting_regressor(
    est: HistGradientBoostingRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction:
    link = est._loss.link
    if type(link) is IdentityLink:
        value = emit_hgb(est, builder, cols, ["value"])
        return Prediction("regression", value, "value")
    if type(link) is LogLink:
        raw = emit_hgb(est, builder, cols, ["raw"])
        value = builder.new_cols(["value"])
        builder.emit("exp_link", est, builder.idx(raw), builder.idx(value))
        return Prediction("regression", value, "value")
    raise UnsupportedEstimatorError(
        f"{builder.origin(est)}: loss={est.loss!r} is not supported; valid: squared_error, "
        "absolute_error, quantile, poisson, gamma"
    )
