"""Linear models: ``X @ coef.T + intercept``, then scikit-learn's link function.

Every model here validates X with ``validate_data``'s defaults at predict time
(float64 kept, NaN and infinity refused) and computes ``X @ coef.T + intercept``
(``LinearModel._decision_function``, ``LinearClassifierMixin.decision_function``).
scikit-learn's product goes through BLAS, whose summation order depends on the
CPU and on the batch's shape, so the ``linear_dot2`` kernel computes the dot
product as exactly as it can (compensated) and adds the intercept after it.
Classifiers predict ``classes_[d > 0]`` with one decision column, else the
first argmax; ``decision_function`` is exposed as an extra output.

scikit-learn 1.9 removed ``LogisticRegression(multi_class=...)``: binary
models give ``[1 - expit(d), expit(d)]`` (``_predict_proba_lr``), multiclass
ones the softmax; liblinear refuses more than two classes at fit time.

The rest of the family predicts with the same ``LinearModel._decision_function`` (the
CV variants, the Lars and OMP families, the Bayesian ridges' posterior mean, Huber,
quantile and Theil-Sen regression, the SGD-based passive-aggressive regressor), so it
shares ``regression``; ``RANSACRegressor`` compiles its fitted ``estimator_``.
``SGDOneClassSVM`` is an outlier detector: ``decision_function = X @ coef_.T - offset_``,
``predict`` is ``1`` where that is ``>= 0``, else ``-1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import (
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    ElasticNetCV,
    HuberRegressor,
    Lars,
    LarsCV,
    Lasso,
    LassoCV,
    LassoLars,
    LassoLarsCV,
    LassoLarsIC,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    MultiTaskElasticNet,
    MultiTaskElasticNetCV,
    MultiTaskLasso,
    MultiTaskLassoCV,
    OrthogonalMatchingPursuit,
    OrthogonalMatchingPursuitCV,
    PassiveAggressiveRegressor,
    QuantileRegressor,
    RANSACRegressor,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDOneClassSVM,
    TheilSenRegressor,
)

from bundler.compiler._builder import (
    Cols,
    MultiPrediction,
    PlanBuilder,
    Prediction,
    regression_outputs,
)
from bundler.compiler._registry import convert, register_converter
from bundler.errors import UnsupportedEstimatorError


def emit_linear(
    builder: PlanBuilder,
    est: object,
    cols: Cols,
    coef: np.ndarray,
    intercept: np.ndarray,
    names: list[str],
) -> Cols:
    """Decision values; linear models refuse NaN and infinity like ``validate_data``."""
    builder.check(cols, est, allow_nan=False)
    coef = np.atleast_2d(coef)
    out = builder.new_cols(names)
    builder.emit(
        "linear",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(coef, np.float64),
        builder.array(np.broadcast_to(intercept, (coef.shape[0],)), np.float64),
    )
    return out


def linear_params(
    builder: PlanBuilder, est: Any, cols: Cols, intercept: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """``coef_`` as a dense float64 (outputs x inputs) array and ``intercept_`` (or the
    given ``intercept``) per output."""
    if cols.float32:
        # scikit-learn would multiply float32 features in float32: not reproducible to 1e-9
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} receives float32 features (an upstream dtype=np.float32) "
            "and so computes in float32; use the default float64 dtype upstream"
        )
    coef = est.coef_
    coef = coef.toarray() if sp.issparse(coef) else np.asarray(coef)  # after .sparsify()
    coef = np.atleast_2d(coef).astype(np.float64)  # exact: float32 coefficients widen
    if coef.ndim != 2 or coef.shape[1] != len(cols):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} has coefficients of shape {np.shape(est.coef_)} but "
            f"receives {len(cols)} features"
        )
    if intercept is None:
        intercept = est.intercept_
    intercept = np.broadcast_to(np.asarray(intercept, dtype=np.float64), (coef.shape[0],))
    return coef, np.ascontiguousarray(intercept)


def emit_dot2(
    builder: PlanBuilder,
    est: object,
    cols: Cols,
    coef: np.ndarray,
    intercept: np.ndarray,
    names: list[str],
    *,
    check: bool = True,
) -> Cols:
    """``cols @ coef.T + intercept`` with the compensated kernel (after validation); on
    sparse columns in scipy's CSR order instead (each row's terms left to right, from
    0.0, then the intercept: the ``linear`` kernel, whose zero terms change no sum), so
    a text model's decisions come out bit for bit."""
    if check:
        builder.check(cols, est, allow_nan=False)
    out = builder.new_cols(names)
    builder.emit(
        "linear" if cols.sparse else "linear_dot2",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(coef, np.float64),
        builder.array(intercept, np.float64),
    )
    return out


