"""Naive Bayes on category codes: CategoricalNB's joint log likelihood.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig


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


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "categorical_nb": sig(F2, I1, I1, F2, I1, I1, F1, ret="i8"),
}
