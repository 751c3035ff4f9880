"""Run a plan: inputs into the workspace, kernel calls in order, outputs read back.

This is the one scoring path: the frozen app, its self-test, ``bundle score``
and the build's parity check all call it, so what the build checks is what
the user runs.
"""

from __future__ import annotations

import csv
import io
import math
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import numpy as np

from mlbundle_runtime.inputs import (
    Chunk,
    CsvReader,
    Encoder,
    InputError,
    Where,
    chunk_rows_for,
    csv_rows,
    iter_csv_chunks,
)
from mlbundle_runtime.plan import (
    Extra,
    Output,
    Plan,
    class_columns,
    extra_columns,
    output_columns,
)
from mlbundle_runtime.program import LABEL_KERNELS, pack
from mlbundle_runtime.ranges import RangeCheck

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

__all__ = ["AnyScores", "MultiScores", "Scorer", "Scores", "extra_columns", "output_columns"]

#: Rows per kernel batch when scoring files: large enough to amortise the
#: per-call overhead, small enough to keep memory flat on any file size.
CHUNK_ROWS = 8192

#: Rows per block of a large batch: each op sweeps a block while it is in cache,
#: and the blocks are what the threads share out (below this, one thread).
BLOCK_ROWS = 1024

#: From this many rows a block runs MLP layers (``mlp_dense``) through numpy's matrix
#: product, the BLAS call scikit-learn makes, instead of the compiled in-order sum; below
#: it the compiled kernel is faster (the product's fixed cost dominates). Both agree with
#: scikit-learn within the parity bar; only the batch path uses BLAS's summation order.
DENSE_BLAS_ROWS = 64


@dataclass(slots=True)
class Scores:
    """Results for a batch of rows."""

    task: str
    classes: tuple[Any, ...]
    label_index: np.ndarray | None  # classification: index into classes
    proba: np.ndarray | None  # (n, n_classes) or None
    values: np.ndarray | None  # regression values
    extras: tuple[tuple[Extra, np.ndarray], ...] = ()  # (output, values (n, k))
    #: per row, inputs outside the training range (``RangeCheck``); None: none anywhere
    warnings: list[tuple[str, ...]] | None = None

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
        """Output CSV columns (see ``output_columns``)."""
        return class_columns(
            self.classes if self.proba is not None else None, [e for e, _ in self.extras]
        )

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

    def to_csv(self) -> str:
        """``rows()`` as CSV text: what ``csv.writer(f, lineterminator="\\n")`` writes for
        them, built a column at a time. Each class label is escaped once (by csv), each
        float goes through ``repr`` (once per distinct value when a column repeats
        values, as forests' probabilities do), and the cells are joined once."""
        n = len(self)
        if n == 0:
            return ""
        blocks = [a for a in (self.proba, *(v for _, v in self.extras)) if a is not None]
        if any(a.ndim != 2 or a.shape[0] != n or a.dtype.kind != "f" for a in blocks) or (
            self.values is not None and self.values.dtype.kind not in "fiu"
        ):
            return Scores._write_rows(self.rows())  # not the arrays the scorer makes
        if self.values is not None:  # regression: the value is the first float
            blocks.insert(0, self.values.reshape(n, 1))
        m = sum(a.shape[1] for a in blocks)
        width = m + (self.values is None)
        cells = np.empty((n, width), dtype=object)  # each cell's text, then its separator
        if self.values is None:
            assert self.label_index is not None
            # each label as csv writes it (quoted if need be)
            labels = np.array(
                [
                    Scores._write_rows([[str(c), ""]])[:-2] + ","
                    if m
                    else Scores._write_rows([[str(c)]])
                    for c in self.classes
                ],
                dtype=object,
            )
            cells[:, 0] = labels[self.label_index]
        c = width - m
        for block in blocks:
            for values in np.asarray(block, dtype=np.float64).T:
                cells[:, c] = _float_cells(values, "\n" if c == width - 1 else ",")
                c += 1
        return "".join(cells.ravel().tolist())

    def csv_texts(self) -> list[str]:
        """Each row's output cells as one CSV line without its line end (``to_csv``'s
        lines), for a writer that puts more cells around them."""
        if any("\n" in str(c) or "\r" in str(c) for c in self.classes):
            return [Scores._write_rows([row])[:-1] for row in self.rows()]
        return self.to_csv().split("\n")[:-1]

    @staticmethod
    def _write_rows(rows: Any) -> str:
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue()

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


