"""Score whole files: CSV or JSON Lines in, CSV or JSON Lines out.

A long file with one bad row in it must not lose the other rows. By default a
row that cannot be scored keeps its place in the output with its reason in an
``error`` column (an ``error`` key in JSON Lines) and every other row is
scored; ``strict`` stops at the first bad row instead and writes nothing. The
two formats are read alike: inputs by name, other columns or fields ignored
(and reported once), a missing value empty or NA in CSV and null in JSON.

Files stream in chunks, so memory stays flat on any size; a path is written to
a temporary file beside it and renamed at the end, so an error, a cancel or an
interrupt leaves the output as it was.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, BinaryIO, TextIO

import numpy as np

from mlbundle_runtime.inputs import (
    BOM,
    Chunk,
    CsvReader,
    InputError,
    PlainChunk,
    RawLines,
    RestOfFile,
    _check_header,
    _Lines,
    chunk_rows_for,
)

#: Rows per chunk: as the file scorer's (large enough to amortise a kernel call).
CHUNK_ROWS = 8192
#: Extensions of the two formats (anything else needs ``--format``).
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FORMAT_NAMES = ("csv", "jsonl")
#: Lone surrogates: where ``surrogateescape`` put a byte that is not UTF-8.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
#: The columns every CSV output ends with (JSON Lines: keys).
WARNINGS, ERROR, UNCERTAIN = "warnings", "error", "uncertain"


class Cancelled(Exception):
    """The caller's ``cancel`` event was set: the work stopped and wrote nothing."""


@dataclass(frozen=True)
class FileResult:
    """What a file's scoring did: ``rows`` read, ``scored``, ``failed`` (their reasons are
    in the output's ``error`` column), ``warned`` (scored, with an out-of-range warning),
    the ``ignored`` columns or fields, and the first failure's reason."""

    rows: int
    scored: int
    failed: int
    warned: int
    output: str
    ignored: tuple[str, ...] = ()
    first_error: str | None = None


def format_of(path: str | os.PathLike[str], given: str | None, option: str) -> str | None:
    """The format of ``path``: ``given`` (csv or jsonl), else by its extension; None for
    ``-`` (a stream), which the caller decides."""
    if given is not None:
        if given not in FORMAT_NAMES:
            raise InputError(f"{option} {given!r}: expected one of {', '.join(FORMAT_NAMES)}")
        return given
    if str(path) == "-":
        return None
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        suffix = Path(path).suffix
        raise InputError(
            f"{path}: cannot tell CSV from JSON Lines by the extension "
            f"{repr(suffix) if suffix else '(none)'}; name the file .csv or .jsonl, "
            f"or pass {option} csv|jsonl"
        )
    return fmt


def _sniff(stream: BinaryIO) -> tuple[str, BinaryIO]:
    """A stream's format from its first bytes (JSON Lines when it starts with ``{``), and
    the stream to read, those bytes still in it."""
    if not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream)  # type: ignore[arg-type]
    head = stream.peek(64)  # type: ignore[attr-defined]
    return ("jsonl" if head.lstrip(BOM + b" \t\r\n").startswith(b"{") else "csv"), stream


# -- reading ---------------------------------------------------------------
def _lines(stream: BinaryIO, prefix: bytes = b"", start: bool = True) -> _Lines:
    """The lines of ``stream`` (``prefix`` first) as text, a byte that is not UTF-8 left
    for its row to name; ``start``: at the file's start, where a byte-order mark may be."""
    if start:
        head = stream.read(len(BOM))
        prefix = b"" if head == BOM else head
    return _Lines(prefix, stream, "", 1, tolerant=True)


def _not_utf8(line: int, cells: Sequence[str], header: Sequence[str] | None) -> str | None:
    """Why the row on ``line`` fails if a cell holds a byte that is not UTF-8 (naming the
    column once the header is known); None if every cell is clean."""
    for k, cell in enumerate(cells):
        found = _NOT_UTF8.search(cell)
        if found:
            byte = ord(found.group()) - 0xDC00
            column = f", column {header[k]!r}" if header and k < len(header) else ""
            return (
                f"line {line}{column}: byte 0x{byte:02x} is not UTF-8 text; save the file as "
                'UTF-8 (in a spreadsheet: "CSV UTF-8")'
            )
    return None


