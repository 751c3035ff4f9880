"""The release gate, shared by the build and the frozen app's ``selftest``.

Two checks, as deployment practice asks: an end-to-end set whose expected
outputs must always come back (within ``tolerance`` for probabilities and
regression values), and a confidence set whose metric must fall inside an
accepted range. Running the same code in the build and inside the binary
proves the shipped artifact, not just the build machine, scores correctly.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlbundle_runtime import metrics
from mlbundle_runtime.inputs import (
    MISSING_TEXT,
    Chunk,
    InputError,
    Where,
    decode_csv,
    iter_csv_chunks,
)
from mlbundle_runtime.plan import APP_COLUMNS, Output
from mlbundle_runtime.scorer import CHUNK_ROWS, Scorer, output_columns

#: How many failing rows a report lists before summarising the rest.
MAX_LISTED = 10


@dataclass(frozen=True)
class GateConfig:
    """What the gate checks; stored as ``gate.json`` in the bundle.

    ``compare``: the output columns the e2e set must give and the gate compares;
    ``None`` means every output the model produces (the default: a set that
    leaves an output out has to say so in the spec).
    """

    e2e_file: str
    tolerance: float
    confidence_file: str
    target: str
    metric: str
    low: float
    high: float
    average: str = "macro"
    pos_label: str | None = None
    compare: tuple[str, ...] | None = None
    #: a multi-output model's target the confidence metric scores (None: the one output)
    output: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "e2e": {
                "file": self.e2e_file,
                "tolerance": self.tolerance,
                "compare": None if self.compare is None else list(self.compare),
            },
            "confidence": {
                "file": self.confidence_file,
                "target": self.target,
                "metric": self.metric,
                "range": [self.low, self.high],
                "average": self.average,
                "pos_label": self.pos_label,
            },
        }
        if self.output is not None:  # a single output's gate.json stays as it was
            data["confidence"]["output"] = self.output
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GateConfig:
        e2e, conf = data["e2e"], data["confidence"]
        compare = e2e.get("compare")
        return cls(
            e2e_file=e2e["file"],
            tolerance=float(e2e["tolerance"]),
            confidence_file=conf["file"],
            target=conf["target"],
            metric=conf["metric"],
            low=float(conf["range"][0]),
            high=float(conf["range"][1]),
            average=conf.get("average", "macro"),
            pos_label=conf.get("pos_label"),
            compare=None if compare is None else tuple(compare),
            output=conf.get("output"),
        )


@dataclass(frozen=True)
class GateResult:
    """Outcome of both checks, with enough detail to act on a failure."""

    e2e_rows: int
    e2e_failures: list[str] = field(default_factory=list)
    e2e_max_abs_diff: float = 0.0
    confidence_rows: int = 0
    metric: str = ""
    metric_value: float = math.nan
    low: float = math.nan
    high: float = math.nan
    e2e_columns: tuple[str, ...] = ()
    #: the target the metric scored, for a multi-output model (None: its one output)
    confidence_output: str | None = None

    @property
    def e2e_passed(self) -> bool:
        return self.e2e_rows > 0 and bool(self.e2e_columns) and not self.e2e_failures

    @property
    def confidence_passed(self) -> bool:
        return self.confidence_rows > 0 and self.low <= self.metric_value <= self.high

    @property
    def passed(self) -> bool:
        return self.e2e_passed and self.confidence_passed

    def summary(self) -> list[str]:
        """Human-readable lines: what was compared, what passed, what failed and by how much."""
        lines = []
        compared = ", ".join(self.e2e_columns) or "no column"
        if self.e2e_passed:
            lines.append(
                f"end-to-end: {self.e2e_rows} rows match on {compared} "
                f"(largest difference {self.e2e_max_abs_diff:.3g})"
            )
        else:
            lines.append(
                f"end-to-end: FAILED on {len(self.e2e_failures)} of {self.e2e_rows} rows "
                f"(compared {compared})"
            )
            lines += ["  " + f for f in self.e2e_failures[:MAX_LISTED]]
            if len(self.e2e_failures) > MAX_LISTED:
                lines.append(f"  ... and {len(self.e2e_failures) - MAX_LISTED} more rows")
        verdict = "within" if self.confidence_passed else "FAILED: outside"
        of = f" of {self.confidence_output}" if self.confidence_output is not None else ""
        lines.append(
            f"confidence: {self.metric}{of} = {self.metric_value!r} on "
            f"{self.confidence_rows} rows, {verdict} [{self.low!r}, {self.high!r}]"
        )
        return lines

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "passed": self.passed,
            "e2e": {
                "rows": self.e2e_rows,
                "columns": list(self.e2e_columns),
                "passed": self.e2e_passed,
                "failures": self.e2e_failures,
                "max_abs_diff": self.e2e_max_abs_diff,
            },
            "confidence": {
                "rows": self.confidence_rows,
                "metric": self.metric,
                "value": self.metric_value,
                "range": [self.low, self.high],
                "passed": self.confidence_passed,
            },
        }
        if self.confidence_output is not None:
            data["confidence"]["output"] = self.confidence_output
        return data


@dataclass(frozen=True)
class GateTable:
    """A gate file as read and checked: its header and its rows, in chunks to score."""

    source: str
    header: list[str]
    chunks: tuple[Chunk, ...]

    @property
    def rows(self) -> int:
        return sum(len(c.rows) for c in self.chunks)


def read_table(data: bytes, source: str, inputs: Sequence[str]) -> GateTable:
    """Read a gate CSV strictly: UTF-8 (a byte-order mark and any line ends are fine),
    a header naming every input, each row as long as the header, at least one row.

    ``source`` is how messages name the file: the user's path and spec key in the
    build, the bundle's copy in the app. Every problem is an ``InputError`` naming
    the line, so a hand-written file never ends in a traceback.
    """
    reader = csv.reader(io.StringIO(decode_csv(data, source), newline=""))
    try:
        records = list(reader)
    except csv.Error as exc:  # a NUL byte, an over-long cell
        raise InputError(f"{source}: line {reader.line_num}: {exc}") from None
    chunks = tuple(iter_csv_chunks(records, inputs, CHUNK_ROWS, source))
    header = [h.strip() for h in records[0]]
    for k, name in enumerate(header):
        if name in header[:k]:
            raise InputError(f"{source}: line 1: column {name!r} appears twice in the header")
    table = GateTable(source, header, chunks)
    if table.rows == 0:
        raise InputError(
            f"{source}: no rows after the header; a gate set needs at least one row to check"
        )
    return table


def e2e_columns(
    table: GateTable, inputs: Sequence[str], outputs: Sequence[str], compare: Sequence[str] | None
) -> list[str]:
    """The output columns the e2e set is compared on, after checking its header.

    Every column must be an input, one of the model's outputs, or one of the columns the
    app's ``predict`` writes after them (``APP_COLUMNS``: an e2e set made from its output
    may keep them; a row that failed has empty outputs, so it fails the gate): a misspelled
    ``proba_Yes`` for class ``yes`` would otherwise be skipped and the gate pass
    without comparing it. The set must give every output (or every one the
    spec's ``compare`` names, and no other), so nothing goes unchecked silently.
    """
    source = table.source
    allowed = [*inputs, *outputs]
    for name in table.header:
        if name not in allowed and name not in APP_COLUMNS:
            close = difflib.get_close_matches(name, allowed, 1, 0.6) or difflib.get_close_matches(
                name.lower(), [a.lower() for a in allowed], 1, 0.6
            )
            hint = f"did you mean {_original(close[0], allowed)!r}? " if close else ""
            raise InputError(
                f"{source}: line 1: unknown column {name!r}; {hint}an e2e set holds the "
                f"inputs ({', '.join(inputs)}) and the expected outputs "
                f"({', '.join(outputs)})"
            )
    wanted = list(outputs if compare is None else compare)
    missing = [c for c in wanted if c not in table.header]
    if missing:
        fewer = (
            "or name the outputs to compare in the spec's [gate.e2e] compare"
            if compare is None
            else "or take them out of [gate.e2e] compare"
        )
        raise InputError(
            f"{source}: line 1: no column {', '.join(missing)}; the e2e set must give the "
            f"expected {', '.join(wanted)} (add the column(s), {fewer})"
        )
    unlisted = [c for c in table.header if c in outputs and c not in wanted]
    if unlisted:
        raise InputError(
            f"{source}: line 1: column {', '.join(unlisted)} is an output that [gate.e2e] "
            f"compare leaves out ({', '.join(wanted)}); add it to compare or remove the column"
        )
    return wanted


def _original(lowered: str, names: Sequence[str]) -> str:
    """The name among ``names`` that ``lowered`` (maybe lower-cased) stands for."""
    return next((n for n in names if n == lowered), None) or next(
        n for n in names if n.lower() == lowered
    )


def _float(text: str, where: str, column: str) -> float:
    text = text.strip()
    if text in MISSING_TEXT:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise InputError(
            f"{where}, column {column!r}: {text!r} is not a number; expected the output's "
            "value (NA for a missing one)"
        ) from None


def label_columns(output: Output) -> set[str]:
    """The output columns holding class labels, compared as text (the others are numbers)."""
    if output.outputs:
        return {f"prediction_{o.name}" for o in output.outputs if o.task == "classification"}
    return {"prediction"} if output.task == "classification" else set()


def confidence_target(output: Output, name: str | None) -> int | None:
    """Which target of a multi-output model the confidence metric scores (``[gate.confidence]
    output``), or None for a single-output model. Raises ``InputError`` saying what is valid."""
    names = [o.name for o in output.outputs]
    if not names:
        if name is not None:
            raise InputError(
                f"confidence output {name!r} is given, but the model has one output; "
                "remove [gate.confidence] output"
            )
        return None
    if name is None:
        raise InputError(
            f"the model predicts {len(names)} targets ({', '.join(names)}); name the one the "
            "confidence metric scores in [gate.confidence] output, e.g. "
            f"output = {names[0]!r}"
        )
    if name not in names:
        raise InputError(
            f"confidence output {name!r} is not a target of the model; valid: {', '.join(names)}"
        )
    return names.index(name)


def check_e2e(
    scorer: Scorer, table: GateTable, columns: Sequence[str], tolerance: float
) -> tuple[list[str], float]:
    """Score the end-to-end set and compare ``columns`` with its expected values."""
    failures: list[str] = []
    worst = 0.0
    output = output_columns(scorer.plan.output)
    at = {c: output.index(c) for c in columns}
    labels = label_columns(scorer.plan.output)
    for chunk in table.chunks:
        scores = scorer.score_chunk(chunk)
        positions = {c: chunk.header.index(c) for c in columns}
        where = Where(table.source, chunk.first_row, chunk.lines)
        for r, (row, got) in enumerate(zip(chunk.rows, scores.rows(), strict=True)):
            for c, pos in positions.items():
                want, have = row[pos].strip(), got[at[c]]
                if c in labels:
                    if want != have:
                        failures.append(f"{where(r)}: {c} {have!r}, expected {want!r}")
                    continue
                expected = _float(want, where(r), c)
                diff = abs(expected - float(have))
                if math.isnan(diff) and not (math.isnan(expected) and math.isnan(float(have))):
                    diff = math.inf
                if not math.isnan(diff):
                    worst = max(worst, diff)
                    if diff > tolerance:
                        failures.append(
                            f"{where(r)}: {c} {have}, expected {want} "
                            f"(difference {diff:.3g} > {tolerance:g})"
                        )
    return failures, worst


def check_confidence(scorer: Scorer, table: GateTable, config: GateConfig) -> tuple[int, float]:
    """Score the confidence set and compute the gate's metric against its target."""
    source = table.source
    if config.target not in table.header:
        close = difflib.get_close_matches(config.target, table.header, 1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InputError(
            f"{source}: line 1: no target column {config.target!r} (the spec's "
            f"[gate.confidence] target); columns: {', '.join(table.header)}{hint}"
        )
    t = table.header.index(config.target)
    k = confidence_target(scorer.plan.output, config.output)
    scored = scorer.plan.output if k is None else scorer.plan.output.outputs[k]
    task = scored.task
    classes = [str(c) for c in scored.classes]
    truth: list[Any] = []
    preds: list[Any] = []
    probas: list[np.ndarray] = []
    for chunk in table.chunks:
        where = Where(source, chunk.first_row, chunk.lines)
        for r, row in enumerate(chunk.rows):
            cell = row[t].strip()
            if task == "regression":
                value = _float(cell, where(r), config.target)
                if math.isnan(value):
                    raise InputError(
                        f"{where(r)}, column {config.target!r}: no target value; every row "
                        "of the confidence set needs the true value"
                    )
                truth.append(value)
            elif cell not in classes:
                raise InputError(
                    f"{where(r)}, column {config.target!r}: {cell!r} is not a class the "
                    f"model can predict; its classes are {', '.join(map(repr, classes))}"
                )
            else:
                truth.append(cell)
        scores = scorer.score_chunk(chunk)
        if k is not None:
            scores = scores.outputs[k]
        preds += scores.labels()
        if scores.proba is not None:
            probas.append(scores.proba)
    if task == "regression":
        y_true: Iterable[Any] = np.array(truth, dtype=np.float64)
        y_pred: Any = np.asarray(preds, dtype=np.float64)
    else:
        y_true = np.array(truth, dtype=object)
        y_pred = np.array([str(p) for p in preds], dtype=object)
    proba = np.concatenate(probas) if probas else None
    value = metrics.compute(
        config.metric,
        y_true=y_true,
        y_pred=y_pred,
        proba=proba,
        classes=classes,
        average=config.average,
        pos_label=config.pos_label,
    )
    return len(truth), float(value)


def run_gate(
    scorer: Scorer, config: GateConfig, e2e: GateTable, confidence: GateTable
) -> GateResult:
    """Run both checks on tables read by ``read_table``; the caller decides what a failure
    stops. Malformed files raise ``InputError``; a failed check is in the result."""
    inputs = scorer.plan.input_names
    confidence_target(scorer.plan.output, config.output)  # a config that cannot run: say so first
    columns = e2e_columns(e2e, inputs, output_columns(scorer.plan.output), config.compare)
    failures, worst = check_e2e(scorer, e2e, columns, config.tolerance)
    n_conf, value = check_confidence(scorer, confidence, config)
    return GateResult(
        e2e_rows=e2e.rows,
        e2e_failures=failures,
        e2e_max_abs_diff=worst,
        confidence_rows=n_conf,
        metric=config.metric,
        metric_value=value,
        low=config.low,
        high=config.high,
        e2e_columns=tuple(columns),
        confidence_output=config.output,
    )
