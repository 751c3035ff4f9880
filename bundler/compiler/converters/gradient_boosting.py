"""GradientBoostingClassifier / GradientBoostingRegressor: init raw value + scaled stage trees.

scikit-learn (``BaseGradientBoosting._raw_predict``) validates X as float32,
refusing NaN, infinity and values that overflow float32; starts from the init
estimator's raw prediction (``_raw_predict_init``: zeros for ``init="zero"``,
else the link of the init estimator's prediction); then ``predict_stages``
adds ``learning_rate * value[leaf]`` of every tree, stage by stage
(``out[i, k] += scale * value[node]``). The ``tree_sum`` kernel does exactly that.

Then: regression returns the raw value (every regression loss has the
identity link); binary classification predicts ``classes_[raw >= 0]`` with
probabilities ``[1 - expit(raw), expit(raw)]`` (``exponential`` loss:
``expit(2 * raw)``); multiclass predicts the argmax with softmax
probabilities. ``decision_function`` is the raw value (1-D when binary).

Init estimators: the default (prior / mean / quantile ``DummyClassifier`` /
``DummyRegressor``) and any constant Dummy estimator are folded into
constants computed by scikit-learn itself at compile time. A regressor's init
may also be a tree model we compile (its input is the same float32 X, so our
float32 traversal is exact); anything else is refused.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn._loss.link import HalfLogitLink, IdentityLink, LogitLink, MultinomialLogit
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.ensemble._gb import _init_raw_predictions
from sklearn.tree import DecisionTreeRegressor, ExtraTreeRegressor

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import convert, register_converter
from bundler.compiler.converters.trees import compact_trees
from bundler.errors import UnsupportedEstimatorError

#: Regressor init estimators that see GradientBoosting's float32 X exactly as we do.
_TREE_INITS = (
    DecisionTreeRegressor,
    ExtraTreeRegressor,
    RandomForestRegressor,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
)
_VALID_INIT = (
    "valid: init=None (the default prior/mean/quantile), init='zero', a DummyClassifier "
    "or DummyRegressor with a constant strategy, or (regressors) a DecisionTreeRegressor, "
    "ExtraTreeRegressor, RandomForestRegressor, ExtraTreesRegressor or "
    "GradientBoostingRegressor"
)


def _constant_init(est: Any, builder: PlanBuilder) -> np.ndarray:
    """The init estimator's raw prediction, computed by scikit-learn on a few rows.

    Only for estimators whose prediction does not depend on X (Dummy* with a
    constant strategy); checked by asking for rows of different inputs.
    """
    k = est.n_trees_per_iteration_
    if isinstance(est.init_, str) and est.init_ == "zero":
        return np.zeros(k)
    init = est.init_
    ok = (type(init) is DummyClassifier and init.strategy != "stratified") or (
        type(init) is DummyRegressor
    )
    if not ok:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: init={init!r} is not supported; {_VALID_INIT}"
        )
    probe = np.array(
        [[0.0] * est.n_features_in_, [1.0] * est.n_features_in_, [-3.5] * est.n_features_in_],
        dtype=np.float32,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = _init_raw_predictions(
            probe, init, est._loss, isinstance(est, GradientBoostingClassifier)
        )
    raw = np.asarray(raw, dtype=np.float64).reshape(len(probe), -1)
    if raw.shape[1] != k or not (raw == raw[0]).all():
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: init estimator {init!r} does not give one constant raw "
            f"prediction per output; {_VALID_INIT}"
        )
    return raw[0].copy()


def _tree_init(est: Any, builder: PlanBuilder, cols: Cols) -> Cols:
    """A regressor's tree-model init: compile it; its prediction is the start value."""
    init = est.init_
    if not isinstance(est._loss.link, IdentityLink):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: init={init!r} with a non-identity link; {_VALID_INIT}"
        )
    builder.push("init")
    try:
        pred = convert(init, builder, cols)
    finally:
        builder.pop()
    if not isinstance(pred, Prediction) or pred.task != "regression" or len(pred.decision) != 1:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: init={init!r} does not compile to one regression value; "
            f"{_VALID_INIT}"
        )
    return pred.decision