@dataclass(slots=True)
class MultiScores:
    """Results of a multi-output plan for a batch of rows: one ``Scores`` per target.

    It answers what ``Scores`` answers for the app's writers (``header``, ``rows``,
    ``to_csv``, ``csv_texts``, ``record``, ``warnings``), each target's columns in turn
    (``output_columns``). It has no single ``proba``, ``values`` or ``label_index``:
    code that reads one target must take it from ``outputs``.
    """

    task: str
    names: tuple[str, ...]
    outputs: tuple[Scores, ...]
    columns: tuple[str, ...]  # output_columns of the plan
    warnings: list[tuple[str, ...]] | None = None
    classes: tuple[Any, ...] = ()
    proba: None = None
    values: None = None
    label_index: None = None
    extras: tuple[tuple[Extra, np.ndarray], ...] = ()

    def __len__(self) -> int:
        return len(self.outputs[0])

    def labels(self) -> list[tuple[Any, ...]]:
        """Per row, the targets' predictions (labels or values), as scikit-learn's
        ``predict`` gives a row of its 2-D result."""
        return list(zip(*(o.labels() for o in self.outputs), strict=True))

    def header(self) -> list[str]:
        """Output CSV columns (``output_columns`` of the plan)."""
        return list(self.columns)

    def rows(self) -> Iterator[list[str]]:
        for parts in zip(*(o.rows() for o in self.outputs), strict=True):
            yield [cell for part in parts for cell in part]

    def to_csv(self) -> str:
        """``rows()`` as CSV text, each target's cells written as ``Scores.to_csv`` does."""
        if len(self) == 0:
            return ""
        return "".join(line + "\n" for line in self.csv_texts())

    def csv_texts(self) -> list[str]:
        parts = [o.csv_texts() for o in self.outputs]
        return [",".join(cells) for cells in zip(*parts, strict=True)]

    def record(self, r: int) -> dict[str, Any]:
        """One row as JSON-ready data: ``prediction`` is ``{target: label or value}``, and
        ``probabilities`` (when a target has them) ``{target: {class: probability}}``."""
        rows = [o.record(r) for o in self.outputs]
        out: dict[str, Any] = {
            "prediction": {n: row["prediction"] for n, row in zip(self.names, rows, strict=True)}
        }
        proba = {
            n: row["probabilities"]
            for n, row in zip(self.names, rows, strict=True)
            if "probabilities" in row
        }
        if proba:
            out["probabilities"] = proba
        return out


#: What a scorer returns: ``Scores`` for a single-output plan, ``MultiScores`` for several.
AnyScores = Scores | MultiScores


class _MultiReader:
    """Reads a multi-output plan's targets from a run workspace: the columns every target
    needs are gathered once (``cols``), then each target's label rule is applied with
    numpy as the compiled label kernels apply it (``argmax``: first maximum, a NaN wins;
    ``positive``: > 0; ``nonnegative``: not < 0)."""

    def __init__(self, output: Output) -> None:
        self.task = output.task
        self.outputs = output.outputs
        self.names = tuple(o.name for o in output.outputs)
        self.columns = tuple(output_columns(output))
        cols = sorted({c for o in output.outputs for c in (*o.decision, *o.proba)})
        self.cols = np.asarray(cols, dtype=np.int64)
        at = {c: k for k, c in enumerate(cols)}
        self._decision = [np.asarray([at[c] for c in o.decision], np.int64) for o in self.outputs]
        self._proba = [np.asarray([at[c] for c in o.proba], np.int64) for o in self.outputs]

    def scores(self, kept: np.ndarray, warnings: list[tuple[str, ...]] | None) -> MultiScores:
        """``kept``: the run rows' ``cols`` (a copy, so the workspace is not kept alive)."""
        each = []
        for out, decision, proba in zip(self.outputs, self._decision, self._proba, strict=True):
            p = kept[:, proba] if len(proba) else None
            d = kept[:, decision]
            rule = out.label_rule
            if rule == "value":
                each.append(Scores(out.task, out.classes, None, p, d[:, 0].copy()))
                continue
            if rule == "argmax":
                label = np.argmax(d, axis=1).astype(np.int64)
            elif rule == "positive":
                label = (d[:, 0] > 0).astype(np.int64)
            else:  # nonnegative
                label = (~(d[:, 0] < 0)).astype(np.int64)
            each.append(Scores(out.task, out.classes, label, p, None))
        return MultiScores(self.task, self.names, tuple(each), self.columns, warnings)


