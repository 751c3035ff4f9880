"""Kernel SVMs (libsvm): SVC, NuSVC, SVR, NuSVR, OneClassSVM.

Prediction is libsvm's ``svm_predict_values``: the kernel of the row with every
support vector (``k_function``: linear ``x.sv``, poly ``powi(gamma x.sv + coef0,
degree)``, rbf ``exp(-gamma ||x - sv||^2)`` from the difference vector, sigmoid
``tanh(gamma x.sv + coef0)``), then per class pair the two classes' weighted sums minus
``rho``. scikit-learn's libsvm takes the dot products from BLAS ``ddot`` (OpenBLAS:
fused multiply-adds, vectorised from 16 features on), the plan sums them in feature
order, so values agree to the last bits, not bit for bit.

- ``predict`` (classifiers): libsvm's one-vs-one votes, a pair voting its first class
  when its value is > 0, the first class with most votes winning; with
  ``break_ties=True`` (ovr, more than two classes) the first maximum of the ovr
  decision function instead.
- ``decision_function``: binary, scikit-learn negates libsvm's value; ovr, the
  ``_ovr_decision_function`` transform (a pair votes its first class unless its value
  is < 0); ovo, libsvm's values.
- ``predict_proba`` (``probability=True``): libsvm's Platt sigmoids (``probA_``,
  ``probB_``) clipped to [1e-7, 1 - 1e-7], then its iterative pairwise coupling
  (``multiclass_probability``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError

_KERNELS = {"linear": 0, "poly": 1, "rbf": 2, "sigmoid": 3}


def _decision_values(
    est: Any, builder: PlanBuilder, cols: Cols, start: np.ndarray, names: list[str]
) -> Cols:
    """libsvm's decision values (ovo pairs, or one value for SVR / one-class)."""
    kernel = est.kernel
    if not isinstance(kernel, str) or kernel not in _KERNELS:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: kernel={kernel!r} is not supported; "
            "valid: 'linear', 'poly', 'rbf', 'sigmoid'"
        )
    if est._sparse:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: fitted on sparse data; only dense fits are supported"
        )
    # _validate_for_predict: float64, no NaN, no infinity.
    builder.check(cols, est, allow_nan=False)
    out = builder.new_cols(names)
    builder.emit(
        "svm_kernel_sum",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(est.support_vectors_, np.float64),
        builder.array(np.atleast_2d(est._dual_coef_), np.float64),
        builder.array(start, np.int64),
        # libsvm_helper's set_model: rho = -intercept; libsvm subtracts rho.
        builder.array(-np.asarray(est._intercept_, dtype=np.float64), np.float64),
        _KERNELS[kernel],
        float(est._gamma),
        float(est.coef0),
        int(est.degree),
    )
    return out


def _negate(builder: PlanBuilder, est: Any, src: Cols, name: str) -> Cols:
    """``-x`` exactly, as ``(x - 0) / -1``."""
    out = builder.new_cols([name])
    builder.emit(
        "scale",
        est,
        builder.idx(src),
        builder.idx(out),
        builder.array([0.0], np.float64),
        builder.array([-1.0], np.float64),
    )
    return out


