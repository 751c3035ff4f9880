"""FunctionTransformer with an elementwise numpy function (or none: the identity).

Only a few numpy ufuncs are compiled; any other ``func`` is refused by name,
since a plan cannot run arbitrary Python. numpy's answers for invalid inputs
are kept (``log`` of a negative number is NaN, of zero ``-inf``) and
scikit-learn does not refuse them; a later step may. ``validate=True`` runs
``check_array`` first, which refuses NaN and infinity.

``sqrt`` and ``abs`` are correctly rounded, so they match numpy bit for bit.
``log``, ``log1p`` and ``exp`` use the C library; numpy on a CPU with AVX-512
uses its own vectorised versions, which differ from it in the last bit for a
few percent of inputs (relative error below 2.3e-16).
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import FunctionTransformer

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.scalers import refuse_float32
from bundler.errors import UnsupportedEstimatorError

#: numpy function -> (name shown to users, unary_func kernel code)
FUNCTIONS = {
    np.log1p: ("numpy.log1p", 1),
    np.log: ("numpy.log", 2),
    np.sqrt: ("numpy.sqrt", 3),
    np.exp: ("numpy.exp", 4),
    np.abs: ("numpy.abs", 5),
}
VALID = "func=None (identity), " + ", ".join(name for name, _ in FUNCTIONS.values())


def _code(est: FunctionTransformer, builder: PlanBuilder) -> int:
    func = est.func
    if func is None:
        return 0
    for known, (_, code) in FUNCTIONS.items():
        if func is known:
            return code
    shown = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    module = getattr(func, "__module__", None)
    if module and module not in ("numpy", "builtins"):
        shown = f"{module}.{shown}"
    raise UnsupportedEstimatorError(
        f"{builder.origin(est)}: func={shown} cannot be compiled (a plan runs no Python "
        f"code); valid: {VALID}"
    )


@register_converter(
    FunctionTransformer,
    "func None (identity, as 'passthrough'), numpy.sqrt, numpy.abs (bit-exact), numpy.log1p, "
    "numpy.log, numpy.exp (C library: may differ from numpy's AVX-512 code by one ulp); "
    "validate; no kw_args",
)
def convert_function_transformer(
    est: FunctionTransformer, builder: PlanBuilder, cols: Cols
) -> Cols:
    code = _code(est, builder)
    if est.kw_args:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: kw_args={est.kw_args!r} is not supported; valid: None"
        )
    if cols.sparse:
        if est.validate and not est.accept_sparse:
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)} receives a sparse matrix, which scikit-learn refuses "
                "with validate=True and accept_sparse=False"
            )
        if code != 0:
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: a numpy function on a sparse matrix is not supported; "
                "give it dense input"
            )
    if est.validate:
        # check_array: numbers only, no NaN, no infinity
        builder.check(cols, est, allow_nan=False)
    if code == 0:
        return cols
    refuse_float32(builder, est, cols)
    builder.use_as_numbers(cols, est)
    out = builder.derived(cols)
    builder.emit("unary_func", est, builder.idx(cols), builder.idx(out), code)
    return out
