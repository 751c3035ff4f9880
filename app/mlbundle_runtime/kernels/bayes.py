"""Naive Bayes on category codes and quadratic discriminants: CategoricalNB's joint log
likelihood, QuadraticDiscriminantAnalysis's scores and probabilities.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig
from mlbundle_runtime.kernels.sums import pairwise_sum


def categorical_nb(ws, src, dst, flp, offset, n_cat, log_prior):
    """CategoricalNB's ``_joint_log_likelihood``: per class ``0 + flp_0[c, x_0] + flp_1[c, x_1]
    + ...`` in feature order, then ``+ class_log_prior_[c]``.

    ``flp`` holds every feature's ``feature_log_prob_[i]`` side by side (feature ``f`` in
    columns ``offset[f]`` to ``offset[f] + n_cat[f]``). A value is read as
    ``validate_data(dtype="int")`` reads it, truncated toward zero (``-0.5`` is category 0).
    Returns the position of the first value scikit-learn refuses: negative after truncation
    (``check_non_negative``) or a category the model has no column for (``IndexError``).
    """
    n = ws.shape[0]
    d = src.shape[0]
    k = dst.shape[0]
    acc = np.empty(k)
    code = np.empty(d, dtype=np.int64)
    for i in range(n):
        for f in range(d):
            v = ws[i, src[f]]
            if not (v > -1.0 and v < n_cat[f]):
                return i * d + f
            code[f] = int(v)  # truncation toward zero, as numpy's astype(int)
        for c in range(k):
            acc[c] = 0.0
        for f in range(d):
            for c in range(k):
                acc[c] += flp[c, offset[f] + code[f]]
        for c in range(k):
            ws[i, dst[c]] = acc[c] + log_prior[c]
    return -1


def qda(ws, src, dst, means, weights, rank, offset):
    """QuadraticDiscriminantAnalysis: ``dst`` gets the k class scores of ``_decision_function``
    (``predict`` takes their first maximum), then the k probabilities of ``predict_proba``.

    Per class ``i``: ``Xm = x - means_[i]``; ``X2 = Xm @ W_i`` with
    ``W_i = rotations_[i] * scalings_[i] ** -0.5`` (rows ``i * d`` to ``i * d + d`` of
    ``weights``, its first ``rank[i]`` columns), each dot product compensated (Dot2, as
    ``linear_dot2``: BLAS's own rounding is the only difference left); the score is
    ``-0.5 * (pairwise_sum(X2 ** 2) + u_i) + log(priors_[i])`` with ``offset`` holding
    ``u_i`` then ``log(priors_[i])``. Probabilities are ``exp(l - log(sum(exp(l))))`` with
    ``l = score - max(score)``, the sum numpy's pairwise row sum.
    """
    n = ws.shape[0]
    d = src.shape[0]
    k = dst.shape[0] // 2
    split = 134217729.0  # 2**27 + 1: Veltkamp's splitter for TwoProduct
    xm = np.empty(d)
    sq = np.empty(weights.shape[1])
    ll = np.empty(k)
    for i in range(n):
        for c in range(k):
            for f in range(d):
                xm[f] = ws[i, src[f]] - means[c, f]
            r = rank[c]
            for j in range(r):
                plain = 0.0
                hi = 0.0
                lo = 0.0
                for f in range(d):
                    a = xm[f]
                    b = weights[c * d + f, j]
                    p = a * b
                    plain += p
                    t = split * a
                    a_hi = t - (t - a)
                    a_lo = a - a_hi
                    t = split * b
                    b_hi = t - (t - b)
                    b_lo = b - b_hi
                    e = a_lo * b_lo - (((p - a_hi * b_hi) - a_lo * b_hi) - a_hi * b_lo)
                    s = hi + p
                    z = s - hi
                    q = (hi - (s - z)) + (p - z)
                    hi = s
                    lo += q + e
                acc = hi + lo
                if not np.isfinite(acc):
                    acc = plain
                sq[j] = acc * acc
            norm2 = 0.0 + pairwise_sum(sq, 0, r)
            ws[i, dst[c]] = -0.5 * (norm2 + offset[c]) + offset[k + c]
        top = ws[i, dst[0]]
        for c in range(1, k):
            v = ws[i, dst[c]]
            if v != v or (top == top and v > top):  # numpy's max: a NaN wins
                top = v
        for c in range(k):
            ll[c] = np.exp(ws[i, dst[c]] - top)
        total = np.log(0.0 + pairwise_sum(ll, 0, k))
        for c in range(k):
            ws[i, dst[k + c]] = np.exp((ws[i, dst[c]] - top) - total)


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "categorical_nb": sig(F2, I1, I1, F2, I1, I1, F1, ret="i8"),
    "qda": sig(F2, I1, I1, F2, F2, I1, F1),
}