def _convert_classifier(est: SVC | NuSVC, builder: PlanBuilder, cols: Cols) -> Prediction:
    classes = tuple(est.classes_)
    n_class = len(classes)
    if n_class < 2:
        raise UnsupportedEstimatorError(f"{builder.origin(est)}: fewer than two classes")
    if est.break_ties and est.decision_function_shape == "ovo":
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: break_ties=True with decision_function_shape='ovo': "
            "scikit-learn refuses to predict with it"
        )
    n_support = np.asarray(est._n_support, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(n_support)])
    pairs = [(a, b) for a in range(n_class) for b in range(a + 1, n_class)]
    dec = _decision_values(
        est, builder, cols, start, [f"ovo[{classes[a]} vs {classes[b]}]" for a, b in pairs]
    )
    votes = builder.new_cols([f"votes[{c}]" for c in classes])
    builder.emit("svm_votes", est, builder.idx(dec), builder.idx(votes))
    labels = tuple(str(c) for c in classes)
    decision = votes
    if n_class == 2:
        extra = ("decision_function", _negate(builder, est, dec, "decision"), ())
    elif est.decision_function_shape == "ovr":
        ovr = builder.new_cols([f"decision[{c}]" for c in classes])
        builder.emit("svm_ovr", est, builder.idx(dec), builder.idx(ovr))
        extra = ("decision_function", ovr, labels)
        if est.break_ties:
            decision = ovr
    else:
        extra = ("decision_function", dec, tuple(f"{classes[a]}_vs_{classes[b]}" for a, b in pairs))
    proba = None
    # _check_proba: probability must be set (not its "deprecated" default), and fitted
    has_proba = est.probability != "deprecated" and bool(est.probability)
    if has_proba and est._probA.size and est._probB.size:
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit(
            "svm_proba",
            est,
            builder.idx(dec),
            builder.idx(proba),
            builder.array(est._probA, np.float64),
            builder.array(est._probB, np.float64),
        )
    return Prediction("classification", decision, "argmax", classes, proba, extras=(extra,))


_CLASSIFIER_OPTIONS = (
    "kernels linear/poly/rbf/sigmoid (gamma scale/auto/float); predict (libsvm ovo votes, "
    "break_ties); decision_function ovr/ovo; predict_proba with probability=True"
)


@register_converter(SVC, _CLASSIFIER_OPTIONS)
def convert_svc(est: SVC, builder: PlanBuilder, cols: Cols) -> Prediction:
    return _convert_classifier(est, builder, cols)


@register_converter(NuSVC, _CLASSIFIER_OPTIONS)
def convert_nu_svc(est: NuSVC, builder: PlanBuilder, cols: Cols) -> Prediction:
    return _convert_classifier(est, builder, cols)


def _convert_regressor(est: SVR | NuSVR, builder: PlanBuilder, cols: Cols) -> Prediction:
    start = np.array([0, est.support_vectors_.shape[0]], dtype=np.int64)
    value = _decision_values(est, builder, cols, start, ["prediction"])
    return Prediction("regression", value, "value")


_REGRESSOR_OPTIONS = "kernels linear/poly/rbf/sigmoid (gamma scale/auto/float)"


@register_converter(SVR, _REGRESSOR_OPTIONS)
def convert_svr(est: SVR, builder: PlanBuilder, cols: Cols) -> Prediction:
    return _convert_regressor(est, builder, cols)


@register_converter(NuSVR, _REGRESSOR_OPTIONS)
def convert_nu_svr(est: NuSVR, builder: PlanBuilder, cols: Cols) -> Prediction:
    return _convert_regressor(est, builder, cols)


@register_converter(
    OneClassSVM,
    "kernels linear/poly/rbf/sigmoid; predict (+1 where decision > 0), decision_function, "
    "score_samples",
)
def convert_one_class_svm(est: OneClassSVM, builder: PlanBuilder, cols: Cols) -> Prediction:
    start = np.array([0, est.support_vectors_.shape[0]], dtype=np.int64)
    decision = _decision_values(est, builder, cols, start, ["decision"])
    # score_samples = decision_function + offset_, as (d - (-offset_)) / 1.
    score = builder.new_cols(["score"])
    builder.emit(
        "scale",
        est,
        builder.idx(decision),
        builder.idx(score),
        builder.array(-np.asarray(est.offset_, dtype=np.float64).reshape(1), np.float64),
        builder.array([1.0], np.float64),
    )
    # libsvm's one-class predict: +1 where the value is > 0, else -1.
    return Prediction(
        "classification",
        decision,
        "positive",
        (-1, 1),
        None,
        extras=(("decision_function", decision, ()), ("score_samples", score, ())),
    )