@dataclass
class _Batch:
    """A chunk of rows: where each is, the kept values, the inputs of the rows that
    could be read, and the reasons of those that could not (by row index)."""

    lines: list[int]
    keep: list[list[Any]]  # per kept column, one value per row
    errors: dict[int, str]
    columns: list[list[Any]] | None = None  # CSV: texts per input, for the rows read
    records: list[dict[str, Any]] | None = None  # JSON Lines: the rows read
    good: list[int] | None = None  # the rows read (indexes into lines)
    ws: np.ndarray | None = None  # the rows' inputs already in a workspace (every row read)


class _CsvSource:
    """CSV rows in chunks, a bad row (wrong number of cells, not UTF-8, a cell over the
    csv module's size limit) becoming that row's error instead of the file's."""

    def __init__(
        self,
        stream: BinaryIO,
        source: str,
        names: Sequence[str],
        keep: Sequence[str],
        handover: RestOfFile | None = None,
    ) -> None:
        """``handover``: the rest of a file a ``CsvReader`` began (its header read, or not)."""
        self.source, self.names, self.keep = source, names, keep
        prefix, known, line_no = (
            (b"", None, 1)
            if handover is None
            else (handover.prefix, handover.known, handover.line_no)
        )
        self.lines = _lines(stream, prefix, start=handover is None)
        self.reader = csv.reader(self.lines)
        self._offset = line_no - 1  # lines before the reader's first
        self._ends: list[int] = []
        if known is None:
            header, self.index = _check_header(self._header(), names, source)
        else:
            header, self.index = known
        missing = [k for k in keep if k not in header]
        if missing:
            raise InputError(
                f"{source}: line 1: --keep {', '.join(missing)}: no such column "
                f"(columns: {', '.join(header)})"
            )
        self.header = header
        self.keep_index = [header.index(k) for k in keep]
        self.ignored = _ignored(header, names, keep)

    @property
    def bytes_read(self) -> int:
        return self.lines.delivered

    def _header(self) -> list[str]:
        while True:
            try:
                row = next(self.reader)
            except StopIteration:
                raise InputError(
                    f"{self.source}: empty file; expected a header row with {', '.join(self.names)}"
                ) from None
            except csv.Error as exc:
                raise InputError(f"{self.source}: line 1: {exc}") from None
            if row:
                bad = _not_utf8(self.reader.line_num, row, None) if self.lines.dirty else None
                if bad:
                    raise InputError(f"{self.source}: {bad}")
                return row

    def _records(self) -> Iterator[list[str] | csv.Error]:
        """The csv records, and a csv error in place of the record it stopped (csv reads
        on after one); each one's last line is appended to ``self._ends``."""
        reader, ends, offset = self.reader, self._ends, self._offset
        while True:
            try:
                for row in reader:
                    ends.append(reader.line_num + offset)
                    yield row
                return
            except csv.Error as exc:
                ends.append(reader.line_num + offset)
                yield exc

    def batches(self, chunk_rows: int) -> Iterator[_Batch]:
        records = self._records()
        previous = self.reader.line_num + self._offset  # the header's last line
        while True:
            block = list(islice(records, chunk_rows))
            if not block:
                return
            ends = self._ends
            starts = [previous + 1, *(e + 1 for e in ends[: len(block) - 1])]
            previous = ends[len(block) - 1]
            del ends[: len(block)]
            batch = _rows_batch(
                block, starts, self.lines.dirty, self.header, self.index, self.keep_index
            )
            if batch is not None:
                yield batch


