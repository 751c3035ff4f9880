"""Kernel SVMs: kernel sums, one-vs-one votes, one-vs-rest decision values, Platt probabilities.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig


def svm_kernel_sum(ws, src, dst, sv, coef, start, rho, kernel, gamma, coef0, degree):
    """libsvm's ``svm_predict_values``: kernel values against every support vector, then sums.

    ``kernel``: 0 linear, 1 poly, 2 rbf, 3 sigmoid (libsvm's ``k_function``). With one
    ``dst`` column (SVR, one-class): ``sum(coef[0, s] * K(x, sv_s)) - rho[0]``. Otherwise
    one column per class pair (i, j), i < j, in libsvm's order: class i's support vectors
    (rows ``start[i]:start[i + 1]``) weighted by ``coef[j - 1]``, then class j's weighted
    by ``coef[i]``, minus ``rho[pair]``.
    """
    n = ws.shape[0]
    n_sv = sv.shape[0]
    d = src.shape[0]
    x = np.empty(d)
    kv = np.empty(n_sv)
    n_class = start.shape[0] - 1
    for i in range(n):
        for f in range(d):
            x[f] = ws[i, src[f]]
        for s in range(n_sv):
            acc = 0.0
            if kernel == 2:
                for f in range(d):
                    t = x[f] - sv[s, f]
                    acc += t * t
                kv[s] = np.exp(-gamma * acc)
            else:
                for f in range(d):
                    acc += x[f] * sv[s, f]
                if kernel == 1:
                    base = gamma * acc + coef0
                    ret = 1.0
                    t = degree
                    while t > 0:
                        if t % 2 == 1:
                            ret *= base
                        base = base * base
                        t //= 2
                    kv[s] = ret
                elif kernel == 3:
                    kv[s] = np.tanh(gamma * acc + coef0)
                else:
                    kv[s] = acc
        if n_class == 1:
            total = 0.0
            for s in range(n_sv):
                total += coef[0, s] * kv[s]
            ws[i, dst[0]] = total - rho[0]
            continue
        p = 0
        for a in range(n_class):
            for b in range(a + 1, n_class):
                total = 0.0
                for s in range(start[a], start[a + 1]):
                    total += coef[b - 1, s] * kv[s]
                for s in range(start[b], start[b + 1]):
                    total += coef[a, s] * kv[s]
                ws[i, dst[p]] = total - rho[p]
                p += 1


def svm_votes(ws, src, dst):
    """libsvm's one-vs-one vote count per class: pair (i, j) votes i if its value > 0, else j."""
    n = ws.shape[0]
    n_class = dst.shape[0]
    for i in range(n):
        for c in range(n_class):
            ws[i, dst[c]] = 0.0
        p = 0
        for a in range(n_class):
            for b in range(a + 1, n_class):
                if ws[i, src[p]] > 0.0:
                    ws[i, dst[a]] += 1.0
                else:
                    ws[i, dst[b]] += 1.0
                p += 1


def svm_ovr(ws, src, dst):
    """scikit-learn's ``_ovr_decision_function(dec < 0, -dec, n_classes)``."""
    n = ws.shape[0]
    n_class = dst.shape[0]
    votes = np.zeros(n_class)
    conf = np.zeros(n_class)
    for i in range(n):
        for c in range(n_class):
            votes[c] = 0.0
            conf[c] = 0.0
        p = 0
        for a in range(n_class):
            for b in range(a + 1, n_class):
                dec = ws[i, src[p]]
                c = -dec
                conf[a] -= c
                conf[b] += c
                if dec < 0.0:
                    votes[b] += 1.0
                else:
                    votes[a] += 1.0
                p += 1
        for c in range(n_class):
            ws[i, dst[c]] = votes[c] + conf[c] / (3.0 * (np.abs(conf[c]) + 1.0))


def svm_proba(ws, src, dst, prob_a, prob_b):
    """libsvm's ``svm_predict_probability``: Platt sigmoids, then pairwise coupling.

    Each pair's probability is ``sigmoid_predict`` clipped to [1e-7, 1 - 1e-7]; the class
    probabilities come from ``multiclass_probability`` (Wu, Lin and Weng's method 2):
    at most ``max(100, k)`` iterations, stopping when the error is below ``0.005 / k``.
    """
    n = ws.shape[0]
    k = dst.shape[0]
    r = np.zeros((k, k))
    q = np.zeros((k, k))
    qp = np.zeros(k)
    pr = np.zeros(k)
    max_iter = 100 if k < 100 else k
    eps = 0.005 / k
    min_prob = 1e-7
    for i in range(n):
        p = 0
        for a in range(k):
            for b in range(a + 1, k):
                f = ws[i, src[p]] * prob_a[p] + prob_b[p]
                # sigmoid_predict, avoiding cancellation on either side
                sp = np.exp(-f) / (1.0 + np.exp(-f)) if f >= 0 else 1.0 / (1 + np.exp(f))
                # min(max(sp, min_prob), 1 - min_prob) with libsvm's own templates,
                # (x > y) ? x : y and (x < y) ? x : y: a NaN (an overflowed kernel) becomes
                # min_prob, as libsvm makes it
                v = sp if sp > min_prob else min_prob
                hi = 1 - min_prob
                v = v if v < hi else hi
                r[a, b] = v
                r[b, a] = 1 - v
                p += 1
        for t in range(k):
            pr[t] = 1.0 / k
            q[t, t] = 0.0
            for j in range(t):
                q[t, t] += r[j, t] * r[j, t]
                q[t, j] = q[j, t]
            for j in range(t + 1, k):
                q[t, t] += r[j, t] * r[j, t]
                q[t, j] = -r[j, t] * r[t, j]
        for _ in range(max_iter):
            pqp = 0.0
            for t in range(k):
                qp[t] = 0.0
                for j in range(k):
                    qp[t] += q[t, j] * pr[j]
                pqp += pr[t] * qp[t]
            max_error = 0.0
            for t in range(k):
                error = np.abs(qp[t] - pqp)
                if error > max_error:
                    max_error = error
            if max_error < eps:
                break
            for t in range(k):
                # q[t, t] > 0: every pairwise probability is at least 1e-7.
                diff = (-qp[t] + pqp) / q[t, t]
                pr[t] += diff
                den = 1 + diff
                if den == 0.0:
                    # IEEE division by +0, as libsvm gets it (Numba would raise).
                    pqp = (pqp + diff * (diff * q[t, t] + 2 * qp[t])) * np.inf * np.inf
                    for j in range(k):
                        qp[j] = (qp[j] + diff * q[t, j]) * np.inf
                        pr[j] = pr[j] * np.inf
                    continue
                pqp = (pqp + diff * (diff * q[t, t] + 2 * qp[t])) / den / den
                for j in range(k):
                    qp[j] = (qp[j] + diff * q[t, j]) / den
                    pr[j] /= den
        for t in range(k):
            ws[i, dst[t]] = pr[t]


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "svm_kernel_sum": sig(F2, I1, I1, F2, F2, I1, F1, "i8", "f8", "f8", "i8"),
    "svm_votes": sig(F2, I1, I1),
    "svm_ovr": sig(F2, I1, I1),
    "svm_proba": sig(F2, I1, I1, F1, F1),
}
