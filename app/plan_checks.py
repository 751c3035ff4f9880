"""Structural checks of each kernel call in a plan, one function per kernel.

The kernels are compiled without bounds checks, so everything they index must
be proven in range here, when the plan is read: column indices inside the
workspace, array lengths that agree, tree children that always move forward.
Each check returns a problem description, or None when the call is sound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Args = dict[str, Any]
Check = Callable[[Args, int], str | None]

#: Arguments that hold workspace column indices, whatever the kernel.
COLUMN_ARGS = frozenset({"cols", "src", "dst"})


def _same_length(a: Args, *names: str) -> str | None:
    sizes = {n: a[n].shape for n in names}
    if len(set(sizes.values())) != 1:
        return "argument lengths differ: " + ", ".join(f"{n} {s}" for n, s in sizes.items())
    return None


def _check_values(a: Args, width: int) -> str | None:
    return None if a["cols"].size else "no columns to check"


def _impute(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst", "fill")


def _scale(a: Args, width: int) -> str | None:
    return _same_length(a, "src", "dst", "offset", "divisor")


def _onehot(a: Args, width: int) -> str | None:
    start, cdst = a["cat_start"], a["cat_dst"]
    if (
        start.size != a["src"].size + 1
        or start[0] != 0
        or np.any(np.diff(start) < 0)
        or start[-1] != a["cat_value"].size
        or cdst.size != a["cat_value"].size
        or (cdst.size and (cdst.min() < -1 or cdst.max() >= width))
    ):
        return "inconsistent category tables"
    return None


def _linear(a: Args, width: int) -> str | None:
    if a["coef"].shape != (a["dst"].size, a["src"].size):
        return f"coef shape {a['coef'].shape} does not match {a['dst'].size}x{a['src'].size}"
    return _same_length(a, "dst", "intercept")


def check_tree_nodes(a: Args, n_out: int) -> str | None:
    """Node tables shared by tree kernels: forward-only children, features within src."""
    n_nodes = a["threshold"].size
    left, right, feature = a["left"], a["right"], a["feature"]
    if not (left.size == right.size == feature.size == n_nodes):
        return "node arrays differ in length"
    if a["value"].shape != (n_nodes, n_out):
        return "leaf values do not match nodes and outputs"
    roots = a["roots"]
    if roots.size == 0 or roots.min() < 0 or roots.max() >= n_nodes:
        return "tree roots out of range"
    internal = left >= 0
    ids = np.arange(n_nodes)
    # Children always come after their parent, so every walk ends at a leaf.
    if (
        np.any(left[internal] <= ids[internal])
        or np.any(right[internal] <= ids[internal])
        or np.any(left[internal] >= n_nodes)
        or np.any(right[internal] >= n_nodes)
    ):
        return "tree children out of order or out of range"
    if np.any(feature[internal] < 0) or np.any(feature[internal] >= a["src"].size):
        return "tree feature index out of range"
    return None


def _forest(a: Args, width: int) -> str | None:
    if a["missing_left"].size != a["threshold"].size:
        return "node arrays differ in length"
    if not a["divisor"] > 0:
        return "divisor must be positive"
    return check_tree_nodes(a, a["dst"].size)


def _expit_pair(a: Args, width: int) -> str | None:
    if a["src"].size != 1 or a["dst"].size != 2:
        return "expects one source and two destination columns"
    return None


def _softmax(a: Args, width: int) -> str | None:
    if a["src"].size == 0:
        return "no source columns"
    return _same_length(a, "src", "dst")


#: Kernel name -> its check. Every kernel a plan may call must have one (a test enforces it).
CHECKS: dict[str, Check] = {
    "check_values": _check_values,
    "impute": _impute,
    "scale": _scale,
    "onehot": _onehot,
    "linear": _linear,
    "forest": _forest,
    "expit_pair": _expit_pair,
    "softmax": _softmax,
}


def check_op(kernel: str, args: Args, width: int) -> str | None:
    """Generic column-range checks, then the kernel's own."""
    for name, value in args.items():
        if name in COLUMN_ARGS and value.size and (value.min() < 0 or value.max() >= width):
            return f"column index out of range in {name}"
    check = CHECKS.get(kernel)
    if check is None:
        return f"kernel {kernel!r} has no structural check; refusing to run it"
    return check(args, width)