def _rows_batch(
    block: list[list[str] | csv.Error],
    starts: list[int],
    dirty: bool,
    header: list[str],
    index: list[int],
    keep_index: list[int],
) -> _Batch | None:
    """The batch of csv records ``block`` (their first lines ``starts``), the inputs at
    ``index`` of ``header`` and the kept columns at ``keep_index``; ``dirty``: a cell
    may hold a byte that is not UTF-8. None when every record was empty."""
    width = len(header)
    try:
        plain = not dirty and set(map(len, block)) == {width}
    except TypeError:  # a csv error in the block
        plain = False
    if plain:  # the common case, column by column in C
        rows: list[list[str]] = block  # type: ignore[assignment]
        return _Batch(
            starts,
            [list(map(itemgetter(k), rows)) for k in keep_index],
            {},
            [list(map(itemgetter(i), rows)) for i in index],
            None,
            list(range(len(rows))),
        )
    batch = _Batch([], [[] for _ in keep_index], {}, [[] for _ in index], None, [])
    n = 0
    for row, line in zip(block, starts, strict=True):
        if isinstance(row, csv.Error):
            batch.errors[n] = f"line {line}: {row}"
            row = []
        elif not row:
            continue  # an empty line
        elif len(row) != width:
            batch.errors[n] = f"line {line} has {len(row)} cells, the header has {width}"
        elif dirty and (bad := _not_utf8(line, row, header)):
            batch.errors[n] = bad
        else:
            for cells, i in zip(batch.columns, index, strict=True):  # type: ignore[arg-type]
                cells.append(row[i])
            batch.good.append(n)  # type: ignore[union-attr]
        batch.lines.append(line)
        for kept, k in zip(batch.keep, keep_index, strict=True):
            kept.append(row[k] if k < len(row) else "")
        n += 1
    return batch if n else None


class _FastCsvSource:
    """A CSV file through ``CsvReader`` (cells parsed in bulk with numpy) for a compiled
    model: a chunk it reads whole comes filled, a chunk with a bad row comes as its
    bytes and is read line by line here, and a file that needs the csv module from
    some line on (a quote, a lone CR) is handed over to ``_CsvSource`` there."""

    def __init__(
        self, stream: BinaryIO, source: str, scorer: Any, keep: Sequence[str], chunk_rows: int
    ) -> None:
        self.stream, self.source, self.keep = stream, source, keep
        self.names = scorer.plan.input_names
        self.reader = CsvReader(
            scorer.encoder, stream, source, scorer.plan.width, chunk_rows, True, keep
        )
        self.rest: _CsvSource | None = None

    @property
    def bytes_read(self) -> int:
        return self.reader.bytes_read + (self.rest.bytes_read if self.rest else 0)

    @property
    def ignored(self) -> tuple[str, ...]:
        if self.rest is not None:
            return self.rest.ignored
        header = self.reader.header
        return _ignored(header, self.names, self.keep) if header else ()

    def batches(self, chunk_rows: int) -> Iterator[_Batch]:
        for item in self.reader:
            if isinstance(item, PlainChunk):
                n = len(item.lines)
                yield _Batch(item.lines, item.kept, {}, None, None, list(range(n)), item.ws)
            elif isinstance(item, RawLines):
                batch = self._raw(item)
                if batch is not None:
                    yield batch
            else:
                assert isinstance(item, RestOfFile)
                self.rest = _CsvSource(self.stream, self.source, self.names, self.keep, item)
                yield from self.rest.batches(chunk_rows)
                return

    def _raw(self, item: RawLines) -> _Batch | None:
        """A chunk of whole lines without quotes, one record each (a line apiece only when
        csv refuses one)."""
        data = item.data
        try:
            text, dirty = data.decode("utf-8"), False
        except UnicodeDecodeError:
            text, dirty = data.decode("utf-8", "surrogateescape"), True
        lines = io.StringIO(text, newline="").readlines()
        block: list[list[str] | csv.Error]
        try:  # no quote: a record per line, an empty one for a blank line
            block = list(csv.reader(lines))  # type: ignore[arg-type]
        except csv.Error:  # a cell over the size limit: its line alone fails
            block = []
            for line in lines:
                try:
                    block.append(next(csv.reader([line]), []))
                except csv.Error as exc:
                    block.append(exc)
        header = self.reader.header
        assert header is not None
        starts = list(range(item.line_no, item.line_no + len(lines)))
        index = [header.index(n) for n in self.names]
        return _rows_batch(block, starts, dirty, header, index, self.reader.keep_index)


def _ignored(header: Sequence[str], names: Sequence[str], keep: Sequence[str]) -> tuple[str, ...]:
    """The columns (fields) neither an input nor kept: reported, once, as ignored."""
    used = set(names) | set(keep)
    return tuple(h for h in header if h not in used)