def _float_cells(values: np.ndarray, sep: str) -> np.ndarray:
    """``repr(v) + sep`` for each float (an object array), each distinct value formatted
    once: they are told apart by their bits (-0.0 and 0.0 differ; every NaN is "nan")."""
    distinct, at = np.unique(np.ascontiguousarray(values).view(np.int64), return_inverse=True)
    texts = [repr(v) + sep for v in distinct.view(np.float64).tolist()]
    return np.array(texts, dtype=object)[at]


class Scorer:
    """A plan bound to compiled kernels, ready to score many batches."""

    def __init__(self, plan: Plan, kernels: Any, threads: int | None = None) -> None:
        """``threads``: how many row blocks of a large batch run at once (default: one
        per core). The compiled kernels release the GIL, so the blocks run in parallel."""
        self.plan = plan
        self.encoder = Encoder(plan)
        out = plan.output
        self._decision = np.asarray(out.decision, dtype=np.int64)
        # the whole plan, label rule included, runs as one compiled call per batch
        ops = [(op.kernel, op.args) for op in plan.ops]
        if out.label_rule in LABEL_KERNELS:
            ops.append((out.label_rule, (self._decision,)))
        self._program = pack(ops)
        self._data = self._program.data
        self._segments = _segments(ops) if any(k == "mlp_dense" for k, _ in ops) else None
        #: a multi-output plan's targets (their label rules run in numpy, after the program)
        self._multi = _MultiReader(out) if out.outputs else None
        self._value_rule = out.label_rule == "value" or self._multi is not None
        self._nonnegative = out.label_rule == "nonnegative"
        self._width = plan.width
        #: rows per block: BLOCK_ROWS, fewer for a wide workspace (a large vocabulary), so
        #: that no batch builds more than a CHUNK_BYTES workspace per block at once
        self._block_rows = chunk_rows_for(plan.width, BLOCK_ROWS)
        self._run_program: Callable[..., int] = kernels.run_program
        self._no_label = np.empty(0, dtype=np.int64)
        self._proba_cols = _columns(out.proba) if out.proba else None
        self._extra_cols = tuple(_columns(e.cols) for e in out.extras)
        self._extras = tuple(zip(out.extras, self._extra_cols, strict=True))
        self._n_inputs = len(plan.inputs)
        self._numeric = all(i.kind == "numeric" for i in plan.inputs)
        #: rows that may take the inlined path: a numeric plan, and no layer through BLAS
        self._small_rows = (
            -1 if not self._numeric else DENSE_BLAS_ROWS - 1 if self._segments else self._block_rows
        )
        self._task, self._classes = out.task, out.classes
        #: a single numeric row's shape, the one ``score_rows`` scores without any other
        #: check (None: no such row, the plan has non-numeric inputs)
        self._one_shape = (1, self._n_inputs) if self._numeric else None
        #: what a single prediction needs that does not depend on the row: the workspace's
        #: shape, the regression value's column, the outputs' columns
        self._ws_shape = (1, self._width)
        self._value_col = int(self._decision[0]) if out.label_rule == "value" else -1
        self._one_ok = self._multi is None
        self._fill_record = self.encoder.fill_record
        self.threads = max(1, threads if threads is not None else (os.cpu_count() or 1))
        self._pool: ThreadPoolExecutor | None = None
        #: Training ranges to warn against (set by the runtime API from the model record).
        self.ranges: RangeCheck | None = None

    # -- entry points -----------------------------------------------------
    def score_records(self, records: Sequence[Mapping[str, object]]) -> AnyScores:
        """Score JSON-like records (dicts keyed by input name)."""
        n = len(records)
        if n > self._block_rows:
            return self._score_blocks(
                n, lambda ws, a, b: self.encoder.fill_records(ws, records[a:b], a), _record_at
            )
        ws = np.empty((n, self.plan.width))
        self.encoder.fill_records(ws, records)
        return self.run(ws, _record_at)

    def score_record(self, record: Mapping[str, object]) -> AnyScores:
        """Score one JSON-like record: the desktop app's case, kept short."""
        ws = np.empty(self._ws_shape)
        self._fill_record(ws[0], record)
        if self._one_ok:
            return self._score_one(ws, _NO_ROWS, _record_at)
        if self._segments is None:
            return self._score_small(ws, _NO_ROWS, _record_at)
        return self._run_small(ws, _NO_ROWS, _record_at)

    def score_rows(self, rows: Any) -> AnyScores:
        """Score a 2-D array of inputs in ``plan.input_names`` order.

        A float array is taken as it is when every input is numeric; otherwise
        pass an object array (strings for categorical inputs, None or NaN for
        missing values), checked cell by cell as records are.
        """
        if (  # the desktop app's single prediction: one row's shape says it all
            type(rows) is np.ndarray
            and rows.shape == self._one_shape
            and (rows.dtype is _F8 or rows.dtype == _F8)  # an unpickled array's is a copy
            and rows.flags.c_contiguous
            and self._one_ok
        ):
            return self._score_one(np.empty(self._ws_shape), rows, _row_at)
        if (  # a few rows, in as few Python steps as it takes
            type(rows) is np.ndarray
            and rows.ndim == 2
            and rows.dtype is _F8
            and rows.shape[0] <= self._small_rows
            and rows.shape[1] == self._n_inputs
            and rows.flags.c_contiguous
        ):
            return self._score_small(np.empty((rows.shape[0], self._width)), rows, _row_at)
        X = rows if type(rows) is np.ndarray else np.asarray(rows)
        shape = X.shape
        if len(shape) != 2 or shape[1] != self._n_inputs:
            raise InputError(
                f"expected rows of {self._n_inputs} inputs ({', '.join(self.plan.input_names)}), "
                f"got an array of shape {X.shape}"
            )
        n = shape[0]
        if n <= self._block_rows and self._numeric and X.dtype is _F8 and X.flags.c_contiguous:
            # the desktop app's single prediction, kept short: run_program copies X in
            return self._run_small(np.empty((n, self._width)), X, _row_at)
        numeric = self._numeric and X.dtype.kind in "fiu"
        if n > self._block_rows:
            if numeric:
                return self._score_blocks(n, lambda ws, a, b: _copy_into(ws, X, a, b), _row_at)
            return self._score_blocks(
                n, lambda ws, a, b: self.encoder.fill_array(ws, X[a:b], a), _row_at
            )
        ws = np.empty((n, self.plan.width))
        if numeric:  # run_program copies X into the workspace
            if X.dtype != np.float64 or not X.flags.c_contiguous:
                X = np.ascontiguousarray(X, dtype=np.float64)
            return self.run(ws, _row_at, X)
        self.encoder.fill_array(ws, X)
        return self.run(ws, _row_at)

    def _score_one(self, ws: np.ndarray, x: np.ndarray, where: Callable[[int], str]) -> Scores:
        """``_score_small`` for one row of a single-output plan (``ws``: a fresh (1, width)
        workspace; ``x``: the row to copy in, or ``_NO_ROWS`` when ``ws`` is filled), with
        ``_scores`` inlined. ``ws`` is the caller's to keep: probabilities and values
        are views of it (a single row's workspace is small), so a later call never
        changes a returned result."""
        found = None if self.ranges is None else self.ranges.rows(ws if x is _NO_ROWS else x)
        label = None if self._value_rule else np.empty(1, _I8)
        status = self._run_program(ws, x, self._data, self._no_label if label is None else label)
        if status >= 0:
            self._fail(status, ws, 0, where)
        if self._nonnegative:
            label[:] = ~(ws[:, self._decision[0]] < 0)  # type: ignore[index]
        return Scores(
            self._task,
            self._classes,
            label,
            None if self._proba_cols is None else ws[:, self._proba_cols],
            None if label is not None else ws[:, self._value_col],
            tuple([(e, ws[:, cols]) for e, cols in self._extras]) if self._extras else (),
            found,
        )

    def _score_small(self, ws: np.ndarray, X: np.ndarray, where: Callable[[int], str]) -> AnyScores:
        """``_run_small`` inlined, for a few rows of a plan with no layer through BLAS
        (``X``: numeric rows to copy in, or ``_NO_ROWS`` when ``ws`` is filled): a
        prediction's Python is about half its time on a forest (3 of 5 µs before), so
        each step counts."""
        n = ws.shape[0]
        label = None if self._value_rule else np.empty(n, dtype=np.int64)
        found = None if self.ranges is None else self.ranges.rows(ws if X is _NO_ROWS else X)
        status = self._run_program(ws, X, self._data, self._no_label if label is None else label)
        if status >= 0:
            self._fail(status, ws, 0, where)
        if self._nonnegative and label is not None:
            label[:] = ~(ws[:, self._decision[0]] < 0)
        scores = self._scores(ws, label)
        scores.warnings = found
        return scores

    def score_columns(self, columns: Any) -> AnyScores:
        """Score inputs given column by column: a mapping of input name to a 1-D array,
        such as a pandas DataFrame or the per-input feeds ONNX Runtime takes.

        Numeric columns are copied by numpy and categorical ones looked up a column at
        a time, so mixed inputs score without building an object array; extra
        columns are ignored, as in a CSV file.
        """
        cols = self.encoder.columns(columns)
        n = len(cols[0]) if cols else 0
        if n > self._block_rows:
            return self._score_blocks(
                n, lambda ws, a, b: self.encoder.fill_columns(ws, cols, a, b), _row_at
            )
        ws = np.empty((n, self.plan.width))
        self.encoder.fill_columns(ws, cols, 0, n)
        return self.run(ws, _row_at)

    def _score_blocks(
        self, n: int, fill: Callable[[np.ndarray, int, int], None], where: Callable[[int], str]
    ) -> AnyScores:
        """Score ``n`` rows a block at a time: ``fill(ws, a, b)`` writes rows ``a:b``.

        Each block gets a workspace of its own, small enough to stay in cache while
        every op runs over it; only the outputs are kept, so memory does not grow
        with the workspace's width. Blocks run on the thread pool (the kernels
        release the GIL), and a failing block reports its row of the whole batch.
        """
        out = self.plan.output
        width = self.plan.width
        proba = np.empty((n, len(out.proba))) if out.proba else None
        values = np.empty(n) if out.label_rule == "value" else None
        label = None if self._value_rule else np.empty(n, dtype=np.int64)
        extras = tuple(
            (e, np.empty((n, len(e.cols))), cols)
            for e, cols in zip(out.extras, self._extra_cols, strict=True)
        )
        decision = int(self._decision[0]) if len(self._decision) else -1
        multi = self._multi
        kept = None if multi is None else np.empty((n, len(multi.cols)))
        warned: dict[int, list[tuple[str, ...]]] = {}

        def block(a: int, b: int) -> None:
            ws = np.empty((b - a, width))
            fill(ws, a, b)
            found = self._warnings(ws)
            if found is not None:
                warned[a] = found
            self._run_block(ws, None if label is None else label[a:b], a, where)
            if proba is not None:
                proba[a:b] = ws[:, self._proba_cols]
            if values is not None:
                values[a:b] = ws[:, decision]
            for _, array, cols in extras:
                array[a:b] = ws[:, cols]
            if kept is not None:
                kept[a:b] = ws[:, multi.cols]

        self._each_block(n, block)
        if multi is not None:
            return multi.scores(kept, _gather(n, warned))
        return Scores(
            out.task,
            out.classes,
            label,
            proba,
            values,
            tuple((e, v) for e, v, _ in extras),
            _gather(n, warned),
        )

    def score_chunk(self, chunk: Chunk) -> AnyScores:
        """Score one chunk of CSV rows."""
        ws = np.empty((len(chunk.rows), self.plan.width))
        self.encoder.fill_text(ws, chunk)
        return self.run(ws, Where(chunk.source, chunk.first_row, chunk.lines))

    def iter_csv(
        self, stream: TextIO, source: str, chunk_rows: int = CHUNK_ROWS
    ) -> Iterator[tuple[Chunk, AnyScores]]:
        """Score a CSV stream chunk by chunk, so memory stays flat on large files."""
        for chunk in iter_csv_chunks(csv.reader(stream), self.plan.input_names, chunk_rows, source):
            yield chunk, self.score_chunk(chunk)

    def score_csv_file(
        self,
        src: Path,
        dst: Path | TextIO,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Score ``src`` into ``dst``: a path (written to a temporary file, then renamed)
        or an open text stream. ``progress(rows, bytes_read)`` is called after each chunk.

        A compiled plan's scorer reads the file with ``CsvReader`` (cells straight
        into workspaces) and runs each chunk's kernels on a helper thread while it
        formats the chunk before and reads the chunk after (the kernels release
        the GIL); results and errors still come in file order. The passthrough
        scorer, which shares this method, reads with its ``iter_csv``. Either
        way memory stays flat on any file size.
        """
        if not hasattr(dst, "write"):
            path = Path(dst)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                with open(tmp, "w", newline="", encoding="utf-8") as fout:
                    n = self.score_csv_file(src, fout, progress)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return n
        out: TextIO = dst  # type: ignore[assignment]
        n = 0
        with open(src, "rb") as fin:
            position: Callable[[], int]
            if isinstance(self, Scorer):
                reader = CsvReader(
                    self.encoder, fin, str(src), self.plan.width, chunk_rows_for(self.plan.width)
                )

                def overlapped() -> Iterator[AnyScores]:
                    from concurrent.futures import ThreadPoolExecutor

                    with ThreadPoolExecutor(1, thread_name_prefix="mlbundle-csv") as helper:
                        items = iter(reader)
                        pending = None
                        while True:
                            try:
                                item = next(items, None)
                            except BaseException:
                                if pending is not None:
                                    pending.result()  # an earlier chunk's error comes first
                                raise
                            running = helper.submit(self.run, *item) if item else None
                            if pending is not None:
                                yield pending.result()
                            if running is None:
                                return
                            pending = running

                batches: Iterator[AnyScores] = overlapped()
                position = lambda: reader.bytes_read  # noqa: E731
            else:
                chunks = iter_csv_chunks(
                    csv_rows(fin, str(src)), self.plan.input_names, CHUNK_ROWS, str(src)
                )
                batches = (self.score_chunk(chunk) for chunk in chunks)
                position = fin.tell
            for scores in batches:
                if n == 0:
                    csv.writer(out, lineterminator="\n").writerow(scores.header())
                out.write(scores.to_csv())
                n += len(scores)
                if progress is not None:
                    progress(n, position())
            if n == 0:
                csv.writer(out, lineterminator="\n").writerow(self.empty_header())
        return n

    def empty_header(self) -> list[str]:
        """The output header, for a file with no rows."""
        return output_columns(self.plan.output)

    # -- the kernel pipeline ---------------------------------------------
    def run(
        self, ws: np.ndarray, where: Callable[[int], str], x: np.ndarray | None = None
    ) -> AnyScores:
        """Run every op over a filled workspace and read the outputs.

        ``x``: a C-ordered float64 array of ``ws``'s rows to copy into its first
        columns first (done by the compiled call, cheaper than numpy for one row).
        Every kernel works row by row, so the workspace is run in blocks of rows
        (on the threads, for a large batch) with the same result as in one piece.
        """
        n = ws.shape[0]
        if x is not None and (x.shape[0] != n or x.shape[1] > ws.shape[1]):
            raise ValueError(f"{x.shape} rows to copy into a workspace of shape {ws.shape}")
        if n <= BLOCK_ROWS:
            return self._run_small(ws, _NO_ROWS if x is None else x, where)
        found = self._warnings(ws if x is None else x)
        label = None if self._value_rule else np.empty(n, dtype=np.int64)
        self._each_block(
            n,
            lambda a, b: self._run_block(
                ws[a:b],
                None if label is None else label[a:b],
                a,
                where,
                None if x is None else x[a:b],
            ),
        )
        scores = self._scores(ws, label)
        scores.warnings = found
        return scores

    def _run_small(self, ws: np.ndarray, x: np.ndarray, where: Callable[[int], str]) -> AnyScores:
        """``run`` for at most ``BLOCK_ROWS`` rows: one compiled call, no closure, no pool.

        This is a single prediction's whole path after its input checks, so it does
        the least Python it can: two allocations, the call, the outputs' views."""
        label = None if self._value_rule else np.empty(ws.shape[0], dtype=np.int64)
        found = None if self.ranges is None else self._warnings(ws if x is _NO_ROWS else x)
        if self._segments is None or ws.shape[0] < DENSE_BLAS_ROWS:
            self._run_block(ws, label, 0, where, x)
        else:
            with _ONE_BLAS_THREAD.hold():
                self._run_block(ws, label, 0, where, x)
        scores = self._scores(ws, label)
        scores.warnings = found
        return scores

    def _warnings(self, inputs: np.ndarray) -> list[tuple[str, ...]] | None:
        """Per row, the inputs outside the training range, checked before the kernels run
        (they may reuse the input columns)."""
        ranges = self.ranges
        return None if ranges is None else ranges.rows(inputs)

    def _scores(self, ws: np.ndarray, label: np.ndarray | None) -> AnyScores:
        """The outputs of a run workspace: views of its columns (values copied, so the
        workspace is not kept alive by a regression's results)."""
        if self._multi is not None:
            return self._multi.scores(ws[:, self._multi.cols], None)
        proba = None if self._proba_cols is None else ws[:, self._proba_cols]
        extras = tuple([(e, ws[:, cols]) for e, cols in self._extras]) if self._extras else ()
        if label is None:
            return Scores(
                self._task, self._classes, None, proba, ws[:, self._decision[0]].copy(), extras
            )
        return Scores(self._task, self._classes, label, proba, None, extras)

    def _fail(
        self, status: int, ws: np.ndarray, start: int, where: Callable[[int], str]
    ) -> NoReturn:
        """Raise the input error behind ``run_program``'s status, naming the batch's row."""
        n, status = self._program.failure(status)
        op = self.plan.ops[n]
        raise self._explain(op, op.args, ws, status, lambda r: where(start + r))

    def _run_block(
        self,
        ws: np.ndarray,
        label: np.ndarray | None,
        start: int,
        where: Callable[[int], str],
        x: np.ndarray | None = None,
    ) -> None:
        """The packed plan over ``ws`` (rows ``start:`` of the batch), ``label`` its rows'
        labels; ``x``: rows to copy into the first columns first (already checked)."""
        if self._segments is not None and ws.shape[0] >= DENSE_BLAS_ROWS:
            self._run_segments(ws, label, start, where, x)
            return
        status = self._run_program(
            ws,
            _NO_ROWS if x is None else x,
            self._data,
            self._no_label if label is None else label,
        )
        if status >= 0:
            self._fail(status, ws, start, where)
        if self._nonnegative and label is not None:
            label[:] = ~(ws[:, self._decision[0]] < 0)

    def _run_segments(
        self,
        ws: np.ndarray,
        label: np.ndarray | None,
        start: int,
        where: Callable[[int], str],
        x: np.ndarray | None,
    ) -> None:
        """``_run_block`` for a plan with dense layers, on enough rows for BLAS to pay: the
        ops between layers run packed as usual, each layer is one numpy matrix product."""
        assert self._segments is not None
        whole = _ONE_BLAS_THREAD.usable()
        rows = _NO_ROWS if x is None else x
        if rows.shape[1] and type(self._segments[0]) is _Dense:
            ws[:, : rows.shape[1]] = rows
            rows = _NO_ROWS
        out = self._no_label if label is None else label
        for seg in self._segments:
            if type(seg) is _Dense:
                seg.run(ws, whole)
                continue
            program, first = seg
            status = self._run_program(ws, rows, program.data, out)
            rows = _NO_ROWS
            if status >= 0:
                n, status = program.failure(status)
                op = self.plan.ops[first + n]
                raise self._explain(op, op.args, ws, status, lambda r: where(start + r))
        if self._nonnegative and label is not None:
            label[:] = ~(ws[:, self._decision[0]] < 0)

    def _each_block(self, n: int, block: Callable[[int, int], None]) -> None:
        """``block(a, b)`` for rows ``a:b`` of ``n``, ``BLOCK_ROWS`` at a time (fewer on a
        wide plan, ``_block_rows``): on the thread pool when there is more than one block
        (the kernels release the GIL).
        Blocks are collected in row order, so the first failing block's error is raised."""
        size = self._block_rows
        with self._blas_held(n):
            if n <= size:
                block(0, n)
                return
            starts = range(0, n, size)
            if self.threads == 1:
                for a in starts:
                    block(a, min(a + size, n))
                return
            for _ in self._executor().map(lambda a: block(a, min(a + size, n)), starts):
                pass

    def _blas_held(self, n: int) -> AbstractContextManager[None]:
        """BLAS on one thread for a batch whose layers go through it: on one thread of
        ours too, BLAS threads of its own were slower on a busy machine (0.07-0.60 s for
        the same 50,000 rows, against 0.03-0.04 s held)."""
        if self._segments is None or n < DENSE_BLAS_ROWS:
            return nullcontext()
        return _ONE_BLAS_THREAD.hold()

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            # imported here: a single prediction (the app's start) never needs it
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mlbundle")
        return self._pool

    def close(self) -> None:
        """Stop the worker threads (they also stop with the process)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

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


class _Dense:
    """One ``mlp_dense`` layer as numpy computes it: ``act(ws[:, src] @ coef + intercept)``,
    the matrix product and in-place activations of scikit-learn's ``_forward_pass_fast``
    (``expit`` as ``1 / (1 + exp(-z))``, the kernel's and scipy's formula)."""

    __slots__ = ("activation", "coef", "dst", "intercept", "rows", "src")

    def __init__(self, args: tuple[Any, ...]) -> None:
        src, dst, coef, intercept, activation = args
        self.src = _columns(src)
        self.dst = _columns(dst)
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept = np.ascontiguousarray(intercept, dtype=np.float64)
        self.activation = int(activation)
        # rows per product: OpenBLAS runs a product of fewer than 65536 * 4 multiply-adds on
        # the calling thread, so the scorer's own threads do not each start BLAS threads
        # that fight over the same cores (ten times slower on a busy 2-core machine)
        self.rows = max(8, (_BLAS_ONE_THREAD - 1) // max(1, coef.shape[0] * coef.shape[1]))

    def run(self, ws: np.ndarray, whole: bool) -> None:
        """``whole``: one product per block (BLAS can be held to one thread)."""
        n = ws.shape[0]
        step = n if whole else self.rows
        for a in range(0, n, step):
            self._rows(ws[a : min(n, a + step)])

    def _rows(self, ws: np.ndarray) -> None:
        z = ws[:, self.src] @ self.coef
        # the last step writes into the workspace when its columns are a view (they
        # are consecutive), which saves a pass over the layer's output
        into = type(self.dst) is slice
        out = ws[:, self.dst] if into else z
        act = self.activation
        if act == 0:
            np.add(z, self.intercept, out=out)
        else:
            z += self.intercept
        if act == 1:
            np.negative(z, out=z)
            np.exp(z, out=z)
            z += 1.0
            np.divide(1.0, z, out=out)
        elif act == 2:
            np.tanh(z, out=out)
        elif act == 3:
            np.maximum(z, 0.0, out=out)
        elif act == 4:
            np.exp(z, out=out)
        if not into:
            ws[:, self.dst] = z


#: OpenBLAS's ``SMP_THRESHOLD_MIN * GEMM_MULTITHREAD_THRESHOLD``: below it, one thread.
_BLAS_ONE_THREAD = 65536 * 4


class _OneBlasThread:
    """While a batch's blocks run on the scorer's threads, BLAS runs on each calling
    thread only, so a block's layer is one matrix product.

    The scorer already shares a batch out to one thread per core; BLAS threads on top
    of that fight over the same cores, and products cut small enough for OpenBLAS to
    stay on one thread by itself cost Python per piece (held to one thread, whole
    blocks: 1.4x the MLP's batch throughput in bench/scoring.py). The limit is
    process-wide, so it is set by ``threadpoolctl`` (which knows each BLAS's call and
    lets only one Python thread change OpenBLAS at a time) in the thread that hands out
    the blocks, and given back when they are done: a batch running meanwhile on
    another thread shares it. Without threadpoolctl, or a BLAS it knows, layers are
    cut small as before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._controller: Any = None
        self._usable: bool | None = None
        self._held = False

    def usable(self) -> bool:
        """Whether a block's layer may be one product (BLAS can be held to one thread)."""
        if self._usable is None:
            with self._lock:
                if self._usable is None:
                    self._usable = self._start()
        return self._usable

    @contextmanager
    def hold(self) -> Iterator[None]:
        """BLAS on one thread until the batch is done, unless another batch holds it."""
        if not self.usable():
            yield
            return
        with self._lock:
            mine, self._held = not self._held, True
        if not mine:
            yield
            return
        try:
            with self._controller.limit(limits=1, user_api="blas"):
                yield
        finally:
            with self._lock:
                self._held = False

    def _start(self) -> bool:
        try:
            # imported on the first batch of an MLP: a start never pays for it
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return False
        self._controller = ThreadpoolController().select(user_api="blas")
        return bool(self._controller.lib_controllers)


_ONE_BLAS_THREAD = _OneBlasThread()


def _segments(ops: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
    """The ops cut at each ``mlp_dense``: ``(packed ops, index of the first)`` for each run
    of other ops, a ``_Dense`` for each layer, in plan order."""
    out: list[Any] = []
    run: list[tuple[str, tuple[Any, ...]]] = []
    first = 0
    for i, (kernel, args) in enumerate(ops):
        if kernel == "mlp_dense":
            if run:
                out.append((pack(run), first))
            out.append(_Dense(args))
            run, first = [], i + 1
        else:
            run.append((kernel, args))
    if run:
        out.append((pack(run), first))
    return out


#: ``run_program``'s ``x`` when the workspace is already filled.
_NO_ROWS = np.empty((0, 0))
_F8 = np.dtype(np.float64)
_I8 = np.dtype(np.int64)


def _gather(n: int, found: dict[int, list[tuple[str, ...]]]) -> list[tuple[str, ...]] | None:
    """Per-block warnings (by first row) as one list for ``n`` rows; None: none at all."""
    if not found:
        return None
    out: list[tuple[str, ...]] = [()] * n
    for a, rows in found.items():
        out[a : a + len(rows)] = rows
    return out


def _record_at(r: int) -> str:
    return f"record {r + 1}"


def _copy_into(ws: np.ndarray, X: np.ndarray, a: int, b: int) -> None:
    ws[:, : X.shape[1]] = X[a:b]


def _row_at(r: int) -> str:
    return f"row {r + 1}"


def _columns(cols: Sequence[int]) -> slice | np.ndarray:
    """Workspace columns as a slice when they are consecutive: a view, not a gather
    (the outputs of one op always are, and a single row's copy costs more than it scores)."""
    if len(cols) and list(cols) == list(range(cols[0], cols[0] + len(cols))):
        return slice(cols[0], cols[0] + len(cols))
    return np.asarray(cols, dtype=np.int64)
