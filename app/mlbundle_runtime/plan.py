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
import math
import numbers
import os
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import IO, Any

import numpy as np

from mlbundle_runtime import kernels
from mlbundle_runtime.errors import BundleError
from mlbundle_runtime.kernels import EXPORTS
from mlbundle_runtime.plan_checks import check_op, check_text
from mlbundle_runtime.program import ENTRY, LABEL_KERNELS, parse_signature
from mlbundle_runtime.text import TextFeature

FORMAT = "mlbundle.plan"
#: (major, minor). A reader accepts any minor of its own major.
FORMAT_VERSION = (2, 3)
PLAN_FILE = "plan.json"
ARRAYS_FILE = "arrays.npz"

_DTYPES = {"f8": np.float64, "i8": np.int64, "i4": np.int32, "u1": np.uint8}


class PlanError(BundleError):
    """The plan is missing, malformed, or of a format version this runtime cannot read."""


@dataclass(frozen=True)
class InputSpec:
    """One input field: numeric, categorical with its known categories, or text (a
    document that the plan's ``text`` features turn into term columns)."""

    name: str
    kind: str  # "numeric" | "categorical" | "text"
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
    """How to read results from the workspace.

    A multi-output plan (format 2.3) reads as one ``Output`` whose ``outputs`` hold one
    named ``Output`` per target, in scikit-learn's column order of ``y``; its own task
    is theirs, and it has no classes, columns or label rule of its own. Code that reads
    one output (``proba``, ``decision``) therefore sees none, rather than the first
    target's, and only code that knows ``outputs`` scores such a plan.
    """

    task: str  # "classification" | "regression"
    classes: tuple[Any, ...]
    proba: tuple[int, ...]  # workspace columns of class probabilities (may be empty)
    decision: tuple[int, ...]  # columns the label rule reads
    label_rule: str  # see LABEL_RULES ("" for a multi-output plan's whole)
    extras: tuple[Extra, ...] = ()  # further scores scikit-learn exposes (decision_function...)
    #: the target's name in a multi-output plan (``y0, y1, ...`` unless the spec names them)
    name: str = ""
    #: a multi-output plan's outputs, one per target (empty: a single-output plan)
    outputs: tuple[Output, ...] = ()


#: The columns the app writes after a plan's outputs (``uncertain`` under the spec's
#: threshold, the row's range ``warnings``, its ``error``): no output may take their names.
APP_COLUMNS = ("uncertain", "warnings", "error")

#: How a label is read from the decision columns: first maximum (numpy's rule),
#: binary "> 0" (linear classifiers), "not < 0" (outlier detectors), or the value itself.
LABEL_RULES = ("argmax", "positive", "nonnegative", "value")


@dataclass(frozen=True)
class Extra:
    """A further output, e.g. ``decision_function``: one column, or one per label."""

    name: str
    cols: tuple[int, ...]
    labels: tuple[str, ...] = ()


def extra_columns(extra: Extra) -> list[str]:
    """CSV columns of an extra output: its name, or ``name_<label>`` per column."""
    return [f"{extra.name}_{label}" for label in extra.labels] if extra.labels else [extra.name]


def output_columns(output: Output) -> list[str]:
    """The columns a plan's outputs are written as: ``prediction``, ``proba_<class>`` per
    class when the model has probabilities, then each extra output's columns.

    A multi-output plan writes each output's columns in turn, named after it: a
    regression target ``<name>`` (its value), a classification target
    ``prediction_<name>`` then ``proba_<name>_<class>`` per class.

    The one definition, so that the CSV the app writes, the model record, the gate
    reader (which checks an e2e file against these names) and the docs cannot differ.
    """
    if output.outputs:
        return [c for o in output.outputs for c in target_columns(o)]
    return class_columns(output.classes if output.proba else None, output.extras)


def target_columns(output: Output) -> list[str]:
    """One target's columns in a multi-output plan (see ``output_columns``)."""
    if output.task == "regression":
        return [output.name]
    return [f"prediction_{output.name}"] + [
        f"proba_{output.name}_{c}" for c in (output.classes if output.proba else ())
    ]


