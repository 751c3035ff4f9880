"""The release gate, shared by the build and the frozen app's ``selftest``.

Two checks, as deployment practice asks: an end-to-end set whose expected
outputs must always come back (within ``tolerance`` for probabilities and
regression values), and a confidence set whose metric must fall inside an
accepted range. Running the same code in the build and inside the binary
proves the shipped artifact, not just the build machine, scores correctly.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from app import metrics
from app.inputs import MISSING_TEXT
from app.scorer import Scorer

#: How many failing rows a report lists before summarising the rest.
MAX_LISTED = 10


@dataclass(frozen=True)
class GateConfig:
    """What the gate checks; stored as ``gate.json`` in the bundle."""

    e2e_file: str
    tolerance: float
    confidence_file: str
    target: str
    metric: str
    low: float
    high: float
    average: str = "macro"
    pos_label: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "e2e": {"file": self.e2e_file, "tolerance": self.tolerance},
            "confidence": {
                "file": self.confidence_file,
                "target": self.target,
                "metric": self.metric,
                "range": [self.low, self.high],
                "average": self.average,
                "pos_label": self.pos_label,
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GateConfig:
        e2e, conf = data["e2e"], data["confidence"]
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

    @property
    def e2e_passed(self) -> bool:
        return self.e2e_rows > 0 and not self.e2e_failures

    @property
    def confidence_passed(self) -> bool:
        return self.low <= self.metric_value <= self.high

    @property
    def passed(self) -> bool:
        return self.e2e_passed and self.confidence_passed

    def summary(self) -> list[str]:
        """Human-readable lines: what passed, what failed and by how much."""
        lines = []
        if self.e2e_passed:
            lines.append(
                f"end-to-end: {self.e2e_rows} rows match "
                f"(largest difference {self.e2e_max_abs_diff:.3g})"
            )
        else:
            lines.append(f"end-to-end: FAILED on {len(self.e2e_failures)} of {self.e2e_rows} rows")
            lines += ["  " + f for f in self.e2e_failures[:MAX_LISTED]]
            if len(self.e2e_failures) > MAX_LISTED:
                lines.append(f"  ... and {len(self.e2e_failures) - MAX_LISTED} more rows")
        verdict = "within" if self.confidence_passed else "FAILED: outside"
        lines.append(
            f"confidence: {self.metric} = {self.metric_value!r} on "
            f"{self.confidence_rows} rows, {verdict} [{self.low!r}, {self.high!r}]"
        )
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "e2e": {
                "rows": self.e2e_rows,
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


def _float(text: str) -> float:
    return math.nan if text.strip() in MISSING_TEXT else float(text)


def check_e2e(
    scorer: Scorer, stream: TextIO, source: str, tolerance: float
) -> tuple[int, list[str], float]:
    """Score the end-to-end set and compare with its expected columns."""
    failures: list[str] = []
    worst = 0.0
    rows = 0
    for chunk, scores in scorer.iter_csv(stream, source):
        header = chunk.header
        if "prediction" not in header:
            raise ValueError(f"{source}: no 'prediction' column with the expected outputs")
        expected_cols = scores.header()
        got_rows = list(scores.rows())
        positions = {c: header.index(c) for c in expected_cols if c in header}
        for r, (row, got) in enumerate(zip(chunk.rows, got_rows, strict=True)):
            where = f"row {chunk.first_row + r} (line {chunk.lines[r]})"
            for c, pos in positions.items():
                want, have = row[pos].strip(), got[expected_cols.index(c)]
                if c == "prediction" and scores.task == "classification":
                    if want != have:
                        failures.append(f"{where}: prediction {have!r}, expected {want!r}")
                    continue
                diff = abs(_float(want) - float(have))
                if math.isnan(diff) and not (math.isnan(_float(want)) and math.isnan(float(have))):
                    diff = math.inf
                if not math.isnan(diff):
                    worst = max(worst, diff)
                    if diff > tolerance:
                        failures.append(
                            f"{where}: {c} {have}, expected {want} "
                            f"(difference {diff:.3g} > {tolerance:g})"
                        )
        rows += len(chunk.rows)
    return rows, failures, worst


def check_confidence(
    scorer: Scorer, stream: TextIO, source: str, config: GateConfig
) -> tuple[int, float]:
    """Score the confidence set and compute the gate's metric against its target."""
    truth: list[str] = []
    preds: list[Any] = []
    probas: list[np.ndarray] = []
    task = scorer.plan.output.task
    for chunk, scores in scorer.iter_csv(stream, source):
        if config.target not in chunk.header:
            raise ValueError(
                f"{source}: no target column {config.target!r} (columns: {', '.join(chunk.header)})"
            )
        t = chunk.header.index(config.target)
        truth += [row[t].strip() for row in chunk.rows]
        preds += scores.labels()
        if scores.proba is not None:
            probas.append(scores.proba)
    classes = [str(c) for c in scorer.plan.output.classes]
    if task != "regression":
        unknown = sorted(set(truth) - set(classes))
        if unknown:
            raise ValueError(
                f"{source}: target column {config.target!r} holds "
                f"{', '.join(map(repr, unknown[:5]))}, which the model cannot "
                f"predict; its classes are {', '.join(map(repr, classes))}"
            )
    if task == "regression":
        y_true: Iterable[Any] = np.array([float(v) for v in truth])
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


def run_gate(scorer: Scorer, config: GateConfig, e2e: TextIO, confidence: TextIO) -> GateResult:
    """Run both checks; the caller decides what a failure stops."""
    rows, failures, worst = check_e2e(scorer, e2e, config.e2e_file, config.tolerance)
    n_conf, value = check_confidence(scorer, confidence, config.confidence_file, config)
    return GateResult(
        e2e_rows=rows,
        e2e_failures=failures,
        e2e_max_abs_diff=worst,
        confidence_rows=n_conf,
        metric=config.metric,
        metric_value=value,
        low=config.low,
        high=config.high,
    )


def open_text(data: bytes) -> TextIO:
    """A CSV text stream over bytes read from a bundle resource."""
    return io.StringIO(data.decode("utf-8"), newline="")
