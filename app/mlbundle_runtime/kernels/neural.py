"""Multi-layer perceptrons: dense layers with their activations.

Plain, Numba-compatible Python; see ``app/mlbundle_runtime/kernels/__init__.py`` for the rules
every kernel follows.
"""

from __future__ import annotations

import numpy as np

from mlbundle_runtime.kernels._types import F1, F2, I1, sig

# -- kernel SVMs, MLPs, k nearest neighbours (converters/svm.py, mlp.py, neighbors.py) --


def mlp_dense(ws, src, dst, coef, intercept, activation):
    """One MLP layer: ``act(src @ coef + intercept)``, ``coef`` is (inputs x outputs).

    ``activation``: 0 identity, 1 logistic (scipy's ``expit``: ``1 / (1 + exp(-z))``),
    2 tanh, 3 relu (``maximum(z, 0)``, NaN stays NaN), 4 exp.

    Every output is ``0.0 + x[0] * coef[0, j] + x[1] * coef[1, j] + ...`` summed in input
    order, then ``+ intercept[j]``; only the order of the loops around that sum is chosen
    for speed. With 8 outputs or more, a block of rows is gathered into a scratch matrix
    and each input updates the running sums of all outputs at once (the innermost loop
    runs over contiguous outputs, so it is vectorised; four inputs per pass halve the
    traffic to the sums). With fewer outputs, eight rows are summed side by side.
    """
    n = ws.shape[0]
    n_in = src.shape[0]
    n_out = dst.shape[0]
    if n_out >= 8:
        block = 16
        xb = np.empty((block, n_in))
        acc = np.empty((block, n_out))
        for i0 in range(0, n, block):
            rb = min(block, n - i0)
            for r in range(rb):
                for k in range(n_in):
                    xb[r, k] = ws[i0 + r, src[k]]
                for j in range(n_out):
                    acc[r, j] = 0.0
            k = 0
            while k + 4 <= n_in:
                for r in range(rb):
                    x0 = xb[r, k]
                    x1 = xb[r, k + 1]
                    x2 = xb[r, k + 2]
                    x3 = xb[r, k + 3]
                    for j in range(n_out):
                        acc[r, j] = (
                            ((acc[r, j] + x0 * coef[k, j]) + x1 * coef[k + 1, j])
                            + x2 * coef[k + 2, j]
                        ) + x3 * coef[k + 3, j]
                k += 4
            while k < n_in:
                for r in range(rb):
                    x0 = xb[r, k]
                    for j in range(n_out):
                        acc[r, j] = acc[r, j] + x0 * coef[k, j]
                k += 1
            for r in range(rb):
                for j in range(n_out):
                    z = acc[r, j] + intercept[j]
                    if activation == 1:
                        z = 1.0 / (1.0 + np.exp(-z))
                    elif activation == 2:
                        z = np.tanh(z)
                    elif activation == 3:
                        if z < 0.0:
                            z = 0.0
                    elif activation == 4:
                        z = np.exp(z)
                    ws[i0 + r, dst[j]] = z
        return
    i0 = 0
    while i0 + 8 <= n:
        for j in range(n_out):
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            a4 = 0.0
            a5 = 0.0
            a6 = 0.0
            a7 = 0.0
            for k in range(n_in):
                c = src[k]
                w = coef[k, j]
                a0 += ws[i0, c] * w
                a1 += ws[i0 + 1, c] * w
                a2 += ws[i0 + 2, c] * w
                a3 += ws[i0 + 3, c] * w
                a4 += ws[i0 + 4, c] * w
                a5 += ws[i0 + 5, c] * w
                a6 += ws[i0 + 6, c] * w
                a7 += ws[i0 + 7, c] * w
            b = intercept[j]
            zs = (a0 + b, a1 + b, a2 + b, a3 + b, a4 + b, a5 + b, a6 + b, a7 + b)
            for r in range(8):
                z = zs[r]
                if activation == 1:
                    z = 1.0 / (1.0 + np.exp(-z))
                elif activation == 2:
                    z = np.tanh(z)
                elif activation == 3:
                    if z < 0.0:
                        z = 0.0
                elif activation == 4:
                    z = np.exp(z)
                ws[i0 + r, dst[j]] = z
        i0 += 8
    for i in range(i0, n):
        for j in range(n_out):
            a = 0.0
            for k in range(n_in):
                a += ws[i, src[k]] * coef[k, j]
            z = a + intercept[j]
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
