"""The scoring plan: a pickle-free, versioned description of a compiled model.

A plan is two files: ``plan.json`` (header, input schema, the list of kernel
calls, how to read the outputs) and ``arrays.npz`` (every numeric array the
kernel calls use, read with ``allow_pickle=False``). The format is specified in
``docs/plan-format.md``; this module is its only reader, and it refuses a major
version it does not know rather than guess.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from app import kernels
from app.kernels import EXPORTS

FORMAT = "mlbundle.plan"
#: (major, minor). A reader accepts any minor of its own major.
FORMAT_VERSION = (1, 0)
PLAN_FILE = "plan.json"
ARRAYS_FILE = "arrays.npz"

_DTYPES = {"f8": np.float64, "i8": np.int64, "u1": np.uint8}


class PlanError(ValueError):
    """The plan is missing, malformed, or of a format version this runtime cannot read."""


@dataclass(frozen=True)
class InputSpec:
    """One input field: numeric, or categorical with its known categories."""

    name: str
    kind: str  # "numeric" | "categorical"
    categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class Op:
    """One kernel call: ``kernel(workspace, *args)``; ``origin`` names the estimator step."""

    kernel: str
    args: tuple[Any, ...]
    origin: str
    message: str  # what a non-negative kernel status means, for error reports


@dataclass(frozen=True)
class Output:
    """How to read results from the workspace."""

    task: str  # "classification" | "regression"
    classes: tuple[Any, ...]
    proba: tuple[int, ...]  # workspace columns of class probabilities (may be empty)
    decision: tuple[int, ...]  # columns the label rule reads
    label_rule: str  # "argmax" | "positive" (binary: decision > 0) | "value"


@dataclass(frozen=True)
class Plan:
    """A loaded plan: typed, with arrays already in the dtypes the kernels take."""

    version: tuple[int, int]
    inputs: tuple[InputSpec, ...]
    width: int
    columns: tuple[str, ...]
    ops: tuple[Op, ...]
    output: Output
    meta: dict[str, Any]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)


def _signature_dtypes(signature: str) -> list[tuple[str, bool]]:
    """Parse ``EXPORTS`` signatures into (dtype code, is_array) per argument after ``ws``."""
    inner = signature[signature.index("(") + 1 : signature.rindex(")")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return [(p.split("[")[0], "[" in p) for p in parts[1:]]


_SIGNATURES = {name: _signature_dtypes(sig) for name, sig in EXPORTS.items()}
_ARG_NAMES = {
    name: getattr(kernels, name).__code__.co_varnames[
        1 : getattr(kernels, name).__code__.co_argcount
    ]
    for name in EXPORTS
}


_OUTPUT_KERNELS = frozenset({"argmax", "positive"})  # run by the scorer, not listed as ops
_COLUMN_ARGS = frozenset({"cols", "src", "dst"})


def _check_bounds(kernel: str, args: list[Any], width: int, where: str) -> None:
    """Kernels do no bounds checks (they are compiled for speed), so the reader does.

    A corrupted or hand-edited plan must fail here with a message, never read or
    write outside the workspace or loop forever in a tree.
    """
    names = _ARG_NAMES[kernel]
    named = dict(zip(names, args, strict=True))
    for name, value in named.items():
        if name in _COLUMN_ARGS and value.size and (value.min() < 0 or value.max() >= width):
            raise PlanError(f"{where}: column index out of range in {name}")
    if kernel in ("check_values", "impute", "scale", "linear", "softmax", "argmax", "positive"):
        src = named.get("src", named.get("cols"))
        if src is None or src.size == 0:
            raise PlanError(f"{where}: no source columns")
    if kernel in ("impute", "scale") and not (
        named["src"].shape == named["dst"].shape
        and all(named[k].shape == named["src"].shape for k in names[3:])
    ):
        raise PlanError(f"{where}: argument lengths differ")
    if kernel == "linear" and named["coef"].shape != (named["dst"].size, named["src"].size):
        raise PlanError(f"{where}: coef shape {named['coef'].shape} does not match columns")
    if kernel == "linear" and named["intercept"].shape != named["dst"].shape:
        raise PlanError(f"{where}: intercept shape does not match columns")
    if kernel == "onehot":
        start, cdst = named["cat_start"], named["cat_dst"]
        if (
            start.size != named["src"].size + 1
            or start[0] != 0
            or np.any(np.diff(start) < 0)
            or start[-1] != named["cat_value"].size
            or cdst.size != named["cat_value"].size
            or (cdst.size and (cdst.min() < -1 or cdst.max() >= width))
        ):
            raise PlanError(f"{where}: inconsistent category tables")
    if kernel == "forest":
        _check_forest(named, where)
    if kernel in ("expit_pair",) and (named["src"].size != 1 or named["dst"].size != 2):
        raise PlanError(f"{where}: expects one source and two destination columns")
    if kernel == "softmax" and named["src"].shape != named["dst"].shape:
        raise PlanError(f"{where}: argument lengths differ")


def _check_forest(a: dict[str, Any], where: str) -> None:
    n_nodes = a["threshold"].size
    left, right, feature = a["left"], a["right"], a["feature"]
    if not (left.size == right.size == feature.size == a["missing_left"].size == n_nodes):
        raise PlanError(f"{where}: node arrays differ in length")
    if a["value"].shape != (n_nodes, a["dst"].size):
        raise PlanError(f"{where}: leaf values do not match nodes and outputs")
    roots = a["roots"]
    if roots.size == 0 or roots.min() < 0 or roots.max() >= n_nodes:
        raise PlanError(f"{where}: tree roots out of range")
    internal = left >= 0
    ids = np.arange(n_nodes)
    # Children always come after their parent, so every walk ends at a leaf.
    if (
        np.any(left[internal] <= ids[internal])
        or np.any(right[internal] <= ids[internal])
        or np.any(left[internal] >= n_nodes)
        or np.any(right[internal] >= n_nodes)
    ):
        raise PlanError(f"{where}: tree children out of order or out of range")
    if np.any(feature[internal] < 0) or np.any(feature[internal] >= a["src"].size):
        raise PlanError(f"{where}: tree feature index out of range")
    if not a["divisor"] > 0:
        raise PlanError(f"{where}: divisor must be positive")


def load_plan(source: str | os.PathLike[str] | Traversable) -> Plan:
    """Read a plan from a folder or an importlib.resources location."""
    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
    try:
        header = json.loads(source.joinpath(PLAN_FILE).read_bytes())
        raw = source.joinpath(ARRAYS_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise PlanError(f"{source}: not a scoring plan ({exc.filename or exc} is missing)") from exc
    except (OSError, ValueError) as exc:
        raise PlanError(f"{source}/{PLAN_FILE}: unreadable: {exc}") from exc
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return parse_plan(header, arrays, where=str(source))


def parse_plan(header: dict[str, Any], arrays: dict[str, np.ndarray], where: str = "plan") -> Plan:
    """Validate a plan header against its arrays and the kernels this runtime has."""
    if header.get("format") != FORMAT:
        raise PlanError(f"{where}: not a {FORMAT} file (format={header.get('format')!r})")
    try:
        major, minor = (int(x) for x in str(header["format_version"]).split("."))
    except (KeyError, ValueError) as exc:
        raise PlanError(f"{where}: format_version missing or not 'MAJOR.MINOR'") from exc
    if major != FORMAT_VERSION[0]:
        raise PlanError(
            f"{where}: plan format {major}.{minor} is not supported by this runtime "
            f"(reads {FORMAT_VERSION[0]}.x); rebuild the bundle with a matching tool"
        )
    width = int(header["width"])
    ops = []
    for n, raw_op in enumerate(header["ops"]):
        kernel = raw_op["kernel"]
        if kernel not in _SIGNATURES or kernel in _OUTPUT_KERNELS:
            raise PlanError(f"{where}: op {n} uses kernel {kernel!r}, unknown to this runtime")
        sig = _SIGNATURES[kernel]
        if len(raw_op["args"]) != len(sig):
            raise PlanError(
                f"{where}: op {n} ({kernel}) has {len(raw_op['args'])} arguments, "
                f"expected {len(sig)}"
            )
        args = []
        for value, (code, is_array) in zip(raw_op["args"], sig, strict=True):
            dtype = _DTYPES[code]
            if is_array:
                data = arrays[value["array"]] if isinstance(value, dict) else np.asarray(value)
                if data.dtype != dtype and not np.can_cast(data.dtype, dtype, "same_kind"):
                    raise PlanError(
                        f"{where}: op {n} ({kernel}) argument of dtype {data.dtype}, "
                        f"expected {np.dtype(dtype)}"
                    )
                args.append(np.ascontiguousarray(data, dtype=dtype))
            else:
                args.append(dtype(value))
        _check_bounds(kernel, args, width, f"{where}: op {n} ({kernel})")
        ops.append(
            Op(
                kernel=kernel,
                args=tuple(args),
                origin=raw_op.get("origin", ""),
                message=raw_op.get("message", ""),
            )
        )
    out = header["output"]
    output = Output(
        task=out["task"],
        classes=tuple(out.get("classes", ())),
        proba=tuple(out.get("proba", ())),
        decision=tuple(out.get("decision", ())),
        label_rule=out["label_rule"],
    )
    for col in output.proba + output.decision:
        if not 0 <= col < width:
            raise PlanError(f"{where}: output column {col} outside the workspace")
    if (
        output.task == "classification"
        and output.proba
        and len(output.proba) != len(output.classes)
    ):
        raise PlanError(
            f"{where}: {len(output.proba)} probability columns for {len(output.classes)} classes"
        )
    inputs = tuple(
        InputSpec(name=i["name"], kind=i["kind"], categories=tuple(i.get("categories", ())))
        for i in header["inputs"]
    )
    columns = tuple(header.get("columns", ()))
    if len(columns) != width:
        raise PlanError(f"{where}: {len(columns)} column names for a workspace of width {width}")
    return Plan(
        version=(major, minor),
        inputs=inputs,
        width=width,
        columns=columns,
        ops=tuple(ops),
        output=output,
        meta=dict(header.get("meta", {})),
    )