def class_columns(classes: Sequence[Any] | None, extras: Sequence[Extra]) -> list[str]:
    """A single-output plan's columns: ``prediction``, ``proba_<class>``, extras."""
    cols = ["prediction"]
    if classes is not None:
        cols += [f"proba_{c}" for c in classes]
    for extra in extras:
        cols += extra_columns(extra)
    return cols


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
    #: How text inputs become workspace columns (format 2.1; empty without text inputs).
    text: tuple[TextFeature, ...] = ()

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)


def _signature_args(signature: str) -> list[tuple[str, int]]:
    """(dtype code, ndim) per argument after ``ws`` of an ``EXPORTS`` signature."""
    return parse_signature(signature)[1:]


_SIGNATURES = {name: _signature_args(sig) for name, sig in EXPORTS.items()}
_ARG_NAMES = {
    name: getattr(kernels, name).__code__.co_varnames[
        1 : getattr(kernels, name).__code__.co_argcount
    ]
    for name in EXPORTS
}


# run by the scorer, never listed as a plan's ops: the label rules, and the packed-plan entry
_OUTPUT_KERNELS = frozenset({*LABEL_KERNELS, ENTRY})


def plan_kernels() -> tuple[str, ...]:
    """The kernels a plan's ops may call, in ``EXPORTS`` order (docs/plan-format.md)."""
    return tuple(name for name in EXPORTS if name not in _OUTPUT_KERNELS)


TASKS = ("classification", "regression")
INPUT_KINDS = ("numeric", "categorical", "text")


def _check_bounds(kernel: str, args: list[Any], width: int, where: str) -> None:
    """Kernels do no bounds checks (they are compiled for speed), so the reader does.

    A corrupted or hand-edited plan must fail here with a message, never read or
    write outside the workspace or loop forever in a tree.
    """
    named = dict(zip(_ARG_NAMES[kernel], args, strict=True))
    problem = check_op(kernel, named, width)
    if problem:
        raise PlanError(f"{where}: {problem}")


# -- the header's structure ----------------------------------------------------------
# Every value of plan.json is checked for its JSON type before it is used, here and
# nowhere else: past these functions the reader (and the kernels' checks in
# app/mlbundle_runtime/plan_checks.py) may index, compare and convert without meeting a surprise.


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_label(value: object) -> bool:
    """A class label as JSON can hold it: text, a number, a boolean, or null (NaN)."""
    return value is None or isinstance(value, (str, bool, np.bool_)) or _is_number(value)


_KINDS: dict[type, tuple[str, Any]] = {
    dict: ("an object", lambda v: isinstance(v, dict)),
    list: ("a list", lambda v: isinstance(v, (list, tuple))),
    str: ("text", lambda v: isinstance(v, str)),
    int: ("an integer", _is_int),
}
_MISSING = object()


def _field(obj: dict[str, Any], key: str, kind: type, where: str, default: Any = _MISSING) -> Any:
    """``obj[key]``, refused unless it is of JSON ``kind`` (or absent with a default)."""
    if key not in obj:
        if default is _MISSING:
            raise PlanError(f"{where}: {key!r} is missing")
        return default
    value = obj[key]
    name, test = _KINDS[kind]
    if not test(value):
        raise PlanError(f"{where}: {key!r} must be {name}, not {type(value).__name__}")
    return value


def _items(obj: dict[str, Any], key: str, test: Any, what: str, where: str) -> tuple[Any, ...]:
    """``obj[key]`` as a tuple, refused unless it is a list whose every item passes ``test``."""
    values = _field(obj, key, list, where, ())
    bad = [v for v in values if not test(v)]
    if bad:
        raise PlanError(f"{where}: {key!r} must hold {what}, not {bad[0]!r}")
    return tuple(values)


def _objects(obj: dict[str, Any], key: str, where: str) -> tuple[dict[str, Any], ...]:
    return _items(obj, key, lambda v: isinstance(v, dict), "objects", where)


