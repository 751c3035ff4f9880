"""A plan packed for one compiled call per batch (``run_program`` in ``mlbundle_runtime.kernels``).

Calling a compiled kernel from Python costs about half a microsecond, plus a
tenth per array argument; a forest's single prediction used to spend more on
three such calls than on walking its hundred trees. So the scorer packs a plan
once, when it is loaded: every op's arrays go into one buffer per dtype, and an
``int64`` *code* says, op by op, which kernel runs and where its arguments lie.
``run_program`` then runs every op and the label rule in one call, with the
same kernels in the same order, so the arithmetic is unchanged.

The code is ``[n_ops, op, op, ...]``; an op is ``[kernel id, argument slots...]``:

- a vector: ``offset, length`` in the buffer of its dtype;
- a matrix: ``offset, rows, cols`` (C order);
- an ``i8`` scalar: its value; an ``f8`` scalar: its offset in the float buffer;
- the workspace (first argument of every kernel) and the label output of
  ``argmax`` / ``positive`` are ``run_program``'s own arguments: no slot.

``run_program`` also copies its ``x`` argument into the workspace's first
columns, when it has any: a compiled copy of a single row costs a fraction of
numpy's slice assignment.

The code and the buffers travel as one byte array (``Program.data``): a header
of ``(byte offset, length)`` pairs for the code and each buffer, then the
sections, each on an 8-byte boundary. One array argument instead of six saves
most of a microsecond per call.

A failing op makes ``run_program`` return ``op + n_ops * status`` (see
``Program.failure``); success returns -1.

``kernels/program.py`` is generated from the kernels' signatures on the build side
(``bundler.backends.program_gen``: ``python -m bundler.backends.program_gen`` rewrites it,
and a test keeps the two in step), so the generator does not ship in frozen apps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: Kernels that write the label (their last argument) rather than workspace columns.
LABEL_KERNELS = ("argmax", "positive")
ENTRY = "run_program"

#: Buffer per dtype code, in ``run_program``'s argument order.
BUFFERS = ("f8", "i8", "i4", "u1")
_DTYPES = {"f8": np.float64, "i8": np.int64, "i4": np.int32, "u1": np.uint8}


def parse_signature(signature: str) -> list[tuple[str, int]]:
    """``(dtype code, ndim)`` per argument of a Numba signature (ndim 0: a scalar)."""
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [(p.split("[")[0], p.count(",") + 1 if "[" in p else 0) for p in parts]


@functools.cache
def kernel_table() -> tuple[tuple[str, list[tuple[str, int]]], ...]:
    """Every kernel ``run_program`` can call, with its arguments after the workspace.

    The position in this list is the kernel's id in the code: kernels are taken
    in ``EXPORTS`` order, which is fixed by ``MODULES``.
    """
    from mlbundle_runtime.kernels import EXPORTS

    return tuple((name, parse_signature(sig)[1:]) for name, sig in EXPORTS.items() if name != ENTRY)


@functools.cache
def _kernel_ids() -> dict[str, tuple[int, list[tuple[str, int]]]]:
    """Kernel name -> (id, argument types): parsed once per process, not per Scorer."""
    return {name: (i, args) for i, (name, args) in enumerate(kernel_table())}


@dataclass(frozen=True)
class Program:
    """A packed plan, one byte array: ``run_program(ws, x, data, label)``."""

    data: np.ndarray
    n_ops: int

    def failure(self, status: int) -> tuple[int, int]:
        """``(op index, the kernel's own status)`` from ``run_program``'s result."""
        return status % self.n_ops, status // self.n_ops


def pack(ops: list[tuple[str, tuple[object, ...]]]) -> Program:
    """Pack ``(kernel, args)`` pairs (args after the workspace, as the plan holds them)."""
    ids = _kernel_ids()
    code: list[int] = [len(ops)]
    parts: dict[str, list[np.ndarray]] = {b: [] for b in BUFFERS}
    sizes = dict.fromkeys(BUFFERS, 0)

    def put(dtype: str, data: np.ndarray) -> int:
        flat = np.ascontiguousarray(data, dtype=_DTYPES[dtype]).ravel()
        at = sizes[dtype]
        parts[dtype].append(flat)
        sizes[dtype] += flat.size
        return at

    for name, args in ops:
        kid, types = ids[name]
        code.append(kid)
        if name in LABEL_KERNELS:
            types = types[:-1]  # the label output is run_program's argument
        if len(args) != len(types):
            raise ValueError(f"{name}: {len(args)} arguments, expected {len(types)}")
        for value, (dtype, ndim) in zip(args, types, strict=True):
            if ndim == 0 and dtype == "i8":
                code.append(int(value))  # type: ignore[call-overload]
            elif ndim == 0:
                code.append(put(dtype, np.array([value])))
            else:
                data = np.asarray(value)
                if data.ndim != ndim:
                    raise ValueError(f"{name}: a {data.ndim}-d argument where {ndim}-d is due")
                code.append(put(dtype, data))
                code.extend(data.shape)
    sections = [np.array(code, dtype=np.int64)] + [
        np.concatenate(parts[b]) if parts[b] else np.empty(0, dtype=_DTYPES[b]) for b in BUFFERS
    ]
    # the header: (byte offset, length) per section; sections start on 8-byte boundaries
    head = np.zeros(2 * len(sections), dtype=np.int64)
    at = head.nbytes
    for i, section in enumerate(sections):
        head[2 * i : 2 * i + 2] = at, section.size
        at += -(-section.nbytes // 8) * 8
    data = np.zeros(at, dtype=np.uint8)
    data[: head.nbytes] = head.view(np.uint8)
    for i, section in enumerate(sections):
        data[head[2 * i] : head[2 * i] + section.nbytes] = section.view(np.uint8)
    return Program(data, len(ops))
