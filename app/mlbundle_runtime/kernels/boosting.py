"""Float32 boosting arithmetic: XGBoost's sums and output transforms.

XGBoost keeps predictions in a float32 vector: each tree's leaf is added to it
in tree order (rounding to float32 at every addition), starting from the base
margin, and the objective transforms it in float32 (``common::Sigmoid``,
``common::Softmax``, ``expf``). A float64 sum rounded once at the end differs
in the last bits, so the trees are walked by ``tree_sum`` with one output
column per tree and these kernels do the float32 part.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig


def xgb_sum(ws, src, dst, start, group):
    """XGBoost's margins: output ``j`` starts at ``float32(start[j])``; then, tree by
    tree in order, ``float32(ws[i, src[t]])`` (tree ``t``'s leaf) is added to output
    ``group[t]`` in float32."""
    n = ws.shape[0]
    m = dst.shape[0]
    acc = np.zeros(m, dtype=np.float32)
    for i in range(n):
        for j in range(m):
            acc[j] = np.float32(start[j])
        for t in range(src.shape[0]):
            g = group[t]
            acc[g] = acc[g] + np.float32(ws[i, src[t]])
        for j in range(m):
            ws[i, dst[j]] = np.float64(acc[j])


def xgb_sigmoid(ws, src, dst):
    """``common::Sigmoid`` in float32: ``1 / (expf(min(-x, 88.7)) + 1 + 1e-16)``.

    With two destination columns, the scikit-learn wrapper's ``[1 - p, p]`` (its
    ``1.0 - p`` on a float32 array is float32 too); with one, ``p``.
    """
    n = ws.shape[0]
    cap = np.float32(88.7)
    one = np.float32(1.0)
    eps = np.float32(1e-16)
    for i in range(n):
        x = -np.float32(ws[i, src[0]])
        if x > cap:
            x = cap
        p = one / (np.exp(x) + one + eps)
        if dst.shape[0] == 2:
            ws[i, dst[0]] = np.float64(one - p)
            ws[i, dst[1]] = np.float64(p)
        else:
            ws[i, dst[0]] = np.float64(p)


def xgb_softmax(ws, src, dst):
    """``common::Softmax``: the float32 row maximum (``fmaxf``) subtracted, ``expf``
    of each, their sum in float64, each divided by that sum rounded to float32."""
    n = ws.shape[0]
    m = src.shape[0]
    for i in range(n):
        top = np.float32(ws[i, src[0]])
        for j in range(1, m):
            v = np.float32(ws[i, src[j]])
            if v > top or top != top:
                top = v
        total = 0.0
        for j in range(m):
            e = np.exp(np.float32(ws[i, src[j]]) - top)
            ws[i, dst[j]] = np.float64(e)
            total += np.float64(e)
        t32 = np.float32(total)
        for j in range(m):
            ws[i, dst[j]] = np.float64(np.float32(ws[i, dst[j]]) / t32)


def xgb_exp(ws, src, dst):
    """``expf`` per column: the output of XGBoost's log-link objectives (poisson, gamma,
    tweedie)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = np.float64(np.exp(np.float32(ws[i, src[j]])))


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "xgb_sum": sig(F2, I1, I1, F1, I1),
    "xgb_sigmoid": sig(F2, I1, I1),
    "xgb_softmax": sig(F2, I1, I1),
    "xgb_exp": sig(F2, I1, I1),
}