def _array_arg(
    value: Any, code: str, ndim: int, arrays: dict[str, np.ndarray], where: str
) -> np.ndarray:
    """An array argument in the dtype and shape the kernel takes, or PlanError."""
    dtype = np.dtype(_DTYPES[code])
    if isinstance(value, dict):
        key = value.get("array")
        if not isinstance(key, str) or key not in arrays:
            raise PlanError(f"{where} names array {key!r}, which is not in {ARRAYS_FILE}")
        data = arrays[key]
    elif isinstance(value, (list, tuple)) and all(_is_number(v) for v in value):
        data = np.asarray(value)  # an inline vector: numbers only, so never ragged
    else:
        raise PlanError(f"{where}: {value!r} is neither {{'array': KEY}} nor a list of numbers")
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
        raise PlanError(f"{where}: an array of {getattr(data, 'dtype', type(data))}, not numbers")
    if data.ndim != ndim:
        raise PlanError(f"{where}: a {data.ndim}-d array where the kernel takes {ndim}-d")
    if data.dtype != dtype and not np.can_cast(data.dtype, dtype, "same_kind"):
        raise PlanError(f"{where}: argument of dtype {data.dtype}, expected {dtype}")
    cast = np.require(data.astype(dtype, copy=False), requirements=["C", "W"])
    if cast.dtype != data.dtype and not np.array_equal(cast, data, equal_nan=dtype.kind == "f"):
        raise PlanError(f"{where}: argument values do not fit {dtype}")
    return cast


_I8 = np.iinfo(np.int64)


def _scalar_arg(value: Any, code: str, where: str) -> Any:
    """A scalar argument: an integer in int64's range for ``i8``, any number for ``f8``."""
    if code == "i8" and _is_int(value) and _I8.min <= value <= _I8.max:
        return np.int64(value)
    if code == "f8" and _is_number(value) and (not _is_int(value) or abs(value) < 2**1023):
        return np.float64(value)
    raise PlanError(f"{where}: {value!r} is not {'an int64' if code == 'i8' else 'a number'}")


def _parse_op(
    n: int, raw_op: dict[str, Any], arrays: dict[str, np.ndarray], width: int, where: str
) -> Op:
    at = f"{where}: op {n}"
    kernel = _field(raw_op, "kernel", str, at)
    if kernel not in _SIGNATURES or kernel in _OUTPUT_KERNELS:
        raise PlanError(f"{at} uses kernel {kernel!r}, unknown to this runtime")
    at = f"{at} ({kernel})"
    raw_args = _field(raw_op, "args", list, at)
    sig = _SIGNATURES[kernel]
    if len(raw_args) != len(sig):
        raise PlanError(f"{at} has {len(raw_args)} arguments, expected {len(sig)}")
    args = []
    for name, value, (code, ndim) in zip(_ARG_NAMES[kernel], raw_args, sig, strict=True):
        here = f"{at} argument {name}"
        args.append(
            _array_arg(value, code, ndim, arrays, here) if ndim else _scalar_arg(value, code, here)
        )
    _check_bounds(kernel, args, width, at)
    return Op(
        kernel=kernel,
        args=tuple(args),
        origin=_field(raw_op, "origin", str, at, ""),
        message=_field(raw_op, "message", str, at, ""),
    )


def _parse_inputs(header: dict[str, Any], width: int, where: str) -> tuple[InputSpec, ...]:
    inputs = []
    for n, raw in enumerate(_objects(header, "inputs", where)):
        at = f"{where}: input {n}"
        kind = _field(raw, "kind", str, at)
        if kind not in INPUT_KINDS:
            raise PlanError(f"{at}: unknown kind {kind!r}; valid: {', '.join(INPUT_KINDS)}")
        categories = _items(raw, "categories", lambda v: isinstance(v, str), "text", at)
        inputs.append(InputSpec(_field(raw, "name", str, at), kind, categories))
    names = [i.name for i in inputs]
    if len(set(names)) != len(names):
        raise PlanError(f"{where}: input names repeat")
    if len(inputs) > width:
        raise PlanError(f"{where}: {len(inputs)} inputs for a workspace of width {width}")
    return tuple(inputs)


