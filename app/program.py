"""A plan packed for one compiled call per batch (``run_program`` in ``app.kernels``).

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

``app/kernels/program.py`` is generated from the kernels' signatures by
``kernel_source()`` below; ``python -m app.program`` rewrites it, and a test
keeps the two in step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Kernels that write the label (their last argument) rather than workspace columns.
LABEL_KERNELS = ("argmax", "positive")
ENTRY = "run_program"

#: Buffer per dtype code, in ``run_program``'s argument order.
BUFFERS = ("f8", "i8", "i4", "u1")
_BUFFER_ARG = {"f8": "fb", "i8": "ib", "i4": "qb", "u1": "ub"}
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
    from app.kernels import EXPORTS

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


_HEADER = '''"""One compiled call per batch: every op of a packed plan, in order.

GENERATED by ``python -m app.program`` from the kernels' signatures; do not edit.
``app/program.py`` packs a plan into the code and buffers read here. The callees
are the family modules' kernels; the backends compile them into this function
(``CALLEES``), so the kernels run exactly as when called one by one.
"""

from __future__ import annotations

import numpy as np

from app.kernels._types import F2, I1, U1, sig
{imports}


def _v(buf, code, p):
    """The vector at slots ``offset, length``."""
    return buf[code[p] : code[p] + code[p + 1]]


def _m(buf, code, p):
    """The C-ordered matrix at slots ``offset, rows, cols``."""
    return buf[code[p] : code[p] + code[p + 1] * code[p + 2]].reshape((code[p + 1], code[p + 2]))


def _copy_rows(ws, x):
    """``x`` into the first columns of ``ws`` (nothing when ``x`` has no columns)."""
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            ws[i, j] = x[i, j]


def run_program(ws, x, data, label):
    """Copy ``x`` (when it has columns) into ``ws``'s first columns, then run ``code[0]``
    ops on ``ws``; -1, or ``op + code[0] * status`` for a failing op."""
    head = data[:80].view(np.int64)  # (byte offset, length) of code, f8, i8, i4, u1
    code = data[head[0] : head[0] + 8 * head[1]].view(np.int64)
    fb = data[head[2] : head[2] + 8 * head[3]].view(np.float64)
    ib = data[head[4] : head[4] + 8 * head[5]].view(np.int64)
    qb = data[head[6] : head[6] + 4 * head[7]].view(np.int32)
    ub = data[head[8] : head[8] + head[9]]
    _copy_rows(ws, x)
    n_ops = code[0]
    p = 1
    for op in range(n_ops):
        kid = code[p]
        p += 1
        s = -1
'''

_FOOTER = """        if s >= 0:
            return op + n_ops * s
    return -1


#: The functions ``run_program`` calls. The aot backend compiles them all into it; the
#: jit backend runs ``run_program`` itself as Python, compiling ``COMPILED_HELPERS`` and,
#: on first use, each kernel a plan calls (so a plan compiles only its own kernels).
HELPERS = ("_v", "_m", "_copy_rows")
COMPILED_HELPERS = ("_copy_rows",)
KERNELS = (
{callees}
)
CALLEES = HELPERS + KERNELS

#: Kernel name -> Numba signature, for the entry point of this module.
EXPORTS: dict[str, str] = {{
    "run_program": sig(F2, F2, U1, I1, ret="i8"),
}}
"""


def kernel_source() -> str:
    """The text of ``app/kernels/program.py`` for the kernels this runtime has."""
    from app import kernels

    table = kernel_table()
    by_module: dict[str, list[str]] = {}
    for name, _ in table:
        by_module.setdefault(kernels.OWNER[name].__name__, []).append(name)
    imports = "\n".join(
        f"from {module} import {', '.join(sorted(names))}"
        if len(", ".join(names)) < 60
        else f"from {module} import (\n" + "".join(f"    {n},\n" for n in sorted(names)) + ")"
        for module, names in sorted(by_module.items())
    )
    returns = {name: sig.split("(")[0] != "void" for name, sig in kernels.EXPORTS.items()}
    lines = []
    for kid, (name, types) in enumerate(table):
        args = ["ws"]
        slot = 0
        label = name in LABEL_KERNELS
        for dtype, ndim in types[:-1] if label else types:
            at = f"p + {slot}" if slot else "p"
            if ndim == 0 and dtype == "i8":
                args.append(f"code[{at}]")
                slot += 1
            elif ndim == 0:
                args.append(f"{_BUFFER_ARG[dtype]}[code[{at}]]")
                slot += 1
            else:
                args.append(f"_{'v' if ndim == 1 else 'm'}({_BUFFER_ARG[dtype]}, code, {at})")
                slot += 1 + ndim
        if label:
            args.append("label")
        lead = f"            {'s = ' if returns[name] else ''}{name}("
        keyword = "if" if kid == 0 else "elif"
        lines.append(f"        {keyword} kid == {kid}:  # {name}")
        if len(lead) + len(", ".join(args)) + 1 <= 100:
            lines.append(f"{lead}{', '.join(args)})")
        else:  # one argument per line, as ruff formats it
            lines.append(lead)
            lines.extend(f"                {a}," for a in args)
            lines.append("            )")
        lines.append(f"            p += {slot}")
    body = "\n".join(lines) + "\n"
    callees = "".join(f'    "{name}",\n' for name, _ in table).rstrip("\n")
    return _HEADER.format(imports=imports) + body + _FOOTER.format(callees=callees)


def source_path() -> Path:
    return Path(__file__).with_name("kernels") / "program.py"


if __name__ == "__main__":
    source_path().write_text(kernel_source(), encoding="utf-8")