def linear_decision(builder: PlanBuilder, est: Any, cols: Cols) -> Cols:
    """A linear classifier's decision columns: one when binary, else one per class."""
    coef, intercept = linear_params(builder, est, cols)
    classes = tuple(est.classes_)
    if len(classes) < 2 or coef.shape[0] != (1 if len(classes) == 2 else len(classes)):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} has {coef.shape[0]} coefficient rows for "
            f"{len(classes)} classes; expected 1 (binary) or one per class"
        )
    names = ["decision"] if coef.shape[0] == 1 else [f"decision[{c}]" for c in classes]
    return emit_dot2(builder, est, cols, coef, intercept, names)


def classification(est: Any, decision: Cols, proba: Cols | None = None) -> Prediction:
    """Labels from decision values (``> 0`` when binary, else argmax), plus decision_function."""
    classes = tuple(est.classes_)
    binary = len(decision) == 1
    labels = () if binary else tuple(map(str, classes))
    return Prediction(
        "classification",
        decision,
        "positive" if binary else "argmax",
        classes,
        proba,
        extras=(("decision_function", decision, labels),),
    )


#: Regressors whose 2-D ``y`` compiles (one output per target, ``X @ coef_.T + intercept_``
#: for every column, as for one): the ones the parity tests fit on several targets.
MULTI_TARGET = (
    LinearRegression,
    Ridge,
    RidgeCV,
    Lasso,
    ElasticNet,
    MultiTaskLasso,
    MultiTaskElasticNet,
    MultiTaskLassoCV,
    MultiTaskElasticNetCV,
)


def regression(builder: PlanBuilder, est: Any, cols: Cols) -> Prediction | MultiPrediction:
    """A linear regressor: the decision values are the predictions, one per target."""
    coef, intercept = linear_params(builder, est, cols)
    multi = coef.shape[0] != 1  # a y of shape (n, 1) is one target, as before
    if multi and type(est) not in MULTI_TARGET:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} predicts {coef.shape[0]} targets; several targets compile "
            f"for {', '.join(c.__name__ for c in MULTI_TARGET)}. Valid: fit on a 1-D y, one "
            "model per target"
        )
    names = ["prediction"] if not multi else [f"prediction[{k}]" for k in range(coef.shape[0])]
    value = emit_dot2(builder, est, cols, coef, intercept, names)
    return regression_outputs(value)


@register_converter(
    LogisticRegression,
    "binary ([1 - expit, expit]) and multinomial (softmax), every solver (liblinear is "
    "binary-only in scikit-learn 1.9); predict_proba, decision_function",
)
@register_converter(
    LogisticRegressionCV,
    "as LogisticRegression (the refitted coef_ of the best C / l1_ratio); predict_proba, "
    "decision_function",
)
def convert_logistic_regression(
    est: LogisticRegression, builder: PlanBuilder, cols: Cols
) -> Prediction:
    classes = tuple(est.classes_)
    coef, intercept = linear_params(builder, est, cols)
    # Still the plain in-order "linear" kernel (tests/test_plan_reader.py edits its
    # arrays); logistic decision values are small, where both kernels are within ~1e-14.
    if len(classes) <= 2:
        # scikit-learn 1.9: binary predict_proba is [1 - expit(d), expit(d)],
        # and predict is classes[d > 0].
        decision = emit_linear(builder, est, cols, coef, intercept, ["decision"])
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit("expit_pair", est, builder.idx(decision), builder.idx(proba))
        return classification(est, decision, proba)
    decision = emit_linear(builder, est, cols, coef, intercept, [f"decision[{c}]" for c in classes])
    proba = builder.new_cols([f"proba[{c}]" for c in classes])
    builder.emit("softmax", est, builder.idx(decision), builder.idx(proba))
    return classification(est, decision, proba)