def _parse_outputs(
    header: dict[str, Any], inputs: tuple[InputSpec, ...], width: int, where: str
) -> Output:
    """``output`` (one target), or ``outputs`` (format 2.3: one entry per target, each
    an ``output`` with a ``name``) read as one ``Output`` holding them."""
    if "outputs" not in header:
        out = _field(header, "output", dict, where)
        return _parse_output(out, width, f"{where}: output", where)
    if "output" in header:
        raise PlanError(f"{where}: a plan has 'output' (one target) or 'outputs', not both")
    raw = _objects(header, "outputs", where)
    if len(raw) < 2:
        raise PlanError(
            f"{where}: 'outputs' lists {len(raw)} target(s); a multi-output plan has two or "
            "more (one target is written as 'output')"
        )
    outputs = []
    for n, out in enumerate(raw):
        at = f"{where}: outputs[{n}]"
        name = _field(out, "name", str, at)
        if not name.strip() or name != name.strip() or any(c in name for c in ',"\r\n'):
            raise PlanError(
                f"{at}: target name {name!r} must be non-empty text without commas, quotes, "
                "line breaks or surrounding spaces (it names CSV columns)"
            )
        single = _parse_output(out, width, at, at)
        if single.extras:
            raise PlanError(f"{at}: a multi-output plan's targets have no extra outputs")
        outputs.append(replace(single, name=name))
    tasks = {o.task for o in outputs}
    if len(tasks) != 1:
        raise PlanError(f"{where}: the outputs mix tasks ({', '.join(sorted(tasks))}); valid: one")
    whole = Output(tasks.pop(), (), (), (), "", (), "", tuple(outputs))
    columns = output_columns(whole)
    taken = {i.name for i in inputs} | set(APP_COLUMNS)
    clash = sorted({c for c in columns if columns.count(c) > 1 or c in taken})
    if clash:
        raise PlanError(
            f"{where}: output column(s) {', '.join(map(repr, clash))} repeat or share an "
            f"input's name or one of the app's columns ({', '.join(APP_COLUMNS)}); valid: "
            "distinct target names that name neither"
        )
    return whole


def _parse_output(out: dict[str, Any], width: int, at: str, where: str) -> Output:
    extras = []
    for raw in _objects(out, "extras", at):
        extras.append(
            Extra(
                name=_field(raw, "name", str, f"{at} extra"),
                cols=_items(raw, "cols", _is_int, "column indices", f"{at} extra"),
                labels=_items(raw, "labels", lambda v: isinstance(v, str), "text", f"{at} extra"),
            )
        )
    output = Output(
        task=_field(out, "task", str, at),
        classes=_items(out, "classes", _is_label, "labels", at),
        proba=_items(out, "proba", _is_int, "column indices", at),
        decision=_items(out, "decision", _is_int, "column indices", at),
        label_rule=_field(out, "label_rule", str, at),
        extras=tuple(extras),
    )
    _check_output(output, width, where)
    return output


def _check_output(output: Output, width: int, where: str) -> None:
    """Everything the scorer reads from the output must be there, in the right number."""
    rule, classes = output.label_rule, output.classes
    if rule not in LABEL_RULES:
        raise PlanError(f"{where}: unknown label rule {rule!r}")
    if output.task not in TASKS:
        raise PlanError(f"{where}: unknown task {output.task!r}")
    if (output.task == "regression") != (rule == "value"):
        raise PlanError(f"{where}: a {output.task} plan cannot use the {rule!r} label rule")
    if not output.decision:
        raise PlanError(f"{where}: output.decision names no column")
    if output.proba and len(output.proba) != len(classes):
        raise PlanError(
            f"{where}: {len(output.proba)} probability columns for {len(classes)} classes"
        )
    if rule != "argmax" and len(output.decision) != 1:
        raise PlanError(f"{where}: a {rule!r} label rule reads one decision column")
    if rule == "argmax" and len(output.decision) != len(classes):
        raise PlanError(
            f"{where}: {len(output.decision)} decision columns for {len(classes)} classes"
        )
    if rule in ("positive", "nonnegative") and len(classes) != 2:
        raise PlanError(f"{where}: a {rule!r} label rule needs two classes")
    for e in output.extras:
        if not e.cols or (e.labels and len(e.labels) != len(e.cols)):
            raise PlanError(f"{where}: output {e.name!r} needs columns, one label per column")
        if len(e.cols) > 1 and not e.labels:
            raise PlanError(f"{where}: output {e.name!r} needs one label per column")
    extra_cols = tuple(c for e in output.extras for c in e.cols)
    for col in output.proba + output.decision + extra_cols:
        if not 0 <= col < width:
            raise PlanError(f"{where}: output column {col} outside the workspace")


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
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise PlanError(f"{where}/{PLAN_FILE}: not valid JSON: {exc}") from exc
    return parse_plan(parsed, read_arrays(raw, f"{where}/{ARRAYS_FILE}"), where=where)


