"""GaussianNB, MultinomialNB, BernoulliNB: joint log likelihood, argmax, logsumexp.

Each validates X with ``validate_data``'s defaults at predict time (NaN and
infinity refused; MultinomialNB refuses negative values only when fitting, so
they are scored). ``predict`` is the first argmax of the joint log likelihood
(jll); ``predict_proba`` is ``exp(jll - _logsumexp(jll))`` with scikit-learn's
own ``_logsumexp`` (``nb_proba`` kernel).

- GaussianNB (``_joint_log_likelihood``): per class
  ``log(prior) + (-0.5 * sum(log(2 pi var)) - 0.5 * sum((x - theta) ** 2 / var))``;
  the constants are computed here with the same numpy expressions, the row sum
  over features is numpy's pairwise sum (``gaussian_nb`` kernel). Its jll is a
  transposed stack, so numpy sums it over classes in order.
- MultinomialNB: ``X @ feature_log_prob_.T + class_log_prior_``.
- BernoulliNB: X binarized (``x > binarize``, unless ``binarize=None``), then
  ``X @ (flp - neg).T + (class_log_prior_ + neg.sum(axis=1))`` with
  ``neg = log(1 - exp(flp))``.
The two discrete models' jll is C-ordered, summed pairwise over classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.naive_bayes import BernoulliNB, GaussianNB, MultinomialNB

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.linear import emit_dot2
from bundler.errors import UnsupportedEstimatorError


def _check_width(builder: PlanBuilder, est: Any, cols: Cols, n_features: int) -> None:
    if n_features != len(cols):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} was fitted on {n_features} features but receives {len(cols)}"
        )


def _prediction(builder: PlanBuilder, est: Any, jll: Cols, pairwise: bool) -> Prediction:
    classes = tuple(est.classes_)
    proba = builder.new_cols([f"proba[{c}]" for c in classes])
    builder.emit("nb_proba", est, builder.idx(jll), builder.idx(proba), int(pairwise))
    return Prediction("classification", jll, "argmax", classes, proba)


def _jll_names(est: Any) -> list[str]:
    return [f"jll[{c}]" for c in est.classes_]


@register_converter(GaussianNB, "priors, var_smoothing (also var_smoothing=0); predict_proba")
def convert_gaussian_nb(est: GaussianNB, builder: PlanBuilder, cols: Cols) -> Prediction:
    theta, var = np.asarray(est.theta_), np.asarray(est.var_)
    _check_width(builder, est, cols, theta.shape[1])
    k = len(est.classes_)
    with np.errstate(all="ignore"):  # as scikit-learn computes them, NaN/inf included
        log_prior = [np.log(est.class_prior_[i]) for i in range(k)]
        norm = [-0.5 * np.sum(np.log(2.0 * np.pi * var[i, :])) for i in range(k)]
    builder.check(cols, est, allow_nan=False)
    jll = builder.new_cols(_jll_names(est))
    builder.emit(
        "gaussian_nb",
        est,
        builder.idx(cols),
        builder.idx(jll),
        builder.array(theta, np.float64),
        builder.array(var, np.float64),
        builder.array(np.array(log_prior, dtype=np.float64), np.float64),
        builder.array(np.array(norm, dtype=np.float64), np.float64),
    )
    return _prediction(builder, est, jll, pairwise=False)


@register_converter(MultinomialNB, "alpha, fit_prior, class_prior; predict_proba")
def convert_multinomial_nb(est: MultinomialNB, builder: PlanBuilder, cols: Cols) -> Prediction:
    flp = np.asarray(est.feature_log_prob_, dtype=np.float64)
    _check_width(builder, est, cols, flp.shape[1])
    prior = np.asarray(est.class_log_prior_, dtype=np.float64)
    jll = emit_dot2(builder, est, cols, flp, prior, _jll_names(est))
    return _prediction(builder, est, jll, pairwise=True)


@register_converter(
    BernoulliNB, "binarize threshold or binarize=None, alpha, fit_prior, class_prior; predict_proba"
)
def convert_bernoulli_nb(est: BernoulliNB, builder: PlanBuilder, cols: Cols) -> Prediction:
    flp = np.asarray(est.feature_log_prob_)
    _check_width(builder, est, cols, flp.shape[1])
    with np.errstate(all="ignore"):  # binarize=None on counts > 1 gives NaN, as in scikit-learn
        neg_prob = np.log(1 - np.exp(flp))
        coef = flp - neg_prob
        intercept = est.class_log_prior_ + neg_prob.sum(axis=1)
    if est.binarize is not None and not np.isfinite(est.binarize):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: binarize={est.binarize!r} is not supported; valid: a "
            "finite threshold or None"
        )
    builder.check(cols, est, allow_nan=False)
    if est.binarize is not None:
        binary = builder.derived(cols, f" > {est.binarize!r}")
        builder.emit("binarize", est, builder.idx(cols), builder.idx(binary), float(est.binarize))
        cols = binary
    jll = emit_dot2(
        builder,
        est,
        cols,
        np.asarray(coef, dtype=np.float64),
        np.asarray(intercept, dtype=np.float64),
        _jll_names(est),
        check=False,
    )
    return _prediction(builder, est, jll, pairwise=True)
