"""Tree traversal: forests, gradient boosting, histogram boosting, isolation forests.

Plain, Numba-compatible Python; see ``app/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from app.kernels._types import F1, F2, I1, U1, sig


def forest(ws, src, dst, roots, feature, threshold, left, right, missing_left, value, divisor):
    """Sum the leaf values of every tree, in tree order, then divide.

    This is scikit-learn's tree traversal: ``float32(x) <= threshold`` goes
    left, NaN follows ``missing_go_to_left``; forests add each tree's output
    in estimator order and divide by the number of trees.
    """
    n = ws.shape[0]
    n_out = dst.shape[0]
    acc = np.zeros(n_out)
    for i in range(n):
        for j in range(n_out):
            acc[j] = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                x = ws[i, src[feature[node]]]
                if np.isnan(x):
                    node = left[node] if missing_left[node] != 0 else right[node]
                elif np.float32(x) <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            for j in range(n_out):
                acc[j] += value[node, j]
        for j in range(n_out):
            ws[i, dst[j]] = acc[j] / divisor


def boost(
    ws, src, dst, init_cols, init, roots, tree_out, feature, threshold, left, right, value, scale
):
    """GradientBoosting raw scores, as scikit-learn's ``predict_stages``.

    Output ``k`` starts at the init estimator's raw value: column
    ``init_cols[k]`` of the workspace (an init estimator compiled earlier) or,
    when ``init_cols`` is empty, the constant ``init[k]``. Then every tree ``t``
    (stage by stage, then by output) adds ``scale * value[leaf]`` to output
    ``tree_out[t]``. Splits compare ``float32(x) <= threshold``; gradient
    boosting refuses NaN before this kernel runs (a NaN would go right).
    """
    n = ws.shape[0]
    n_out = dst.shape[0]
    acc = np.zeros(n_out)
    for i in range(n):
        for j in range(n_out):
            acc[j] = ws[i, init_cols[j]] if init_cols.shape[0] > 0 else init[j]
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                if np.float32(ws[i, src[feature[node]]]) <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            acc[tree_out[t]] += scale * value[node, 0]
        for j in range(n_out):
            ws[i, dst[j]] = acc[j]


def hgb(
    ws,
    src,
    dst,
    init,
    roots,
    tree_out,
    feature,
    threshold,
    left,
    right,
    missing_left,
    cat_left,
    cat_known,
    left_bits,
    known_bits,
    value,
):
    """HistGradientBoosting raw scores, as ``_predict_from_raw_data`` (float64, no cast).

    Output ``k`` starts at the baseline ``init[k]``; every tree ``t`` (iteration
    by iteration, then by output) adds its leaf value to output ``tree_out[t]``.
    A numeric split sends ``x <= threshold`` left. A categorical split
    (``cat_left[node] >= 0``) sends a category left when its bit is set in the
    8-word bitset ``left_bits[8 * cat_left[node]:]``, right when it is a known
    category of the feature (``known_bits[8 * cat_known[node]:]``); NaN, negative
    and unknown categories follow ``missing_left``.
    """
    n = ws.shape[0]
    n_out = dst.shape[0]
    acc = np.zeros(n_out)
    for i in range(n):
        for j in range(n_out):
            acc[j] = 0.0
            acc[j] += init[j]
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                x = ws[i, src[feature[node]]]
                if np.isnan(x):
                    go_left = missing_left[node] != 0
                elif cat_left[node] >= 0:
                    if x < 0.0 or x >= 256.0:
                        # outside the 256-bit bitsets: not a category, so missing
                        go_left = missing_left[node] != 0
                    else:
                        v = np.int64(x)
                        word = v >> 5
                        bit = v & 31
                        if (left_bits[cat_left[node] * 8 + word] >> bit) & 1:
                            go_left = True
                        elif (known_bits[cat_known[node] * 8 + word] >> bit) & 1:
                            go_left = False
                        else:
                            go_left = missing_left[node] != 0
                else:
                    go_left = x <= threshold[node]
                node = left[node] if go_left else right[node]
            acc[tree_out[t]] += value[node, 0]
        for j in range(n_out):
            ws[i, dst[j]] = acc[j]


def exp_link(ws, src, dst):
    """``exp`` per column: the inverse of a log link (Poisson, gamma)."""
    n = ws.shape[0]
    for i in range(n):
        for j in range(src.shape[0]):
            ws[i, dst[j]] = np.exp(ws[i, src[j]])


def iforest(
    ws, src, dst, roots, feature, threshold, left, right, missing_left, value, denominator, offset
):
    """IsolationForest ``score_samples`` (dst[0]) and ``decision_function`` (dst[1]).

    Each tree's leaf holds ``depth + average_path_length(n_samples) - 1``;
    these are summed in tree order, then ``-2 ** -(total / denominator)``
    (``2 ** -1`` when the denominator is 0), minus ``offset`` for the
    decision. Splits as in ``forest``: ``float32(x) <= threshold``, NaN
    follows ``missing_left``.
    """
    n = ws.shape[0]
    for i in range(n):
        depth = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] >= 0:
                x = ws[i, src[feature[node]]]
                if np.isnan(x):
                    node = left[node] if missing_left[node] != 0 else right[node]
                elif np.float32(x) <= threshold[node]:
                    node = left[node]
                else:
                    node = right[node]
            depth += value[node, 0]
        ratio = depth / denominator if denominator != 0.0 else 1.0
        score = -(2.0 ** (-ratio))
        ws[i, dst[0]] = score
        ws[i, dst[1]] = score - offset


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "forest": sig(F2, I1, I1, I1, I1, F1, I1, I1, U1, F2, "f8"),
    "boost": sig(F2, I1, I1, I1, F1, I1, I1, I1, F1, I1, I1, F2, "f8"),
    "hgb": sig(F2, I1, I1, F1, I1, I1, I1, F1, I1, I1, U1, I1, I1, I1, I1, F2),
    "exp_link": sig(F2, I1, I1),
    "iforest": sig(F2, I1, I1, I1, I1, F1, I1, I1, U1, F2, "f8", "f8"),
}
