"""The plan under construction: workspace columns, arrays and kernel calls.

Converters never touch JSON or array names: they ask the builder for new
columns, the code of a category, or to emit a kernel call, and the builder
keeps the bookkeeping (column names for error messages, categorical
vocabularies, array storage) consistent.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.kernels import EXPORTS
from mlbundle_runtime.plan import FORMAT, FORMAT_VERSION


@dataclass(frozen=True)
class Cols:
    """A block of workspace columns flowing between converters (a 'tensor')."""

    idx: tuple[int, ...]
    #: scikit-learn holds these columns in a sparse matrix (some estimators compute
    #: differently on one, e.g. scale by ``x * (1 / s)``); a sparse block joined to
    #: another stays sparse, as in FeatureUnion.
    sparse: bool = False
    #: scikit-learn holds them as float32 (e.g. ``OneHotEncoder(dtype=np.float32)``), so
    #: an estimator computing with them may compute in float32; joined to a float64
    #: block they become float64, as numpy's hstack does.
    float32: bool = False
    #: scikit-learn hands them to the next step as a Fortran-ordered array (a
    #: DataFrame's values, passed on by steps that keep numpy's memory order), which
    #: changes how numpy adds along rows (Normalizer). Only a Pipeline knows this, so
    #: it sets the flag on each step's input; blocks taken or joined are new arrays.
    fortran: bool = False

    def __len__(self) -> int:
        return len(self.idx)

    def take(self, positions: Sequence[int]) -> Cols:
        return Cols(tuple(self.idx[p] for p in positions), self.sparse, self.float32)

    def __add__(self, other: Cols) -> Cols:
        if not self.idx:
            return other
        if not other.idx:
            return self
        return Cols(
            self.idx + other.idx, self.sparse or other.sparse, self.float32 and other.float32
        )


@dataclass(frozen=True)
class Prediction:
    """What a final estimator produces: where its outputs are and how to read them."""

    task: str  # classification | regression
    decision: Cols
    label_rule: str  # see mlbundle_runtime.plan.LABEL_RULES
    classes: tuple[Any, ...] = ()
    proba: Cols | None = None
    #: further outputs scikit-learn exposes: (name, columns, one label per column or ())
    extras: tuple[tuple[str, Cols, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class MultiPrediction:
    """What a multi-output estimator produces (a 2-D ``y``): one ``Prediction`` per target,
    in the column order of ``y``, without extras (plan format 2.3's ``outputs``).

    It is not a ``Prediction``, so a wrapper that reads one output (a voting ensemble, a
    calibrator, RANSAC) refuses it instead of reading the first target alone.
    """

    outputs: tuple[Prediction, ...]

    def __post_init__(self) -> None:
        if len(self.outputs) < 2 or any(p.extras for p in self.outputs):
            raise ValueError("a multi-output prediction has two or more targets and no extras")


def regression_outputs(values: Cols) -> Prediction | MultiPrediction:
    """A regressor's prediction from its value columns: one target, or one per column."""
    if len(values) == 1:
        return Prediction("regression", values, "value")
    return MultiPrediction(
        tuple(Prediction("regression", values.take([k]), "value") for k in range(len(values)))
    )


def default_target_names(n: int) -> list[str]:
    """Target names when the spec gives none: ``y0, y1, ...`` (scikit-learn names none)."""
    return [f"y{k}" for k in range(n)]


def _output_json(out: Prediction) -> dict[str, Any]:
    return {
        "task": out.task,
        "classes": [_json_scalar(c) for c in out.classes],
        "proba": list(out.proba.idx) if out.proba is not None else [],
        "decision": list(out.decision.idx),
        "label_rule": out.label_rule,
        "extras": [
            {"name": name, "cols": list(cols.idx), "labels": list(labels)}
            for name, cols, labels in out.extras
        ],
    }


@dataclass
class _Input:
    name: str
    kind: str = "numeric"
    categories: list[str] = field(default_factory=list)
    used_as_number: bool = False


def _json_scalar(value: Any) -> Any:
    """Classes and categories as plain JSON values (numpy scalars are not JSON)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class PlanBuilder:
    """Accumulates a plan; ``finish()`` returns the header and arrays to write."""

    def __init__(self, input_names: Sequence[str]) -> None:
        self.inputs = [_Input(str(n)) for n in input_names]
        self.names: list[str] = list(self.inputs_names)
        # workspace column -> index of the categorical input whose codes it holds
        self.coding: dict[int, int] = {}
        self.ops: list[dict[str, Any]] = []
        self.arrays: dict[str, np.ndarray] = {}
        self._path: list[str] = []
        self.output: Prediction | MultiPrediction | None = None
        #: a multi-output plan's target names (``y0, y1, ...`` when None)
        self.target_names: Sequence[str] | None = None
        #: whether the step being converted is the model's final estimator (an estimator
        #: that both predicts and transforms, like KMeans, returns a Prediction only then)
        self.final = False
        #: the plan's text features (format 2.1), and which columns each one writes
        self.text: list[dict[str, Any]] = []
        self._text_of: dict[tuple[int, ...], int] = {}

    @property
    def inputs_names(self) -> list[str]:
        return [i.name for i in self.inputs]

    def input_cols(self) -> Cols:
        return Cols(tuple(range(len(self.inputs))))

    # -- naming -----------------------------------------------------------
    def push(self, label: str) -> None:
        self._path.append(label)

    def pop(self) -> None:
        self._path.pop()

    def origin(self, est: object) -> str:
        where = "/".join(self._path)
        return f"{type(est).__name__} ({where})" if where else type(est).__name__

    # -- columns ----------------------------------------------------------
    def new_cols(self, names: Sequence[str]) -> Cols:
        start = len(self.names)
        self.names.extend(names)
        return Cols(tuple(range(start, start + len(names))))

    def derived(self, src: Cols, suffix: str = "") -> Cols:
        """New columns one-to-one with ``src``, keeping their names and category coding."""
        out = self.new_cols([self.names[c] + suffix for c in src.idx])
        for s, d in zip(src.idx, out.idx, strict=True):
            if s in self.coding:
                self.coding[d] = self.coding[s]
        return out

    def name(self, col: int) -> str:
        return self.names[col]

    # -- categorical coding -----------------------------------------------
    def make_categorical(self, col: int, est: object) -> int:
        """Declare that ``col`` holds strings; return the input whose codes it carries."""
        if col in self.coding:
            return self.coding[col]
        if col < len(self.inputs):
            inp = self.inputs[col]
            if inp.kind == "text":
                raise UnsupportedEstimatorError(
                    f"{self.origin(est)} treats input {inp.name!r} as categories, but a "
                    "vectorizer reads it as text; a plan needs one type per input"
                )
            if inp.used_as_number:
                raise UnsupportedEstimatorError(
                    f"{self.origin(est)} treats input {inp.name!r} as text, but another step "
                    "uses it as a number; a plan needs one type per input"
                )
            inp.kind = "categorical"
            self.coding[col] = col
            return col
        raise UnsupportedEstimatorError(
            f"{self.origin(est)} receives text in column {self.names[col]!r}, which is not an "
            "input of the model; only raw inputs (and imputed copies of them) may be text"
        )

    def code(self, input_index: int, category: Any) -> float:
        """The workspace value standing for ``category`` of a categorical input."""
        if category is None or (isinstance(category, float) and math.isnan(category)):
            return math.nan
        cats = self.inputs[input_index].categories
        text = str(category)
        if text not in cats:
            cats.append(text)
        return float(cats.index(text))

    def use_as_numbers(self, cols: Cols, est: object) -> None:
        """Record numeric use, refusing columns that hold category codes."""
        for c in cols.idx:
            if c in self.coding:
                raise UnsupportedEstimatorError(
                    f"{self.origin(est)} computes with column {self.names[c]!r}, which holds "
                    "text categories; encode it first (for example with OneHotEncoder)"
                )
            if c < len(self.inputs):
                if self.inputs[c].kind == "text":
                    raise UnsupportedEstimatorError(
                        f"{self.origin(est)} computes with input {self.inputs[c].name!r}, "
                        "which a vectorizer reads as text; give it to the vectorizer only"
                    )
                self.inputs[c].used_as_number = True

    # -- text -----------------------------------------------------------------
    def make_text(self, col: int, est: object) -> int:
        """Declare that raw input ``col`` holds documents; return its input index."""
        if col >= len(self.inputs):
            raise UnsupportedEstimatorError(
                f"{self.origin(est)} receives column {self.names[col]!r}, which is not an "
                "input of the model; a vectorizer must read a raw text input"
            )
        inp = self.inputs[col]
        if inp.used_as_number or inp.kind == "categorical":
            raise UnsupportedEstimatorError(
                f"{self.origin(est)} reads input {inp.name!r} as text, but another step uses "
                "it as a number or category; a plan needs one type per input"
            )
        inp.kind = "text"
        return col

    def add_text(self, feature: dict[str, Any], names: Sequence[str], est: object) -> Cols:
        """New term columns written by the input encoding as ``feature`` says."""
        out = self.new_cols(names)
        entry = {**feature, "cols": list(out.idx), "origin": self.origin(est)}
        self._text_of[out.idx] = len(self.text)
        self.text.append(entry)
        return out

    def text_feature(self, cols: Cols) -> dict[str, Any] | None:
        """The text feature that writes exactly ``cols``, if one does."""
        k = self._text_of.get(cols.idx)
        return None if k is None else self.text[k]

    # -- ops ----------------------------------------------------------------
    def array(self, data: Any, dtype: Any) -> dict[str, str]:
        key = f"a{len(self.arrays)}"
        # always a fresh, writable, C-ordered copy: views (broadcasts) are read-only
        self.arrays[key] = np.array(data, dtype=dtype, order="C", copy=True)
        return {"array": key}

    def emit(self, kernel: str, est: object, *args: Any, message: str = "") -> None:
        if kernel not in EXPORTS:
            raise KeyError(kernel)
        self.ops.append(
            {"kernel": kernel, "args": list(args), "origin": self.origin(est), "message": message}
        )

    def idx(self, cols: Cols) -> dict[str, str]:
        return self.array(cols.idx, np.int64)

    def check(self, cols: Cols, est: object, *, allow_nan: bool, float32: bool = False) -> None:
        """Emit scikit-learn's input validation for ``cols`` (what ``validate_data`` refuses)."""
        self.use_as_numbers(cols, est)
        hint = "" if allow_nan else "this model does not accept missing values"
        self.emit("check_values", est, self.idx(cols), int(allow_nan), int(float32), message=hint)

    # -- result -------------------------------------------------------------
    def _outputs_json(self, out: Prediction | MultiPrediction) -> dict[str, Any]:
        """``{"output": ...}`` for one target; ``{"outputs": [...]}``, each named, for several."""
        if isinstance(out, Prediction):
            if self.target_names is not None:
                raise UnsupportedEstimatorError(
                    f"{len(self.target_names)} target names are given "
                    f"({', '.join(self.target_names)}) but the model predicts one target; "
                    "target names are for a model fitted on a 2-D y (leave them out)"
                )
            return {"output": _output_json(out)}
        n = len(out.outputs)
        names = list(self.target_names or default_target_names(n))
        if len(names) != n:
            raise UnsupportedEstimatorError(
                f"the model predicts {n} targets but {len(names)} target names are given "
                f"({', '.join(names)}); valid: one name per column of y"
            )
        return {
            "outputs": [
                {"name": name, **_output_json(p)}
                for name, p in zip(names, out.outputs, strict=True)
            ]
        }

    def finish(self, meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self.output is None:
            raise UnsupportedEstimatorError("the pipeline has no final estimator to predict with")
        out = self.output
        header = {
            "format": FORMAT,
            "format_version": f"{FORMAT_VERSION[0]}.{FORMAT_VERSION[1]}",
            "inputs": [
                {"name": i.name, "kind": i.kind, "categories": list(i.categories)}
                if i.kind == "categorical"
                else {"name": i.name, "kind": i.kind}
                for i in self.inputs
            ],
            "width": len(self.names),
            "columns": self.names,
            "ops": self.ops,
            **self._outputs_json(out),
            "meta": meta,
        }
        if self.text:
            header["text"] = self.text
        return header, dict(self.arrays)
