"""Run a plan: inputs into the workspace, kernel calls in order, outputs read back.

This is the one scoring path: the frozen app, its self-test, ``bundle score``
and the build's parity check all call it, so what the build checks is what
the user runs.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from app.inputs import Chunk, Encoder, InputError, iter_csv_chunks
from app.plan import Extra, Plan

#: Rows per kernel batch when scoring files: large enough to amortise the
#: per-call overhead, small enough to keep memory flat on any file size.
CHUNK_ROWS = 8192


@dataclass(frozen=True)
class Scores:
    """Results for a batch of rows."""

    task: str
    classes: tuple[Any, ...]
    label_index: np.ndarray | None  # classification: index into classes
    proba: np.ndarray | None  # (n, n_classes) or None
    values: np.ndarray | None  # regression values
    extras: tuple[tuple[Extra, np.ndarray], ...] = ()  # (output, values (n, k))

    def __len__(self) -> int:
        ref = self.values if self.values is not None else self.label_index
        return 0 if ref is None else int(ref.shape[0])

    def labels(self) -> list[Any]:
        """Predictions: class labels, or regression values."""
        if self.values is not None:
            return self.values.tolist()
        assert self.label_index is not None
        return [self.classes[i] for i in self.label_index]

    def header(self) -> list[str]:
        """Output CSV columns: ``prediction`` then ``proba_<class>`` per class."""
        cols = ["prediction"]
        if self.proba is not None:
            cols += [f"proba_{c}" for c in self.classes]
        for extra, _ in self.extras:
            cols += extra_columns(extra)
        return cols

    def rows(self) -> Iterator[list[str]]:
        """Output CSV cells: labels as ``str(label)``, floats at full precision."""
        preds = self.labels()
        proba = self.proba.tolist() if self.proba is not None else None
        extras = [values.tolist() for _, values in self.extras]
        for r, label in enumerate(preds):
            cells = [repr(float(label)) if self.values is not None else str(label)]
            if proba is not None:
                cells += [repr(p) for p in proba[r]]
            for values in extras:
                cells += [repr(v) for v in values[r]]
            yield cells

    def record(self, r: int) -> dict[str, Any]:
        """One row as JSON-ready data."""
        out: dict[str, Any]
        if self.values is not None:
            out = {"prediction": float(self.values[r])}
        else:
            assert self.label_index is not None
            out = {"prediction": self.classes[int(self.label_index[r])]}
        if self.proba is not None:
            out["probabilities"] = {
                str(c): float(p) for c, p in zip(self.classes, self.proba[r], strict=True)
            }
        for extra, values in self.extras:
            row = values[r].tolist()
            out[extra.name] = dict(zip(extra.labels, row, strict=True)) if extra.labels else row[0]
        return out


def extra_columns(extra: Extra) -> list[str]:
    """CSV columns of an extra output: its name, or ``name_<label>`` per column."""
    return [f"{extra.name}_{label}" for label in extra.labels] if extra.labels else [extra.name]


class Scorer:
    """A plan bound to compiled kernels, ready to score many batches."""

    def __init__(self, plan: Plan, kernels: Any) -> None:
        self.plan = plan
        self.encoder = Encoder(plan)
        self._calls = [(getattr(kernels, op.kernel), op.args, op) for op in plan.ops]
        self._argmax: Callable[..., None] = kernels.argmax
        self._positive: Callable[..., None] = kernels.positive
        out = plan.output
        self._proba = np.asarray(out.proba, dtype=np.int64)
        self._decision = np.asarray(out.decision, dtype=np.int64)

    # -- entry points -----------------------------------------------------
    def score_records(self, records: Sequence[Mapping[str, object]]) -> Scores:
        """Score JSON-like records (dicts keyed by input name)."""
        ws = np.empty((len(records), self.plan.width))
        self.encoder.fill_records(ws, records)
        return self.run(ws, lambda r: f"record {r}")

    def score_chunk(self, chunk: Chunk) -> Scores:
        """Score one chunk of CSV rows."""
        ws = np.empty((len(chunk.rows), self.plan.width))
        self.encoder.fill_text(ws, chunk)
        return self.run(
            ws, lambda r: f"{chunk.source}: row {chunk.first_row + r} (line {chunk.lines[r]})"
        )

    def iter_csv(
        self, stream: TextIO, source: str, chunk_rows: int = CHUNK_ROWS
    ) -> Iterator[tuple[Chunk, Scores]]:
        """Score a CSV stream chunk by chunk, so memory stays flat on large files."""
        for chunk in iter_csv_chunks(csv.reader(stream), self.plan.input_names, chunk_rows, source):
            yield chunk, self.score_chunk(chunk)

    def score_csv_file(
        self, src: Path, dst: Path, progress: Callable[[int], None] | None = None
    ) -> int:
        """Score ``src`` into ``dst`` (written to a temporary file, then renamed)."""
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
        n = 0
        try:
            with (
                open(src, newline="", encoding="utf-8") as fin,
                open(tmp, "w", newline="", encoding="utf-8") as fout,
            ):
                writer = csv.writer(fout, lineterminator="\n")
                wrote_header = False
                for _chunk, scores in self.iter_csv(fin, str(src)):
                    if not wrote_header:
                        writer.writerow(scores.header())
                        wrote_header = True
                    writer.writerows(scores.rows())
                    n += len(scores)
                    if progress is not None:
                        progress(n)
                if not wrote_header:
                    writer.writerow(self.empty_header())
            os.replace(tmp, dst)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return n

    def empty_header(self) -> list[str]:
        """The output header, for a file with no rows."""
        out = self.plan.output
        cols = ["prediction"]
        if out.proba:
            cols += [f"proba_{c}" for c in out.classes]
        for extra in out.extras:
            cols += extra_columns(extra)
        return cols

    # -- the kernel pipeline ---------------------------------------------
    def run(self, ws: np.ndarray, where: Callable[[int], str]) -> Scores:
        """Run every op over a filled workspace and read the outputs."""
        for fn, args, op in self._calls:
            status = fn(ws, *args)
            if status is not None and status >= 0:
                raise self._explain(op, args, ws, int(status), where)
        out = self.plan.output
        n = ws.shape[0]
        proba = ws[:, self._proba] if len(self._proba) else None
        extras = tuple((e, ws[:, list(e.cols)]) for e in out.extras)
        if out.label_rule == "value":
            return Scores(
                out.task, out.classes, None, proba, ws[:, self._decision[0]].copy(), extras
            )
        label = np.empty(n, dtype=np.int64)
        if out.label_rule == "positive":
            self._positive(ws, self._decision, label)
        elif out.label_rule == "nonnegative":
            label[:] = ~(ws[:, self._decision[0]] < 0)
        else:
            self._argmax(ws, self._decision, label)
        return Scores(out.task, out.classes, label, proba, None, extras)

    def _explain(
        self,
        op: Any,
        args: tuple[Any, ...],
        ws: np.ndarray,
        status: int,
        where: Callable[[int], str],
    ) -> InputError:
        cols = args[0]
        row, j = divmod(status, len(cols))
        col = int(cols[j])
        name = self.plan.columns[col]
        x = float(ws[row, col])
        if op.kernel in ("onehot", "ordinal_encode"):
            j_input = self.plan.input_names.index(name) if name in self.plan.input_names else -1
            known = ""
            if j_input >= 0 and self.plan.inputs[j_input].kind == "categorical":
                known = "; valid: " + ", ".join(
                    repr(c) for c in self.plan.inputs[j_input].categories
                )
            return InputError(
                f"{where(row)}, field {name!r}: unknown category for {op.origin}{known}"
            )
        if math.isnan(x):
            what = "a missing value (NaN)"
        elif math.isinf(x):
            what = f"an infinite value ({x!r})"
        else:
            what = f"{x!r}, too large for float32"
        return InputError(
            f"{where(row)}, field {name!r}: {what} is not accepted by "
            f"{op.origin}{'; ' + op.message if op.message else ''}"
        )
