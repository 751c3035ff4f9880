"""Numba type strings for the kernels' signatures (``EXPORTS`` in each family module)."""

F2 = "f8[:, ::1]"  # the workspace, and any C-ordered float64 matrix
F1 = "f8[::1]"  # float64 vector
I1 = "i8[::1]"  # int64 vector: column indices, node indices, offsets
U1 = "u1[::1]"  # uint8 flags


def sig(*args: str, ret: str = "void") -> str:
    """``ret(arg, ...)``: one kernel's Numba signature."""
    return f"{ret}({', '.join(args)})"


I4_2 = "i4[:, ::1]"  # C-ordered int32 matrix: compact tree tables
