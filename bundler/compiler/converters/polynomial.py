"""PolynomialFeatures: every term of ``powers_``, multiplied in scikit-learn's order.

The columns follow ``powers_``. Each term of degree two or more is one product
of an earlier term and one input, associated as scikit-learn does:

- dense input: ``transform`` multiplies a block of degree ``d - 1`` terms by one
  input column, so ``x_a * x_b * x_c`` (a <= b <= c) is ``(x_c * x_b) * x_a``:
  the term without its first factor, times that factor;
- sparse input: the CSR expansion computes ``(x_a * x_b) * x_c`` and the CSC
  path (degree 4 and more) ``((x_a * x_b) * x_c) * ...``: the term without its
  last factor, times that factor; and a term with a zero factor is never
  computed (it stays an implicit 0, even where the other factors overflow).

One ``product`` call per degree computes all terms of that degree.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import PolynomialFeatures, SplineTransformer

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.scalers import refuse_float32
from bundler.errors import UnsupportedEstimatorError

Term = tuple[int, ...]  # sorted input indices, one per factor


@register_converter(
    PolynomialFeatures,
    "degree (int or (min, max)), interaction_only, include_bias; dense and sparse input",
)
def convert_polynomial_features(est: PolynomialFeatures, builder: PlanBuilder, cols: Cols) -> Cols:
    refuse_float32(builder, est, cols)
    builder.check(cols, est, allow_nan=False)
    terms: list[Term] = [tuple(np.repeat(np.arange(len(p)), p).tolist()) for p in est.powers_]
    names = [builder.name(c) for c in cols.idx]

    def split(term: Term) -> tuple[Term, int]:
        """(the earlier term, the input it is multiplied by)."""
        return (term[:-1], term[-1]) if cols.sparse else (term[1:], term[0])

    # every term needed, including shorter ones only used on the way
    needed: set[Term] = set()
    for term in terms:
        while len(term) >= 2 and term not in needed:
            needed.add(term)
            term = split(term)[0]
    where: dict[Term, int] = {(j,): c for j, c in enumerate(cols.idx)}
    if () in terms:
        bias = builder.new_cols(["1"])
        builder.emit("constant", est, builder.idx(bias), builder.array([1.0], np.float64))
        where[()] = bias.idx[0]
    for degree in range(2, max((len(t) for t in needed), default=1) + 1):
        batch = sorted(t for t in needed if len(t) == degree)
        src = sorted({where[split(t)[0]] for t in batch} | set(cols.idx))
        pos = {c: i for i, c in enumerate(src)}
        out = builder.new_cols([_term_name(t, names) for t in batch])
        builder.emit(
            "product",
            est,
            builder.idx(Cols(tuple(src))),
            builder.idx(out),
            builder.array([pos[where[split(t)[0]]] for t in batch], np.int64),
            builder.array([pos[cols.idx[split(t)[1]]] for t in batch], np.int64),
            int(cols.sparse),
        )
        where.update(zip(batch, out.idx, strict=True))
    return Cols(tuple(where[t] for t in terms), cols.sparse)


def _term_name(term: Term, names: list[str]) -> str:
    parts = []
    for j in sorted(set(term)):
        e = term.count(j)
        parts.append(names[j] + (f"^{e}" if e > 1 else ""))
    return " ".join(parts)


_EXTRAPOLATION = {"continue": 0, "error": 1, "constant": 2}


@register_converter(
    SplineTransformer,
    "degree, n_knots, knots (uniform, quantile, array), include_bias, handle_missing; "
    "extrapolation continue, error, constant (periodic and linear refused); dense output",
)
def convert_spline_transformer(est: SplineTransformer, builder: PlanBuilder, cols: Cols) -> Cols:
    """scipy's B-spline basis per feature (``spline_basis``), one op per feature.

    ``transform`` calls ``BSpline(t, eye(n), k)(x)`` per column; the kernel repeats
    scipy's interval search and Cox-de Boor recurrence, so the values are the same
    bits. ``constant`` extrapolation writes ``spl(t[k])`` / ``spl(t[n])`` (computed here
    by scipy itself) into the boundary columns. Without ``include_bias`` the last
    column of each feature's block is left out, as scikit-learn does.
    """
    refuse_float32(builder, est, cols)
    if cols.sparse or est.sparse_output or est.extrapolation not in _EXTRAPOLATION:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: extrapolation={est.extrapolation!r}, "
            f"sparse_output={est.sparse_output} on {'sparse' if cols.sparse else 'dense'} "
            "input is not supported; valid: extrapolation 'continue', 'error' or 'constant', "
            "dense input and output"
        )
    zeros = est.handle_missing == "zeros"
    if zeros:
        builder.use_as_numbers(cols, est)  # ensure_all_finite=False: nothing refused
    else:
        builder.check(cols, est, allow_nan=False)
    out = Cols(())
    for f, col in enumerate(cols.idx):
        spl = est.bsplines_[f]
        n_splines = spl.c.shape[1]
        k = int(spl.k)
        t = np.asarray(spl.t, dtype=np.float64)
        f_min = np.asarray(spl(t[k]), dtype=np.float64).reshape(-1)
        f_max = np.asarray(spl(t[-k - 1]), dtype=np.float64).reshape(-1)
        block = builder.new_cols([f"{builder.name(col)}_sp_{j}" for j in range(n_splines)])
        builder.emit(
            "spline_basis",
            est,
            builder.idx(Cols((col,))),
            builder.idx(block),
            builder.array(t, np.float64),
            k,
            _EXTRAPOLATION[est.extrapolation],
            builder.array(f_min, np.float64),
            builder.array(f_max, np.float64),
            int(zeros),
            message="X contains values beyond the limits of the knots",
        )
        out = out + (block if est.include_bias else block.take(range(n_splines - 1)))
    return out
