"""Score with the model itself: the runtime of ``backend = "passthrough"`` bundles.

A model the compiler cannot translate ships as its joblib file(s) together with
scikit-learn. The bundle's ``schema.json`` takes the place of the plan: the
input schema (names, numeric or categorical), the output (task, classes,
whether there are probabilities), which payload files hold the model and the
optional extractor, and whether the model was fitted on a pandas DataFrame.

joblib, scikit-learn and pandas are imported lazily, only when a passthrough
bundle scores, so aot and jit bundles never ship them. The joblib bytes are
read through ``Bundle.read_bytes``, which refuses a file whose sha256 differs
from the build's, before anything is unpickled.

``PassthroughScorer`` has the interface of ``mlbundle_runtime.scorer.Scorer`` that the CLI
and the gate use: ``plan`` (inputs and output), ``score_records``,
``iter_csv``, ``score_csv_file`` and ``empty_header``, and it returns
``mlbundle_runtime.scorer.Scores``.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

import numpy as np

from mlbundle_runtime.inputs import MISSING_TEXT, Chunk, InputError, Where, iter_csv_chunks
from mlbundle_runtime.plan import InputSpec, Output, Plan, PlanError
from mlbundle_runtime.scorer import CHUNK_ROWS, Scorer, Scores

#: The payload file describing a passthrough model (what plan.json is to compiled bundles).
SCHEMA_FILE = "schema.json"
FORMAT = "mlbundle.passthrough"
#: (major, minor). A reader accepts any minor of its own major.
FORMAT_VERSION = (1, 0)
#: ``Output.label_rule`` of a passthrough plan: labels come from the model's ``predict``.
LABEL_RULE = "predict"


def plan_from_schema(data: bytes, where: str = "bundle") -> tuple[Plan, dict[str, Any]]:
    """The plan-like view of ``schema.json`` (inputs and output, no ops), and the schema."""
    try:
        schema = json.loads(data)
    except ValueError as exc:
        raise PlanError(f"{where}/{SCHEMA_FILE}: not valid JSON: {exc}") from exc
    if not isinstance(schema, dict) or schema.get("format") != FORMAT:
        raise PlanError(f"{where}/{SCHEMA_FILE}: not a {FORMAT} file")
    try:
        major, minor = (int(x) for x in str(schema["format_version"]).split("."))
    except (KeyError, ValueError) as exc:
        raise PlanError(
            f"{where}/{SCHEMA_FILE}: format_version missing or not 'MAJOR.MINOR'"
        ) from exc
    if major != FORMAT_VERSION[0]:
        raise PlanError(
            f"{where}/{SCHEMA_FILE}: format {major}.{minor} is not supported by this runtime "
            f"(reads {FORMAT_VERSION[0]}.x); rebuild the bundle with a matching tool"
        )
    try:
        inputs = tuple(
            InputSpec(name=str(i["name"]), kind=str(i["kind"])) for i in schema["inputs"]
        )
        out = schema["output"]
        output = Output(
            task=str(out["task"]),
            classes=tuple(out.get("classes", ())),
            proba=tuple(int(c) for c in out.get("proba", ())),
            decision=(),
            label_rule=LABEL_RULE,
        )
        files = [schema["model"]] + ([schema["extractor"]] if schema.get("extractor") else [])
        if not all(isinstance(f["file"], str) for f in files):
            raise ValueError("model/extractor file names must be strings")
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanError(f"{where}/{SCHEMA_FILE}: malformed ({exc!r})") from exc
    if output.task not in ("classification", "regression"):
        raise PlanError(f"{where}/{SCHEMA_FILE}: unknown task {output.task!r}")
    if any(i.kind not in ("numeric", "categorical") for i in inputs):
        raise PlanError(f"{where}/{SCHEMA_FILE}: an input kind is neither numeric nor categorical")
    if output.proba and len(output.proba) != len(output.classes):
        raise PlanError(f"{where}/{SCHEMA_FILE}: probabilities for a different number of classes")
    names = tuple(i.name for i in inputs)
    plan = Plan(
        version=(major, minor),
        inputs=inputs,
        width=len(inputs),
        columns=names,
        ops=(),
        output=output,
        meta=dict(schema.get("meta", {})),
    )
    return plan, schema


def load_scorer(bundle: Any) -> PassthroughScorer:
    """The scorer of a passthrough bundle: hash-checked joblib bytes, then unpickled."""
    plan, schema = plan_from_schema(bundle.read_bytes(SCHEMA_FILE))
    extractor = schema.get("extractor")
    return PassthroughScorer.from_bytes(
        plan,
        schema,
        bundle.read_bytes(schema["model"]["file"]),
        bundle.read_bytes(extractor["file"]) if extractor else None,
    )


def _unpickle(data: bytes, what: str) -> Any:
    try:
        import joblib  # only passthrough bundles ship joblib and scikit-learn
    except ImportError as exc:
        raise PlanError(f"this application cannot load its {what}: joblib fails ({exc})") from exc
    try:
        return joblib.load(io.BytesIO(data))
    except ModuleNotFoundError as exc:
        raise PlanError(
            f"the {what} needs module {exc.name!r}, which this application does not contain"
        ) from exc


class PassthroughScorer:
    """The model (and optional extractor) as scikit-learn objects, behind Scorer's interface."""

    #: Same file handling as compiled bundles: both only use ``iter_csv`` and ``plan``.
    score_csv_file = Scorer.score_csv_file
    empty_header = Scorer.empty_header

    def __init__(self, plan: Plan, schema: dict[str, Any], model: Any, extractor: Any) -> None:
        self.plan = plan
        self.model = model
        self.extractor = extractor
        self.frame = bool(schema.get("frame", False))
        self._names = plan.input_names
        self._kinds = tuple(i.kind for i in plan.inputs)
        self._expected = ", ".join(self._names)
        out = plan.output
        self._proba = bool(out.proba)
        self._index: dict[Any, int] | None = None
        if out.task == "classification":
            classes = getattr(model, "classes_", None)
            if classes is None or len(classes) != len(out.classes):
                raise PlanError("the bundled model's classes do not match its schema")
            self._index = {c: k for k, c in enumerate(np.asarray(classes).tolist())}

    @classmethod
    def from_bytes(
        cls, plan: Plan, schema: dict[str, Any], model: bytes, extractor: bytes | None
    ) -> PassthroughScorer:
        return cls(
            plan,
            schema,
            _unpickle(model, "model"),
            _unpickle(extractor, "feature extractor") if extractor is not None else None,
        )

    # -- entry points -----------------------------------------------------
    def score_records(self, records: Sequence[Mapping[str, object]]) -> Scores:
        """Score JSON-like records (dicts keyed by input name)."""
        columns: list[list[Any]] = [[] for _ in self._names]
        for r, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InputError(
                    f"record {r + 1}: expected an object with fields {self._expected}, "
                    f"got {type(record).__name__}"
                )
            if len(record) != len(self._names) or any(k not in record for k in self._names):
                self._explain_fields(record, r + 1)
            for j, name in enumerate(self._names):
                columns[j].append(self._record_value(record[name], j, r + 1))
        return self._score(columns, lambda r: f"record {r + 1}")

    def score_chunk(self, chunk: Chunk) -> Scores:
        """Score one chunk of CSV rows."""
        columns = [self._text_column(cells, j, chunk) for j, cells in enumerate(chunk.columns)]
        return self._score(columns, Where(chunk.source, chunk.first_row, chunk.lines))

    def iter_csv(
        self, stream: TextIO, source: str, chunk_rows: int = CHUNK_ROWS
    ) -> Iterator[tuple[Chunk, Scores]]:
        """Score a CSV stream chunk by chunk, so memory stays flat on large files."""
        for chunk in iter_csv_chunks(csv.reader(stream), self._names, chunk_rows, source):
            yield chunk, self.score_chunk(chunk)

    # -- input conversion, as scikit-learn saw the data in training -------
    def _explain_fields(self, record: Mapping[str, object], r: int) -> None:
        missing = [n for n in self._names if n not in record]
        extra = sorted(str(k) for k in record if k not in self._names)
        parts = []
        if missing:
            parts.append("missing field(s) " + ", ".join(missing))
        if extra:
            parts.append("unknown field(s) " + ", ".join(extra))
        raise InputError(
            f"record {r}: {'; '.join(parts)}; expected fields: {self._expected} "
            "(use null for a missing value)"
        )

    def _record_value(self, value: object, j: int, r: int) -> Any:
        if value is None:
            return math.nan
        if self._kinds[j] == "categorical":
            if not isinstance(value, str):
                raise InputError(
                    f"record {r}, field {self._names[j]!r}: expected a string or null, "
                    f"got {type(value).__name__} {value!r}"
                )
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(
                f"record {r}, field {self._names[j]!r}: expected a number or null, "
                f"got {type(value).__name__} {value!r}"
            )
        return float(value)

    def _text_column(self, cells: list[str], j: int, chunk: Chunk) -> list[Any]:
        out: list[Any] = []
        categorical = self._kinds[j] == "categorical"
        for r, cell in enumerate(cells):
            text = cell.strip()
            if text in MISSING_TEXT:
                out.append(math.nan)
            elif categorical:
                out.append(text)
            else:
                try:
                    out.append(float(text))
                except ValueError:
                    raise InputError(
                        f"{Where(chunk.source, chunk.first_row, chunk.lines)(r)}, "
                        f"column {self._names[j]!r}: {cell!r} is not a number (leave the cell "
                        "empty or write NA for a missing value)"
                    ) from None
        return out

    def _frame(self, columns: list[list[Any]]) -> Any:
        arrays = [
            np.array(col, dtype=object if kind == "categorical" else np.float64)
            for col, kind in zip(columns, self._kinds, strict=True)
        ]
        if self.frame:
            import pandas as pd  # frozen only when the model was fitted on a DataFrame

            return pd.DataFrame(dict(zip(self._names, arrays, strict=True)), columns=self._names)
        dtype = object if "categorical" in self._kinds else np.float64
        return np.column_stack(arrays).astype(dtype)

    # -- the model ----------------------------------------------------------
    def _score(self, columns: list[list[Any]], where: Callable[[int], str]) -> Scores:
        n = len(columns[0]) if columns else 0
        out = self.plan.output
        if n == 0:
            empty = np.empty(0)
            if out.task == "regression":
                return Scores(out.task, out.classes, None, None, empty, ())
            proba = np.empty((0, len(out.classes))) if self._proba else None
            return Scores(out.task, out.classes, np.empty(0, np.int64), proba, None, ())
        try:
            labels, proba = self._predict(self._frame(columns))
        except (ValueError, TypeError) as exc:  # refused by scikit-learn: name the first bad row
            raise InputError(self._explain(columns, where, exc)) from None
        if labels.ndim != 1 or labels.shape[0] != n:
            raise PlanError(f"the model returned predictions of shape {labels.shape} for {n} rows")
        if out.task == "regression":
            return Scores(out.task, out.classes, None, None, labels.astype(np.float64), ())
        assert self._index is not None
        try:
            index = np.array([self._index[v] for v in labels.tolist()], dtype=np.int64)
        except KeyError as exc:
            raise PlanError(
                f"the model predicted {exc.args[0]!r}, not one of its classes"
            ) from None
        return Scores(out.task, out.classes, index, proba, None, ())

    def _predict(self, X: Any) -> tuple[np.ndarray, np.ndarray | None]:
        Xt = self.extractor.transform(X) if self.extractor is not None else X
        labels = np.asarray(self.model.predict(Xt))
        proba = None
        if self._proba:
            proba = np.asarray(self.model.predict_proba(Xt), dtype=np.float64)
        return labels, proba

    def _explain(
        self, columns: list[list[Any]], where: Callable[[int], str], exc: Exception
    ) -> str:
        for r in range(len(columns[0])):
            try:
                self._predict(self._frame([[col[r]] for col in columns]))
            except (ValueError, TypeError) as row_exc:
                return f"{where(r)}: the model refused this row: {row_exc}"
        return f"{where(0)} and following: the model refused these rows: {exc}"
