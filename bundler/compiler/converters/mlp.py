"""Multi-layer perceptrons: ``_forward_pass_fast``, one dense layer at a time.

scikit-learn computes each layer as ``activation @ coefs_[i] + intercepts_[i]`` with a
BLAS matrix product, whose summation order (and so the last bits) depends on the BLAS
build, the CPU and even the number of rows scored at once. The compiled ``mlp_dense``
sums each dot product in input order (single rows, small batches); a batch of 64 rows or
more makes scikit-learn's own matrix product (``docs/performance.md``, Dense models).
Hidden activations: identity, logistic (scipy's ``expit``), tanh, relu. Outputs: softmax
(multiclass), logistic (binary), identity (regression) and exp (Poisson regression).
"""

from __future__ import annotations

import numpy as np
from sklearn.neural_network import MLPClassifier, MLPRegressor

from bundler.compiler._builder import (
    Cols,
    MultiPrediction,
    PlanBuilder,
    Prediction,
    regression_outputs,
)
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError

_ACTIVATIONS = {"identity": 0, "logistic": 1, "tanh": 2, "relu": 3, "exp": 4}


def _layers(
    est: MLPClassifier | MLPRegressor, builder: PlanBuilder, cols: Cols, output: str
) -> Cols:
    """Every layer; the output layer applies ``output`` ("identity" or "exp")."""
    if est.activation not in ("identity", "logistic", "tanh", "relu"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: activation={est.activation!r} is not supported; "
            "valid: 'identity', 'logistic', 'tanh', 'relu'"
        )
    builder.check(cols, est, allow_nan=False)
    hidden = _ACTIVATIONS[est.activation]
    value = cols
    n_layers = len(est.coefs_)
    for i, (coef, intercept) in enumerate(zip(est.coefs_, est.intercepts_, strict=True)):
        coef = np.asarray(coef, dtype=np.float64)
        last = i == n_layers - 1
        names = (
            [f"output[{j}]" for j in range(coef.shape[1])]
            if last
            else [f"hidden{i + 1}[{j}]" for j in range(coef.shape[1])]
        )
        out = builder.new_cols(names)
        builder.emit(
            "mlp_dense",
            est,
            builder.idx(value),
            builder.idx(out),
            builder.array(coef, np.float64),
            builder.array(np.asarray(intercept, dtype=np.float64), np.float64),
            _ACTIVATIONS[output] if last else hidden,
        )
        value = out
    return value


def _label_of(est: MLPClassifier, builder: PlanBuilder, p: Cols, name: str) -> Cols:
    """``expit(z) > 0.5`` read as ``expit(z) - 0.5 > 0`` (exact: Sterbenz for
    ``expit(z) >= 0.25``): the decision column of a logistic output ``p``."""
    decision = builder.new_cols([name])
    builder.emit(
        "scale",
        est,
        builder.idx(p),
        builder.idx(decision),
        builder.array([0.5], np.float64),
        builder.array([1.0], np.float64),
    )
    return decision


def _multilabel(est: MLPClassifier, builder: PlanBuilder, cols: Cols) -> MultiPrediction:
    """A multilabel MLP: one logistic output per label. ``predict_proba`` is each label's
    ``expit(z)`` (here the pair ``[1 - expit, expit]`` per label, classes 0 and 1), and
    ``predict`` the label binarizer's ``expit(z) > 0.5``."""
    if est.out_activation_ != "logistic":
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: unexpected output activation {est.out_activation_!r}"
        )
    z = _layers(est, builder, cols, "identity")
    outputs = []
    for k in range(len(z)):
        proba = builder.new_cols([f"proba[{k}][0]", f"proba[{k}][1]"])
        builder.emit("expit_pair", est, builder.idx(z.take([k])), builder.idx(proba))
        decision = _label_of(est, builder, proba.take([1]), f"proba[{k}] - 0.5")
        outputs.append(Prediction("classification", decision, "positive", (0, 1), proba))
    return MultiPrediction(tuple(outputs))


@register_converter(
    MLPClassifier,
    "activation identity/logistic/tanh/relu; binary (logistic) and multiclass (softmax) "
    "outputs; predict_proba; multilabel (one 0/1 output per label)",
)
def convert_mlp_classifier(
    est: MLPClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    classes = tuple(est.classes_)
    binarizer = est._label_binarizer
    if binarizer.y_type_ == "multilabel-indicator":
        return _multilabel(est, builder, cols)
    if binarizer.y_type_ not in ("binary", "multiclass"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: {binarizer.y_type_} targets are not supported "
            "(valid: binary, multiclass and multilabel-indicator classification)"
        )
    expected = "softmax" if binarizer.y_type_ == "multiclass" else "logistic"
    if est.out_activation_ != expected or (len(classes) > 2) != (expected == "softmax"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: unexpected output activation {est.out_activation_!r}"
        )
    z = _layers(est, builder, cols, "identity")
    proba = builder.new_cols([f"proba[{c}]" for c in classes])
    if expected == "logistic":
        # predict_proba: [1 - expit(z), expit(z)]; predict: classes[expit(z) > 0.5],
        # read as expit(z) - 0.5 > 0 (exact: Sterbenz for expit(z) >= 0.25).
        builder.emit("expit_pair", est, builder.idx(z), builder.idx(proba))
        decision = _label_of(est, builder, proba.take([1]), "proba - 0.5")
        return Prediction("classification", decision, "positive", classes, proba)
    # predict: classes[argmax(predict_proba)], the probabilities after softmax.
    builder.emit("softmax", est, builder.idx(z), builder.idx(proba))
    return Prediction("classification", proba, "argmax", classes, proba)


@register_converter(
    MLPRegressor,
    "activation identity/logistic/tanh/relu; squared_error (identity output) and "
    "poisson (exp output) losses; multi-target (one output per target)",
)
def convert_mlp_regressor(
    est: MLPRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    """The output layer's values: one target, or one per column of a 2-D ``y``."""
    if est.out_activation_ not in ("identity", "exp"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: output activation {est.out_activation_!r} is not supported"
        )
    value = _layers(est, builder, cols, est.out_activation_)
    return regression_outputs(value)