class _JsonLinesSource:
    """JSON Lines records in chunks: one JSON object per line, blank lines skipped; a line
    that is not JSON, not an object or lacks an input becomes that row's error."""

    def __init__(self, stream: BinaryIO, source: str, names: Sequence[str], keep: Sequence[str]):
        self.source, self.names, self.keep = source, names, keep
        self.lines = _lines(stream)
        self.ignored_set: dict[str, None] = {}
        self._names = set(names) | set(keep)

    @property
    def ignored(self) -> tuple[str, ...]:
        return tuple(self.ignored_set)

    @property
    def bytes_read(self) -> int:
        return self.lines.delivered

    def batches(self, chunk_rows: int) -> Iterator[_Batch]:
        it = iter(self.lines)
        line_no = 0
        names = self.names
        expected = ", ".join(names)
        while True:
            batch = _Batch([], [[] for _ in self.keep], {}, None, [], [])
            rows = 0
            for text in it:
                line_no += 1
                if not text.strip():
                    continue
                batch.lines.append(line_no)
                record: Any = None
                bad = _not_utf8(line_no, [text], None) if self.lines.dirty else None
                if bad:
                    batch.errors[rows] = bad
                else:
                    try:
                        record = json.loads(text)
                    except ValueError as exc:
                        batch.errors[rows] = f"line {line_no}: not valid JSON ({exc})"
                    except RecursionError:
                        batch.errors[rows] = f"line {line_no}: JSON nested too deeply"
                if isinstance(record, dict):
                    for kept, k in zip(batch.keep, self.keep, strict=True):
                        kept.append(record.get(k))
                    missing = [n for n in names if n not in record]
                    if missing:
                        batch.errors[rows] = (
                            f"line {line_no}: missing field(s) {', '.join(missing)}; expected "
                            f"fields: {expected} (use null for a missing value)"
                        )
                    else:
                        if len(record) > len(names):
                            for k in record:
                                if k not in self._names and k not in self.ignored_set:
                                    self.ignored_set[str(k)] = None
                        batch.records.append(record)  # type: ignore[union-attr]
                        batch.good.append(rows)  # type: ignore[union-attr]
                else:
                    for kept in batch.keep:
                        kept.append(None)
                    if rows not in batch.errors:
                        batch.errors[rows] = (
                            f"line {line_no}: expected a JSON object with fields {expected}, "
                            f"got {_json_type(record)}"
                        )
                rows += 1
                if rows >= chunk_rows:
                    break
            if not rows:
                return
            yield batch


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


