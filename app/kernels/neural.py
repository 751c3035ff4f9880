"""Multi-layer perceptrons: dense layers with their activations.

Plain, Numba-compatible Python; see ``app/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from app.kernels._types import F1, F2, I1, sig

# -- kernel SVMs, MLPs, k nearest neighbours (converters/svm.py, mlp.py, neighbors.py) --


def mlp_dense(ws, src, dst, coef, intercept, activation):
    """One MLP layer: ``act(src @ coef + intercept)``, ``coef`` is (inputs x outputs).

    ``activation``: 0 identity, 1 logistic (scipy's ``expit``: ``1 / (1 + exp(-z))``),
    2 tanh, 3 relu (``maximum(z, 0)``, NaN stays NaN), 4 exp.
    """
    n = ws.shape[0]
    n_in = src.shape[0]
    for i in range(n):
        for j in range(dst.shape[0]):
            acc = 0.0
            for k in range(n_in):
                acc += ws[i, src[k]] * coef[k, j]
            z = acc + intercept[j]
            if activation == 1:
                z = 1.0 / (1.0 + np.exp(-z))
            elif activation == 2:
                z = np.tanh(z)
            elif activation == 3:
                if z < 0.0:
                    z = 0.0
            elif activation == 4:
                z = np.exp(z)
            ws[i, dst[j]] = z


#: Kernel name -> Numba signature, for the kernels of this module.
EXPORTS: dict[str, str] = {
    "mlp_dense": sig(F2, I1, I1, F2, F1, "i8"),
}