def read_arrays(raw: bytes, where: str) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive: plain numbers only, each member's size checked
    against its header before anything is allocated.

    The archive is read member by member rather than with ``np.load``, so that every
    way bytes can be wrong (not a zip, truncated, a bad CRC, an ``.npy`` header that
    lies about its shape, an object or structured dtype, a pickle) ends in PlanError.
    """
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if key == info.filename or key in arrays:
                    raise PlanError(f"{where}: unexpected member {info.filename!r}")
                with archive.open(info) as member:
                    arrays[key] = _read_npy(member, info.file_size, f"{where}: {key}")
    except PlanError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as exc:
        raise PlanError(f"{where}: not a readable array archive ({exc})") from exc
    except (ValueError, NotImplementedError, RuntimeError) as exc:
        # numpy's header parser, unsupported zip compression or encryption
        raise PlanError(f"{where}: not a plain array archive ({exc})") from exc
    return arrays


def _read_npy(member: IO[bytes], size: int, where: str) -> np.ndarray:
    """One ``.npy`` member (format 1.0 or 2.0) of ``size`` bytes."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise PlanError(f"{where}: .npy format {version} is not supported")
    if dtype.hasobject:
        raise PlanError(f"{where}: an object array (a pickle), which is never unpickled")
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise PlanError(f"{where}: an array of {dtype}, not of plain numbers")
    count = math.prod(shape)
    if count * dtype.itemsize != size - member.tell():
        raise PlanError(f"{where}: the header's shape {shape} does not match the data's size")
    data = np.frombuffer(member.read(count * dtype.itemsize), dtype=dtype)
    return data.reshape(shape, order="F" if fortran else "C")


def parse_plan(header: Any, arrays: dict[str, np.ndarray], where: str = "plan") -> Plan:
    """Validate a plan header against its arrays and the kernels this runtime has.

    Any plan this refuses raises PlanError, whatever is wrong with it; one it accepts
    can be run by the kernels without reading or writing outside what it owns.
    """
    if not isinstance(header, dict):
        raise PlanError(f"{where}: not a plan (a JSON {type(header).__name__}, not an object)")
    if header.get("format") != FORMAT:
        raise PlanError(f"{where}: not a {FORMAT} file (format={header.get('format')!r})")
    version = header.get("format_version")
    if not (isinstance(version, str) and re.fullmatch(r"-?[0-9]+\.-?[0-9]+", version)):
        raise PlanError(f"{where}: format_version missing or not 'MAJOR.MINOR'")
    major, minor = (int(x) for x in version.split("."))
    if major != FORMAT_VERSION[0]:
        raise PlanError(
            f"{where}: plan format {major}.{minor} is not supported by this runtime "
            f"(reads {FORMAT_VERSION[0]}.x); rebuild the bundle with a matching tool"
        )
    width = _field(header, "width", int, where)
    columns = _items(header, "columns", lambda v: isinstance(v, str), "text", where)
    if len(columns) != width:
        raise PlanError(f"{where}: {len(columns)} column names for a workspace of width {width}")
    _field(header, "inputs", list, where)
    inputs = _parse_inputs(header, width, where)
    _field(header, "ops", list, where)  # required, unlike most lists
    raw_ops = _objects(header, "ops", where)
    ops = tuple(_parse_op(n, raw_op, arrays, width, where) for n, raw_op in enumerate(raw_ops))
    return Plan(
        version=(major, minor),
        inputs=inputs,
        width=width,
        columns=columns,
        ops=ops,
        output=_parse_outputs(header, inputs, width, where),
        meta=dict(_field(header, "meta", dict, where, {})),
        text=_parse_text(header, inputs, width, arrays, where),
    )


def _parse_text(
    header: dict[str, Any],
    inputs: tuple[InputSpec, ...],
    width: int,
    arrays: dict[str, np.ndarray],
    where: str,
) -> tuple[TextFeature, ...]:
    """The ``text`` list (format 2.1): each text input's features, checked; every text
    input needs at least one, or nothing would ever read it."""
    kinds = [i.kind for i in inputs]
    features = []
    for n, raw in enumerate(_objects(header, "text", where)):
        checked = check_text(raw, kinds, width, arrays)
        if isinstance(checked, str):
            raise PlanError(f"{where}: text feature {n}: {checked}")
        features.append(checked)
    used = {f.input for f in features}
    for j, inp in enumerate(inputs):
        if inp.kind == "text" and j not in used:
            raise PlanError(f"{where}: text input {inp.name!r} has no text feature")
    return tuple(features)
