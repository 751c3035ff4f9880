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
- ComplementNB: ``X @ feature_log_prob_.T`` (its normalised weights when ``norm=True``),
  plus ``class_log_prior_`` only when there is one class, as scikit-learn does.
- CategoricalNB: per class ``0 + flp_0[c, x_0] + flp_1[c, x_1] + ... + class_log_prior_[c]``
  in feature order (``categorical_nb`` kernel), each value truncated toward zero as
  ``validate_data(dtype="int")`` does; a negative value is refused as ``check_non_negative``
  refuses it, and a category beyond those the model has columns for (``n_categories_``,
  i.e. those seen in training or allowed by ``min_categories``) as scikit-learn's
  ``IndexError``.
The discrete models' jll is C-ordered, summed pairwise over classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.naive_bayes import (
    BernoulliNB,
    CategoricalNB,
    ComplementNB,
    GaussianNB,
    MultinomialNB,
)

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


@register_converter(ComplementNB, "alpha, norm, fit_prior, class_prior; predict_proba")
def convert_complement_nb(est: ComplementNB, builder: PlanBuilder, cols: Cols) -> Prediction:
    flp = np.asarray(est.feature_log_prob_, dtype=np.float64)
    _check_width(builder, est, cols, flp.shape[1])
    # scikit-learn adds the prior only for a single class (it then decides nothing else)
    prior = np.asarray(est.class_log_prior_, dtype=np.float64)
    intercept = prior if len(est.classes_) == 1 else np.zeros(len(est.classes_))
    jll = emit_dot2(builder, est, cols, flp, intercept, _jll_names(est))
    return _prediction(builder, est, jll, pairwise=True)


_UNSEEN = (
    "CategoricalNB reads each value as a whole category number (truncated) and refuses "
    "a negative one or one beyond the categories it was fitted with (0 to n_categories_ - 1)"
)


@register_converter(
    CategoricalNB,
    "alpha, fit_prior, class_prior, min_categories; values truncated to category numbers as "
    "scikit-learn does; unseen categories refused as scikit-learn refuses them; predict_proba",
)
def convert_categorical_nb(est: CategoricalNB, builder: PlanBuilder, cols: Cols) -> Prediction:
    n_cat = np.asarray(est.n_categories_, dtype=np.int64)
    _check_width(builder, est, cols, len(n_cat))
    tables = [np.asarray(t, dtype=np.float64) for t in est.feature_log_prob_]
    k = len(est.classes_)
    if any(t.shape != (k, int(c)) for t, c in zip(tables, n_cat, strict=True)):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: feature_log_prob_ does not match n_categories_"
        )
    offset = np.concatenate([[0], np.cumsum(n_cat)[:-1]]).astype(np.int64)
    builder.check(cols, est, allow_nan=False)
    jll = builder.new_cols(_jll_names(est))
    builder.emit(
        "categorical_nb",
        est,
        builder.idx(cols),
        builder.idx(jll),
        builder.array(np.hstack(tables), np.float64),
        builder.array(offset, np.int64),
        builder.array(n_cat, np.int64),
        builder.array(est.class_log_prior_, np.float64),
        message=_UNSEEN,
    )
    # the jll is a sum of C-ordered (n, k) arrays: logsumexp sums its rows pairwise
    return _prediction(builder, est, jll, pairwise=True)
