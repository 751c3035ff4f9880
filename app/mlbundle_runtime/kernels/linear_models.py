"""Linear models and naive Bayes: compensated dot products, one-vs-rest and NB probabilities.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig
from mlbundle_runtime.kernels.sums import pairwise_sum

# -- linear models and naive Bayes (converters/linear.py, sgd_svm.py, naive_bayes.py) -------
#
# Kernels that reproduce ``arr.sum(axis=1)`` use numpy's pairwise summation
# (``mlbundle_runtime.kernels.sums.pairwise_sum``).


def linear_dot2(ws, src, dst, coef, intercept):
    """``X @ coef.T + intercept`` with a compensated dot product (Ogita-Rump-Oishi Dot2).

    scikit-learn's ``X @ coef.T`` goes through BLAS, whose summation order
    depends on the CPU and on the batch shape, so no fixed order reproduces it
    bit for bit. Dot2 computes the dot product as if in twice the precision and
    rounds once, so the only difference left is BLAS's own rounding error; the
    intercept is then added as scikit-learn does. If an intermediate overflows
    (inputs beyond ~1e300) the plain in-order sum is used, as it is then either
    exact enough or infinite/NaN as in BLAS.
    """
    n = ws.shape[0]
    m = src.shape[0]
    split = 134217729.0  # 2**27 + 1: Veltkamp's splitter for TwoProduct
    for i in range(n):
        for j in range(dst.shape[0]):
            plain = 0.0
            hi = 0.0
            lo = 0.0
            for k in range(m):
                a = ws[i, src[k]]
                b = coef[j, k]
                p = a * b
                plain += p
                # TwoProduct (Dekker): a * b == p + e exactly
                t = split * a
                a_hi = t - (t - a)
                a_lo = a - a_hi
                t = split * b
                b_hi = t - (t - b)
                b_lo = b - b_hi
                e = a_lo * b_lo - (((p - a_hi * b_hi) - a_lo * b_hi) - a_hi * b_lo)
                # TwoSum (Knuth): hi + p == s + q exactly
                s = hi + p
                z = s - hi
                q = (hi - (s - z)) + (p - z)
                hi = s
                lo += q + e
            acc = hi + lo
            if not np.isfinite(acc):
                acc = plain
            ws[i, dst[j]] = acc + intercept[j]


def binarize(ws, src, dst, threshold):
    """``sklearn.preprocessing.binarize``: 1 where ``x > threshold``, else 0."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = 1.0 if ws[i, src[j]] > threshold else 0.0


def huber_pair(ws, src, dst):
    """SGD modified_huber binary probabilities: ``p = (clip(d, -1, 1) + 1) / 2``, ``[1 - p, p]``."""
    n = ws.shape[0]
    for i in range(n):
        d = ws[i, src[0]]
        if d < -1.0:
            d = -1.0
        elif d > 1.0:
            d = 1.0
        p = (d + 1.0) / 2.0
        ws[i, dst[0]] = 1.0 - p
        ws[i, dst[1]] = p


def ovr_proba(ws, src, dst, kind):
    """One-vs-rest probabilities, normalised per row (``_predict_proba_lr`` and SGD's
    modified_huber): ``p = expit(d)`` (kind 0) or ``(clip(d, -1, 1) + 1) / 2`` (kind 1),
    divided by the row sum (numpy's pairwise sum); a row of zeros becomes uniform."""
    n = ws.shape[0]
    m = src.shape[0]
    buf = np.empty(m)
    for i in range(n):
        for j in range(m):
            d = ws[i, src[j]]
            if kind == 0:
                buf[j] = 1.0 / (1.0 + np.exp(-d))
            else:
                if d < -1.0:
                    d = -1.0
                elif d > 1.0:
                    d = 1.0
                buf[j] = (d + 1.0) / 2.0
        total = 0.0 + pairwise_sum(buf, 0, m)
        if total == 0.0:
            for j in range(m):
                buf[j] = 1.0
            total = float(m)
        for j in range(m):
            ws[i, dst[j]] = buf[j] / total


def gaussian_nb(ws, src, dst, theta, var, log_prior, norm):
    """GaussianNB joint log likelihood per class (``_joint_log_likelihood``).

    ``log_prior[c] + (norm[c] - 0.5 * sum_f((x_f - theta[c, f]) ** 2 / var[c, f]))``
    where ``norm[c] = -0.5 * sum(log(2 pi var[c]))`` (computed by numpy at compile
    time) and the feature sum is numpy's pairwise sum.
    """
    n = ws.shape[0]
    m = src.shape[0]
    buf = np.empty(m)
    for i in range(n):
        for c in range(dst.shape[0]):
            for j in range(m):
                diff = ws[i, src[j]] - theta[c, j]
                sq = diff * diff
                v = var[c, j]
                if v != 0.0:
                    buf[j] = sq / v
                elif sq > 0.0:
                    buf[j] = np.inf
                else:
                    buf[j] = np.nan
            total = 0.0 + pairwise_sum(buf, 0, m)
            ws[i, dst[c]] = log_prior[c] + (norm[c] - 0.5 * total)


def nb_proba(ws, src, dst, pairwise):
    """Naive Bayes ``predict_proba``: ``exp(jll - logsumexp(jll))`` per row.

    scikit-learn's ``_logsumexp`` (utils/_array_api.py): ``a = max(jll)`` (NaN if
    any is NaN), ``m`` = how many values equal it; the others are shifted by ``a``
    (0 if it is infinite), exponentiated and summed (``s``); ``s / m`` unless 0;
    ``log1p(s) + log(m) + a``. The sum is numpy's pairwise sum when ``pairwise``
    (jll in C order: MultinomialNB, BernoulliNB) or in order (GaussianNB's jll is a
    transposed stack, so numpy sums it column by column).
    """
    n = ws.shape[0]
    m = src.shape[0]
    buf = np.empty(m)
    for i in range(n):
        top = ws[i, src[0]]
        for j in range(1, m):
            v = ws[i, src[j]]
            if np.isnan(v) or v > top:
                top = v
            if np.isnan(top):
                break
        count = 0.0
        for j in range(m):
            if ws[i, src[j]] == top:
                count += 1.0
        shift = top if np.isfinite(top) else 0.0
        for j in range(m):
            v = ws[i, src[j]]
            buf[j] = 0.0 if v == top else np.exp(v - shift)
        if pairwise == 0:
            total = 0.0
            for j in range(m):
                total += buf[j]
        else:
            total = 0.0 + pairwise_sum(buf, 0, m)
        if total != 0.0:
            total = total / count if count != 0.0 else np.nan
        log_px = (np.log1p(total) + np.log(count)) + top
        for j in range(m):
            ws[i, dst[j]] = np.exp(ws[i, src[j]] - log_px)


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "linear_dot2": sig(F2, I1, I1, F2, F1),
    "binarize": sig(F2, I1, I1, "f8"),
    "huber_pair": sig(F2, I1, I1),
    "ovr_proba": sig(F2, I1, I1, "i8"),
    "gaussian_nb": sig(F2, I1, I1, F2, F2, F1, F1),
    "nb_proba": sig(F2, I1, I1, "i8"),
}
