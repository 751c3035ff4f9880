"""Ensembles of compiled estimators: VotingClassifier / VotingRegressor's combinations and
CalibratedClassifierCV's calibrators.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig
from mlbundle_runtime.kernels.sums import pairwise_sum


def member_average(ws, src, dst, weights, divisor):
    """``np.average`` over members: per output column ``c``,
    ``(x_0c * w_0 + x_1c * w_1 + ...) / divisor``, added in member order.

    ``src`` holds the members' columns member by member (``len(dst)`` each). numpy reduces
    the members' axis (axis 0 of the stacked probabilities, axis 1 of the transposed,
    Fortran-ordered predictions) in order; without weights every ``w`` is 1 (an exact
    product) and ``divisor`` the member count, as ``np.mean``.
    """
    n = ws.shape[0]
    k = dst.shape[0]
    m = weights.shape[0]
    for i in range(n):
        for c in range(k):
            acc = ws[i, src[c]] * weights[0]
            for j in range(1, m):
                acc += ws[i, src[j * k + c]] * weights[j]
            ws[i, dst[c]] = acc / divisor


def hard_vote(ws, src, dst, start, rule, weights):
    """VotingClassifier(voting="hard"): each member's label (its decision columns
    ``src[start[j]:start[j + 1]]`` read by its rule: 0 first maximum, a NaN winning, as
    ``numpy.argmax``; 1 class 1 where the value is > 0; 2 class 1 unless the value is < 0),
    then ``np.bincount(labels, weights)``: ``dst`` gets each class's weight, added in member
    order, which ``predict`` takes the first maximum of.
    """
    n = ws.shape[0]
    k = dst.shape[0]
    m = weights.shape[0]
    acc = np.empty(k)
    for i in range(n):
        for c in range(k):
            acc[c] = 0.0
        for j in range(m):
            lo = start[j]
            hi = start[j + 1]
            if rule[j] == 0:
                best = 0
                top = ws[i, src[lo]]
                if top == top:
                    for t in range(lo + 1, hi):
                        v = ws[i, src[t]]
                        if v != v:
                            best = t - lo
                            break
                        if v > top:
                            top = v
                            best = t - lo
            elif rule[j] == 1:
                best = 1 if ws[i, src[lo]] > 0.0 else 0
            else:
                best = 0 if ws[i, src[lo]] < 0.0 else 1
            acc[best] += weights[j]
        for c in range(k):
            ws[i, dst[c]] = acc[c]


def calibrate(ws, src, dst, cls, kind, a, b, lo, hi, xs, ys, start):
    """One ``_CalibratedClassifier.predict_proba``: calibrator ``j`` maps its base score
    (``src[j]``: a decision_function or probability column) to class ``cls[j]``'s column.

    ``kind[j]``: 0 sigmoid ``expit(-(a * T + b))`` (scipy's ``1 / (1 + exp(-x))``); 1
    isotonic: ``T`` clipped to ``[lo, hi]`` (``X_min_``, ``X_max_``), then scipy's
    ``interp1d`` linear rule on the thresholds ``xs[start[j]:start[j + 1]]`` / ``ys``
    (``searchsorted`` left, the index clipped to ``1 .. n - 1``,
    ``slope * (T - x_lo) + y_lo`` with ``slope = (y_hi - y_lo) / (x_hi - x_lo)``; a single
    threshold gives its value). Two classes: ``[1 - p, p]``. More: each column over the
    pairwise row sum, or ``1 / k`` where that sum is 0. Then values in ``(1, 1 + 1e-5]``
    become 1.
    """
    n = ws.shape[0]
    k = dst.shape[0]
    m = src.shape[0]
    proba = np.empty(k)
    for i in range(n):
        for c in range(k):
            proba[c] = 0.0
        for j in range(m):
            t = ws[i, src[j]]
            if kind[j] == 0:
                p = 1.0 / (1.0 + np.exp(a[j] * t + b[j]))  # expit(x), x = -(a * t + b)
            else:
                t = min(max(t, lo[j]), hi[j]) if t == t else t
                s0 = start[j]
                cnt = start[j + 1] - s0
                if cnt == 1:
                    p = ys[s0]
                else:
                    # searchsorted(side="left"): the first threshold >= t (NaN sorts last)
                    pos = cnt
                    for q in range(cnt):
                        if xs[s0 + q] >= t:
                            pos = q
                            break
                    pos = min(max(pos, 1), cnt - 1)
                    x_lo = xs[s0 + pos - 1]
                    x_hi = xs[s0 + pos]
                    y_lo = ys[s0 + pos - 1]
                    y_hi = ys[s0 + pos]
                    slope = (y_hi - y_lo) / (x_hi - x_lo)
                    p = slope * (t - x_lo) + y_lo
            proba[cls[j]] = p
        if k == 2:
            proba[0] = 1.0 - proba[1]
        else:
            total = 0.0 + pairwise_sum(proba, 0, k)
            for c in range(k):
                proba[c] = proba[c] / total if total != 0.0 else 1.0 / k
        for c in range(k):
            v = proba[c]
            ws[i, dst[c]] = 1.0 if (v > 1.0 and v <= 1.0 + 1e-5) else v


def samme_decision(ws, src, dst, start, rule, weights, wrong, total):
    """AdaBoostClassifier's ``decision_function``: each member's label (its decision columns
    ``src[start[j]:start[j + 1]]`` read by ``rule[j]`` as in ``hard_vote``) adds
    ``weights[j]`` to its class and ``wrong[j]`` (``-1 / (K - 1) * w``) to every other,
    in member order; each sum is divided by ``total`` (the weights' numpy sum). With
    two classes ``dst`` is one column, ``-p_0 + p_1``.
    """
    n = ws.shape[0]
    m = weights.shape[0]
    k = total.shape[0]
    acc = np.empty(k)
    for i in range(n):
        for c in range(k):
            acc[c] = 0.0
        for j in range(m):
            lo = start[j]
            hi = start[j + 1]
            if rule[j] == 0:
                best = 0
                top = ws[i, src[lo]]
                if top == top:
                    for t in range(lo + 1, hi):
                        v = ws[i, src[t]]
                        if v != v:
                            best = t - lo
                            break
                        if v > top:
                            top = v
                            best = t - lo
            elif rule[j] == 1:
                best = 1 if ws[i, src[lo]] > 0.0 else 0
            else:
                best = 0 if ws[i, src[lo]] < 0.0 else 1
            for c in range(k):
                acc[c] += weights[j] if c == best else wrong[j]
        for c in range(k):
            acc[c] = acc[c] / total[c]
        if k == 2:
            ws[i, dst[0]] = 0.0 + -acc[0] + acc[1]
        else:
            for c in range(k):
                ws[i, dst[c]] = acc[c]


def weighted_median(ws, src, dst, weights):
    """AdaBoostRegressor's ``predict``: the members' predictions ``src`` sorted (equal
    ones in member order), their weights' running sum (``np.cumsum``), and the first
    prediction whose sum reaches half the total.
    """
    n = ws.shape[0]
    m = src.shape[0]
    order = np.empty(m, dtype=np.int64)
    for i in range(n):
        for j in range(m):
            v = ws[i, src[j]]
            p = j
            while p > 0 and ws[i, src[order[p - 1]]] > v:
                order[p] = order[p - 1]
                p -= 1
            order[p] = j
        total = 0.0
        for j in range(m):
            total += weights[order[j]]
        half = 0.5 * total
        cdf = 0.0
        pick = order[0]
        for j in range(m):
            cdf += weights[order[j]]
            if cdf >= half:
                pick = order[j]
                break
        ws[i, dst[0]] = ws[i, src[pick]]


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "member_average": sig(F2, I1, I1, F1, "f8"),
    "hard_vote": sig(F2, I1, I1, I1, I1, F1),
    "samme_decision": sig(F2, I1, I1, I1, I1, F1, F1, F1),
    "weighted_median": sig(F2, I1, I1, F1),
    "calibrate": sig(F2, I1, I1, I1, I1, F1, F1, F1, F1, F1, F1, I1),
}