@register_converter(LinearRegression, "one target (also y of shape (n, 1)) or several; positive")
@register_converter(Ridge, "one target or several; every solver")
@register_converter(Lasso, "one target or several")
@register_converter(ElasticNet, "one target or several; any l1_ratio")
@register_converter(RidgeCV, "one target or several; every alpha grid, GCV or cv folds")
@register_converter(MultiTaskLasso, "several targets (one output each)")
@register_converter(MultiTaskElasticNet, "several targets (one output each); any l1_ratio")
@register_converter(MultiTaskLassoCV, "several targets (one output each)")
@register_converter(MultiTaskElasticNetCV, "several targets (one output each); any l1_ratio grid")
@register_converter(LassoCV, "single target")
@register_converter(ElasticNetCV, "single target; any l1_ratio grid")
@register_converter(Lars, "single target")
@register_converter(LarsCV, "single target")
@register_converter(LassoLars, "single target")
@register_converter(LassoLarsCV, "single target")
@register_converter(LassoLarsIC, "single target; criterion 'aic' or 'bic'")
@register_converter(OrthogonalMatchingPursuit, "single target")
@register_converter(OrthogonalMatchingPursuitCV, "single target")
@register_converter(BayesianRidge, "predict (the posterior mean; return_std is not compiled)")
@register_converter(ARDRegression, "predict (the posterior mean; return_std is not compiled)")
@register_converter(HuberRegressor, "any epsilon")
@register_converter(QuantileRegressor, "any quantile, every solver")
@register_converter(TheilSenRegressor, "single target")
@register_converter(PassiveAggressiveRegressor, "both losses, average")
def convert_linear_regressor(
    est: Any, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    return regression(builder, est, cols)


@register_converter(RidgeClassifier, "binary and multiclass (not multilabel); decision_function")
@register_converter(RidgeClassifierCV, "binary and multiclass (not multilabel); decision_function")
def convert_ridge_classifier(est: Any, builder: PlanBuilder, cols: Cols) -> Prediction:
    if est._label_binarizer.y_type_.startswith("multilabel"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} was fitted on multilabel targets; only binary and "
            "multiclass RidgeClassifier is supported"
        )
    return classification(est, linear_decision(builder, est, cols))


@register_converter(
    RANSACRegressor,
    "its fitted estimator_ when that compiles (the default LinearRegression, or any "
    "registered regressor; several targets when estimator_ takes them)",
)
def convert_ransac(
    est: RANSACRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    # predict validates with ensure_all_finite=False, then estimator_.predict validates again:
    # the inner estimator's checks are the ones that refuse rows.
    builder.push("estimator_")
    try:
        result = convert(est.estimator_, builder, cols)
    finally:
        builder.pop()
    if isinstance(result, MultiPrediction) and all(p.task == "regression" for p in result.outputs):
        return result  # several targets: estimator_.predict's columns
    if not isinstance(result, Prediction) or result.task != "regression":
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} wraps {type(est.estimator_).__name__}, which is not a "
            "regressor; only a regressor's predictions can be compiled"
        )
    return result


@register_converter(
    SGDOneClassSVM,
    "predict (1 inlier, -1 outlier: decision >= 0), decision_function, score_samples",
)
def convert_sgd_one_class_svm(est: SGDOneClassSVM, builder: PlanBuilder, cols: Cols) -> Prediction:
    offset = float(np.asarray(est.offset_, dtype=np.float64).reshape(-1)[0])
    coef, _ = linear_params(builder, est, cols, intercept=0.0)
    # decision_function = X @ coef_.T - offset_ (subtracting is adding the negation, exactly);
    # score_samples = decision_function + offset_, rounded again as scikit-learn does.
    decision = emit_dot2(builder, est, cols, coef, np.array([-offset]), ["decision_function"])
    score = builder.new_cols(["score_samples"])
    builder.emit(
        "mul_add",
        est,
        builder.idx(decision),
        builder.idx(score),
        builder.array([1.0], np.float64),
        builder.array([offset], np.float64),
    )
    return Prediction(
        "classification",
        decision,
        "nonnegative",
        (-1, 1),
        None,
        extras=(("score_samples", score, ()), ("decision_function", decision, ())),
    )