# -- scoring -----------------------------------------------------------------
class _Scoring:
    """Fill and score one batch: in bulk, and row by row only when the bulk pass finds a
    bad row (so that one bad row costs its chunk a second, slower pass, not the file)."""

    def __init__(self, scorer: Any) -> None:
        self.scorer = scorer
        self.encoder = getattr(scorer, "encoder", None)
        self.width = scorer.plan.width
        self.k = len(scorer.plan.inputs)

    def run(self, batch: _Batch) -> tuple[Any, list[int]]:
        """The scores of the batch's good rows, and which rows they are (batch indexes);
        rows found bad on the way get their reason in ``batch.errors``."""
        if not hasattr(self.scorer, "run"):
            return self._run_rows(batch)
        good = batch.good or []
        lines = batch.lines
        if batch.ws is not None:
            ws = batch.ws
        else:
            ws = np.empty((len(good), self.width))
            bad = self._fill(ws, batch, _Where([lines[r] for r in good]))
            if bad:
                for i, reason in bad.items():
                    batch.errors[good[i]] = reason
                kept = [i for i in range(len(good)) if i not in bad]
                ws, good = ws[kept], [good[i] for i in kept]
        where = _Where([lines[r] for r in good])
        inputs = ws[:, : self.k].copy()  # the kernels may reuse these columns
        try:
            return self.scorer.run(ws, where), good
        except InputError:
            pass
        kept = self._runnable(inputs, [lines[r] for r in good], range(len(good)), batch, good)
        ws = np.empty((len(kept), self.width))
        ws[:, : self.k] = inputs[kept]
        good = [good[i] for i in kept]
        return self.scorer.run(ws, _Where([lines[r] for r in good])), good

    def _runnable(
        self, inputs: np.ndarray, lines: list[int], rows: range, batch: _Batch, good: list[int]
    ) -> list[int]:
        """Which of ``rows`` a step of the model accepts, found by halving: a block that
        runs is kept whole, so a few refused rows cost a few runs, not one per row."""
        ws = np.empty((len(rows), self.width))
        ws[:, : self.k] = inputs[rows.start : rows.stop]
        try:
            self.scorer.run(ws, _Where(lines[rows.start : rows.stop]))
            return list(rows)
        except InputError as exc:
            if len(rows) == 1:
                batch.errors[good[rows.start]] = str(exc)
                return []
        half = rows.start + len(rows) // 2
        return self._runnable(inputs, lines, range(rows.start, half), batch, good) + (
            self._runnable(inputs, lines, range(half, rows.stop), batch, good)
        )

    def _run_rows(self, batch: _Batch) -> tuple[Any, list[int]]:
        """``run`` for a scorer without a workspace (passthrough: scikit-learn itself),
        through its own chunk and record entry points."""
        good = batch.good or []
        at = {r: i for i, r in enumerate(good)}
        names = self.scorer.plan.input_names

        def score(rows: list[int]) -> Any:
            lines = [batch.lines[r] for r in rows]
            if batch.columns is not None:
                columns = [[cells[at[r]] for r in rows] for cells in batch.columns]
                return self.scorer.score_chunk(Chunk("", [], 0, lines, columns, []))
            records = batch.records or []
            return self.scorer.score_records([{n: records[at[r]][n] for n in names} for r in rows])

        try:
            return score(good), good
        except InputError:
            pass
        kept = []
        for r in good:
            try:
                score([r])
            except InputError as exc:
                reason = str(exc).removeprefix(": ")
                batch.errors[r] = f"line {batch.lines[r]}: {reason.removeprefix('record 1, ')}"
            else:
                kept.append(r)
        return score(kept), kept

    def _fill(self, ws: np.ndarray, batch: _Batch, where: _Where) -> dict[int, str]:
        """Fill ``ws`` with the batch's good rows; return the reason of each row (by index
        into them) that cannot be read. A column goes in bulk and, only if one of its
        cells is bad, cell by cell, so a bad row costs its column a slower pass."""
        encoder = self.encoder
        bad: dict[int, str] = {}
        if batch.columns is not None:
            for j, cells in enumerate(batch.columns):
                if j in encoder.text:  # CSV cells are always text: nothing to refuse
                    encoder._fill_docs(ws, j, cells, 0, "row")
                    continue
                try:
                    ws[:, j] = encoder._text_column(cells, j, where)
                    continue
                except InputError:
                    pass
                column = ws[:, j]
                for i, cell in enumerate(cells):
                    try:
                        column[i] = encoder._text_value(cell, j, i, where)
                    except InputError as exc:
                        bad.setdefault(i, str(exc))  # the first column's, as row by row
                        column[i] = math.nan
            return bad
        names = encoder.names
        for i, record in enumerate(batch.records or []):
            row = ws[i]
            line = where.lines[i]
            try:
                for j, name in enumerate(names):
                    row[j] = encoder._value(record[name], j, line, "line")
                for j in encoder.text:
                    encoder._fill_docs(ws[i : i + 1], j, [record[names[j]]], 0, "line")
            except InputError as exc:
                bad[i] = str(exc)
        return bad


class _Where:
    """Names row ``r`` of a batch as ``line N``: the file is named once, elsewhere."""

    __slots__ = ("lines",)

    def __init__(self, lines: Sequence[int]) -> None:
        self.lines = lines

    def __call__(self, r: int) -> str:
        return f"line {self.lines[r]}"