def emit_boost(est: Any, builder: PlanBuilder, cols: Cols, names: list[str]) -> Cols:
    """Raw predictions of a fitted GradientBoosting model into new columns ``names``."""
    if est.n_features_in_ != len(cols):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: fitted on {est.n_features_in_} features, given {len(cols)}"
        )
    # validate_data(dtype=float32): NaN, infinity and float32 overflow are refused.
    builder.check(cols, est, allow_nan=False, float32=True)
    k = est.n_trees_per_iteration_
    stages = est.estimators_
    if stages.ndim != 2 or stages.shape[1] != k or len(names) != k:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: unexpected stage layout {stages.shape} for {k} outputs"
        )
    if type(est.init_) in _TREE_INITS:
        init_cols = _tree_init(est, builder, cols)
        init = np.zeros(k)
    else:
        init_cols = Cols(())
        init = _constant_init(est, builder)
    trees = [stages[i, j] for i in range(stages.shape[0]) for j in range(k)]
    for tree in trees:
        if tree.n_outputs_ != 1 or tree.tree_.value.shape[1:] != (1, 1):
            raise UnsupportedEstimatorError(f"{builder.origin(est)}: a stage tree is not 1-D")
    tree_out = np.tile(np.arange(k, dtype=np.int64), stages.shape[0])
    table = compact_trees(
        [t.tree_ for t in trees], [t.tree_.value[:, 0, :] for t in trees], tree_out
    )
    return table.emit(
        builder, est, cols, names, start=init, start_cols=init_cols, scale=est.learning_rate
    )


@register_converter(
    GradientBoostingClassifier,
    "binary (log_loss: expit; exponential: expit(2d)) and multiclass (softmax); predict, "
    "predict_proba, decision_function; init None, 'zero' or a constant DummyClassifier; "
    "NaN refused, as scikit-learn does",
)
def convert_gradient_boosting_classifier(
    est: GradientBoostingClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    classes = tuple(est.classes_)
    link = est._loss.link
    if len(classes) == 2:
        if type(link) not in (LogitLink, HalfLogitLink):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: loss={est.loss!r} is not supported; "
                "valid: 'log_loss', 'exponential'"
            )
        raw = emit_boost(est, builder, cols, ["decision"])
        logit = raw
        if type(link) is HalfLogitLink:
            # ExponentialLoss: proba = expit(2 * raw); (raw - 0) / 0.5 is exactly 2 * raw.
            logit = builder.new_cols(["2*decision"])
            builder.emit(
                "scale",
                est,
                builder.idx(raw),
                builder.idx(logit),
                builder.array([0.0], np.float64),
                builder.array([0.5], np.float64),
            )
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit("expit_pair", est, builder.idx(logit), builder.idx(proba))
        # predict: classes_[raw >= 0]
        return Prediction(
            "classification",
            raw,
            "nonnegative",
            classes,
            proba,
            extras=(("decision_function", raw, ()),),
        )
    if type(link) is not MultinomialLogit:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: loss={est.loss!r} is not supported for multiclass; "
            "valid: 'log_loss'"
        )
    raw = emit_boost(est, builder, cols, [f"decision[{c}]" for c in classes])
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


@register_converter(
    GradientBoostingRegressor,
    "loss squared_error, absolute_error, huber, quantile; init None, 'zero', a DummyRegressor, "
    "or a DecisionTree / ExtraTree / RandomForest / ExtraTrees / GradientBoosting regressor; "
    "NaN refused, as scikit-learn does",
)
def convert_gradient_boosting_regressor(
    est: GradientBoostingRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction:
    if type(est._loss.link) is not IdentityLink:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: loss={est.loss!r} is not supported; "
            "valid: 'squared_error', 'absolute_error', 'huber', 'quantile'"
        )
    value = emit_boost(est, builder, cols, ["value"])
    return Prediction("regression", value, "value")
