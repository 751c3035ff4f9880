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
from app.plan_checks import check_op
from app.program import ENTRY, LABEL_KERNELS, parse_signature

FORMAT = "mlbundle.plan"
#: (major, minor). A reader accepts any minor of its own major.
FORMAT_VERSION = (2, 0)
PLAN_FILE = "plan.json"
ARRAYS_FILE = "arrays.npz"

_DTYPES = {"f8": np.float64, "i8": np.int64, "i4": np.int32, "u1": np.uint8}


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
    label_rule: str  # see LABEL_RULES
    extras: tuple[Extra, ...] = ()  # further scores scikit-learn exposes (decision_function...)


#: How a label is read from the decision columns: first maximum (numpy's rule),
#: binary "> 0" (linear classifiers), "not < 0" (outlier detectors), or the value itself.
LABEL_RULES = ("argmax", "positive", "nonnegative", "value")


@dataclass(frozen=True)
class Extra:
    """A further output, e.g. ``decision_function``: one column, or one per label."""

    name: str
    cols: tuple[int, ...]
    labels: tuple[str, ...] = ()


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
    """(dtype code, is_array) per argument after ``ws`` of an ``EXPORTS`` signature."""
    return [(code, ndim > 0) for code, ndim in parse_signature(signature)[1:]]


_SIGNATURES = {name: _signature_dtypes(sig) for name, sig in EXPORTS.items()}
_ARG_NAMES = {
    name: getattr(kernels, name).__code__.co_varnames[
        1 : getattr(kernels, name).__code__.co_argcount
    ]
    for name in EXPORTS
}


# run by the scorer, never listed as a plan's ops: the label rules, and the packed-plan entry
_OUTPUT_KERNELS = frozenset({*LABEL_KERNELS, ENTRY})


def _check_bounds(kernel: str, args: list[Any], width: int, where: str) -> None:
    """Kernels do no bounds checks (they are compiled for speed), so the reader does.

    A corrupted or hand-edited plan must fail here with a message, never read or
    write outside the workspace or loop forever in a tree.
    """
    named = dict(zip(_ARG_NAMES[kernel], args, strict=True))
    problem = check_op(kernel, named, width)
    if problem:
        raise PlanError(f"{where}: {problem}")


def load_plan(source: str | os.PathLike[str] | Traversable) -> Plan:
    """Read a plan from a folder or an importlib.resources location."""
    if isinstance(source, (str, os.PathLike)):
        source = Path(source)
    try:
        header = source.joinpath(PLAN_FILE).read_bytes()
        raw = source.joinpath(ARRAYS_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise PlanError(f"{source}: not a scoring plan ({exc.filename or exc} is missing)") from exc
    except OSError as exc:
        raise PlanError(f"{source}: unreadable: {exc}") from exc
    return plan_from_bytes(header, raw, where=str(source))


def plan_from_bytes(header: bytes, raw: bytes, where: str) -> Plan:
    """Parse the two plan files' contents (already read, and possibly hash-checked)."""
    try:
        parsed = json.loads(header)
    except ValueError as exc:
        raise PlanError(f"{where}/{PLAN_FILE}: not valid JSON: {exc}") from exc
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError) as exc:
        # e.g. an object array or a pickle: never unpickled, refused
        raise PlanError(f"{where}/{ARRAYS_FILE}: not a plain array archive ({exc})") from exc
    return parse_plan(parsed, arrays, where=where)


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
                if isinstance(value, dict):
                    if value.get("array") not in arrays:
                        raise PlanError(
                            f"{where}: op {n} ({kernel}) names array {value.get('array')!r}, "
                            f"which is not in {ARRAYS_FILE}"
                        )
                    data = arrays[value["array"]]
                else:
                    data = np.asarray(value)
                if data.dtype != dtype and not np.can_cast(data.dtype, dtype, "same_kind"):
                    raise PlanError(
                        f"{where}: op {n} ({kernel}) argument of dtype {data.dtype}, "
                        f"expected {np.dtype(dtype)}"
                    )
                cast = np.require(data.astype(dtype, copy=False), requirements=["C", "W"])
                if cast.dtype != data.dtype and not np.array_equal(cast, data, equal_nan=True):
                    raise PlanError(
                        f"{where}: op {n} ({kernel}) argument values do not fit {np.dtype(dtype)}"
                    )
                args.append(cast)
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
        extras=tuple(
            Extra(name=e["name"], cols=tuple(e["cols"]), labels=tuple(e.get("labels", ())))
            for e in out.get("extras", ())
        ),
    )
    if output.label_rule not in LABEL_RULES:
        raise PlanError(f"{where}: unknown label rule {output.label_rule!r}")
    if output.task not in ("classification", "regression"):
        raise PlanError(f"{where}: unknown task {output.task!r}")
    if not output.decision:
        raise PlanError(f"{where}: output.decision names no column")
    if output.label_rule != "value" and not output.classes:
        raise PlanError(f"{where}: a {output.label_rule!r} label rule needs classes")
    if output.label_rule in ("positive", "nonnegative") and len(output.classes) != 2:
        raise PlanError(f"{where}: a {output.label_rule!r} label rule needs two classes")
    extra_cols = tuple(c for e in output.extras for c in e.cols)
    for e in output.extras:
        if len(e.cols) > 1 and len(e.labels) != len(e.cols):
            raise PlanError(f"{where}: output {e.name!r} needs one label per column")
    for col in output.proba + output.decision + extra_cols:
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
