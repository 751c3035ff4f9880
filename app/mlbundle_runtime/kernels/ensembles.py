"""Ensembles of compiled estimators: VotingClassifier / VotingRegressor's combinations.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig


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


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "member_average": sig(F2, I1, I1, F1, "f8"),
    "hard_vote": sig(F2, I1, I1, I1, I1, F1),
}