# -- writing ---------------------------------------------------------------
def _csv_cell(value: Any) -> str:
    """One cell as csv writes it (quoted when it holds a separator, quote or line end)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if any(c in text for c in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


class _CsvWriter:
    def __init__(
        self, out: TextIO, keep: Sequence[str], outputs: Sequence[str], uncertain_below: Any
    ) -> None:
        self.out = out
        self.keep = keep
        flags = [UNCERTAIN] if uncertain_below is not None else []
        self.empty_outputs = "," * (len(outputs) + len(flags) - 1)
        header = [*keep, *outputs, *flags, WARNINGS, ERROR]
        self.out.write(",".join(_csv_cell(h) for h in header) + "\n")

    def write(self, batch: _Batch, scores: Any, good: list[int], uncertain_below: Any) -> None:
        n = len(batch.lines)
        texts = scores.csv_texts() if len(good) else []
        if uncertain_below is not None and len(good):  # the uncertain column, after outputs
            flags = np.where(scores.proba.max(axis=1) < uncertain_below, ",true", ",false")
            texts = [t + f for t, f in zip(texts, flags.tolist(), strict=True)]
        warned = scores.warnings
        body: list[str] = [""] * n
        for i, r in enumerate(good):
            w = warned[i] if warned is not None else ()
            body[r] = texts[i] + ("," + _csv_cell("; ".join(w)) + "," if w else ",,")
        for r, reason in batch.errors.items():
            body[r] = self.empty_outputs + ",," + _csv_cell(reason)
        if self.keep:
            prefix = [",".join(_csv_cell(kept[r]) for kept in batch.keep) + "," for r in range(n)]
            body = [p + b for p, b in zip(prefix, body, strict=True)]
        self.out.write("\n".join(body) + "\n")


class _JsonLinesWriter:
    def __init__(
        self, out: TextIO, keep: Sequence[str], outputs: Sequence[str], uncertain_below: Any
    ) -> None:
        self.out = out
        self.keep = keep

    def write(self, batch: _Batch, scores: Any, good: list[int], uncertain_below: Any) -> None:
        n = len(batch.lines)
        rows: list[dict[str, Any]] = [{} for _ in range(n)]
        if self.keep:
            for r in range(n):
                rows[r] = {k: kept[r] for k, kept in zip(self.keep, batch.keep, strict=True)}
        warned = scores.warnings
        top = scores.proba.max(axis=1) if uncertain_below is not None and len(good) else None
        for i, r in enumerate(good):
            row = rows[r]
            row.update(scores.record(i))
            if top is not None and top[i] < uncertain_below:
                row["uncertain"] = True
            row[WARNINGS] = list(warned[i]) if warned is not None else []
        for r, reason in batch.errors.items():
            rows[r][ERROR] = reason
        dumps = json.dumps
        self.out.write("".join(dumps(row, ensure_ascii=False) + "\n" for row in rows))


# -- the job -------------------------------------------------------------------
def score_file(
    scorer: Any,
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    input_format: str | None = None,
    output_format: str | None = None,
    keep: Sequence[str] = (),
    strict: bool = False,
    uncertain_below: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> FileResult:
    """Score ``src`` into ``dst`` (paths; ``-`` is stdin or stdout); see the module's
    docstring for the bad-row policy. Raises ``InputError`` for a file that cannot be
    read as a whole (no such file, a header without the inputs) or written, and, with
    ``strict``, for the first bad row; ``Cancelled`` when ``cancel`` is set."""
    src_name, dst_name = str(src), str(dst)
    chunk_rows = chunk_rows_for(scorer.plan.width, chunk_rows)  # wide text plans: fewer rows
    if dst_name != "-" and Path(dst_name).is_dir():
        raise InputError(f"{dst_name}: is a folder; give a file name for the scores")
    given_in = format_of(src_name, input_format, "--input-format")
    given_out = format_of(dst_name, output_format, "--format")
    if src_name != "-" and dst_name != "-" and _same_file(src_name, dst_name):
        raise InputError(f"{dst_name}: is the input file; write the scores to another file")
    with _open_input(src_name) as fin:
        source = "stdin" if src_name == "-" else src_name
        fmt_in = given_in
        if fmt_in is None:
            fmt_in, fin = _sniff(fin)
        fmt_out = given_out or fmt_in
        reader: _CsvSource | _FastCsvSource | _JsonLinesSource
        if fmt_in == "jsonl":
            reader = _JsonLinesSource(fin, source, scorer.plan.input_names, tuple(keep))
        elif hasattr(scorer, "encoder"):
            reader = _FastCsvSource(fin, source, scorer, tuple(keep), chunk_rows)
        else:
            reader = _CsvSource(fin, source, scorer.plan.input_names, tuple(keep))
        with _output(dst_name, buffered=strict) as out:
            writer_kind = _CsvWriter if fmt_out == "csv" else _JsonLinesWriter
            writer = writer_kind(out, tuple(keep), scorer.empty_header(), uncertain_below)
            scoring = _Scoring(scorer)
            rows = scored = failed = warned = 0
            first_error: str | None = None
            for batch in reader.batches(chunk_rows):
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"scoring {source} was cancelled; nothing was written")
                scores, good = scoring.run(batch)
                if batch.errors:
                    if strict:
                        r = min(batch.errors)
                        raise InputError(f"{source}: {batch.errors[r]}")
                    if first_error is None:
                        first_error = batch.errors[min(batch.errors)]
                writer.write(batch, scores, good, uncertain_below)
                rows += len(batch.lines)
                scored += len(good)
                failed += len(batch.errors)
                if scores.warnings is not None:
                    warned += sum(1 for w in scores.warnings if w)
                if progress is not None:
                    progress(rows, reader.bytes_read)
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"scoring {source} was cancelled; nothing was written")
    return FileResult(
        rows=rows,
        scored=scored,
        failed=failed,
        warned=warned,
        output="stdout" if dst_name == "-" else dst_name,
        ignored=tuple(reader.ignored),
        first_error=first_error,
    )


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


class _open_input:  # noqa: N801 - used as a context manager, like open()
    """The input as a binary stream, with file problems as one-line ``InputError``s."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.file: IO[bytes] | None = None

    def __enter__(self) -> BinaryIO:
        if self.name == "-":
            return sys.stdin.buffer
        try:
            self.file = open(self.name, "rb")  # noqa: SIM115 - closed in __exit__
        except OSError as exc:
            raise InputError(f"{self.name}: {_os_reason(exc, 'read')}") from None
        return self.file  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        if self.file is not None:
            self.file.close()


class _output:  # noqa: N801 - used as a context manager, like open()
    """Where the scores go: stdout, or a temporary file beside ``name`` renamed over it
    at the end (an error, a cancel or an interrupt removes it, and the output file is
    left as it was). ``buffered``: stdout too gets nothing until the end."""

    def __init__(self, name: str, buffered: bool) -> None:
        self.name, self.buffered = name, buffered
        self.tmp: Path | None = None
        self.file: IO[str] | None = None

    def __enter__(self) -> TextIO:
        if self.name == "-":
            if not self.buffered:
                return sys.stdout
            self.file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in __exit__
                1 << 22, mode="w+", encoding="utf-8", newline=""
            )
            return self.file  # type: ignore[return-value]
        path = Path(self.name)
        if path.is_dir():
            raise InputError(f"{self.name}: is a folder; give a file name for the scores")
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            self.file = open(self.tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
        except OSError as exc:
            raise InputError(f"{self.name}: {_os_reason(exc, 'write')}") from None
        return self.file  # type: ignore[return-value]

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if self.file is None:
            return
        try:
            if kind is None and self.tmp is None:  # buffered stdout: now copy it out
                self.file.seek(0)
                while block := self.file.read(1 << 20):
                    sys.stdout.write(block)
            self.file.close()
            if self.tmp is not None:
                if kind is None:
                    os.replace(self.tmp, self.name)
                else:
                    self.tmp.unlink(missing_ok=True)
        except OSError as exc:
            if self.tmp is not None:
                self.tmp.unlink(missing_ok=True)
            if kind is None:
                raise InputError(f"{self.name}: {_os_reason(exc, 'write')}") from None
        except BaseException:
            if self.tmp is not None:
                self.tmp.unlink(missing_ok=True)
            raise


def _os_reason(exc: OSError, doing: str) -> str:
    """An OS error in the words of someone who picked the file."""
    import errno

    reasons = {
        errno.ENOENT: "no such file" if doing == "read" else "its folder does not exist",
        errno.EACCES: f"permission denied (cannot {doing} it)",
        errno.EPERM: f"permission denied (cannot {doing} it)",
        errno.EISDIR: "is a folder, expected a file",
        errno.ENOSPC: "the disk is full; nothing was written",
        errno.EROFS: "the disk is read-only; nothing was written",
    }
    return reasons.get(exc.errno or 0, f"cannot {doing} it ({exc.strerror or exc})")
