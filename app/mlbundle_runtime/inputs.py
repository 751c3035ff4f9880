"""Turn user input (JSON records or CSV text) into rows of the scoring workspace.

Numeric inputs become float64 (missing -> NaN); categorical inputs become the
index of their category in the plan's vocabulary (missing -> NaN, unknown ->
-1, which matches no category); a text input's own column holds 0.0 and its
documents become term columns (``mlbundle_runtime.text``; empty text is text, a
missing one is refused, as scikit-learn refuses NaN documents). Every rejection
names the row and the field and says what would have been valid, because end
users read these messages.
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice, repeat
from operator import itemgetter
from typing import Any, BinaryIO

import numpy as np

from mlbundle_runtime.plan import Plan
from mlbundle_runtime.text import TextEncoder

#: Cell texts that mean "missing" in an input CSV.
MISSING_TEXT = frozenset({"", "NA", "NaN", "nan", "N/A", "null"})
UNKNOWN_CODE = -1.0


#: Cell types an object array's numeric column converts in one call (None is NaN).
_NUMBER_CELLS = frozenset({float, int, type(None)})
#: Up to this many rows, an object array is read cell by cell.
_FEW_ROWS = 8
#: What a category lookup returns for a cell that is not a known category.
_NOT_FOUND = -2.0


def _one_field(names: Sequence[str]) -> Callable[[Any], tuple[object, ...]]:
    """``itemgetter(*names)`` for fewer than two names, which still gives a tuple."""
    if not names:
        return lambda record: ()
    name = names[0]
    return lambda record: (record[name],)


def _is_nan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


class InputError(ValueError):
    """A record or cell is missing, of the wrong type, or unreadable."""


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


class Encoder:
    """Precomputed per-input converters for one plan (built once per process)."""

    def __init__(self, plan: Plan) -> None:
        self.names = plan.input_names
        self.kinds = tuple(i.kind for i in plan.inputs)
        self.codes: tuple[dict[str, float] | None, ...] = tuple(
            {c: float(k) for k, c in enumerate(i.categories)} if i.kind == "categorical" else None
            for i in plan.inputs
        )
        self._expected = ", ".join(self.names)
        #: Per text input (by index), the encoders writing its term columns.
        self.text: dict[int, tuple[TextEncoder, ...]] = {
            j: tuple(TextEncoder(f) for f in plan.text if f.input == j)
            for j, i in enumerate(plan.inputs)
            if i.kind == "text"
        }
        self.numeric_only = not self.text and all(codes is None for codes in self.codes)
        #: a record's fields in input order, as one tuple (a C loop: ``fill_record``)
        self._fields: Callable[[Any], tuple[object, ...]] = (
            itemgetter(*self.names) if len(self.names) > 1 else _one_field(self.names)
        )

    def _text_doc(self, value: object, j: int, r: int, what: str) -> str:
        """A text input's value: a string (empty is valid text), never missing."""
        if isinstance(value, str):
            return value
        got = "null (missing)" if value is None or _is_nan(value) else _describe(value)
        raise InputError(
            f'{what} {r}, field {self.names[j]!r}: expected text (a string; "" is empty '
            f"text), got {got}"
        )

    def _fill_docs(
        self, ws: np.ndarray, j: int, cells: Sequence[object], first_row: int, what: str
    ) -> None:
        """Text input ``j`` for rows ``0:len(cells)`` of ``ws``: its own column 0.0, then
        each of its features' term columns."""
        docs = [self._text_doc(c, j, first_row + r + 1, what) for r, c in enumerate(cells)]
        ws[: len(docs), j] = 0.0
        for encoder in self.text[j]:
            encoder.fill(ws, docs)

    def fill_records(
        self, ws: np.ndarray, records: Sequence[Mapping[str, object]], first_row: int = 0
    ) -> None:
        """Write records (dicts from JSON) into the first columns of ``ws``."""
        for r, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InputError(
                    f"record {first_row + r + 1}: expected an object with fields "
                    f"{self._expected}, got {type(record).__name__}"
                )
            if len(record) != len(self.names) or any(k not in record for k in self.names):
                self._explain_fields(record, first_row + r + 1)
            row = ws[r]
            for j, name in enumerate(self.names):
                row[j] = self._value(record[name], j, first_row + r + 1)
        for j in self.text:
            name = self.names[j]
            self._fill_docs(ws, j, [rec[name] for rec in records], first_row, "record")

    def fill_record(self, row: np.ndarray, record: Mapping[str, object]) -> None:
        """Write one record into ``row``: the single-prediction path, so the common case
        (every field present, numbers where numbers go) costs one pass over the fields."""
        try:
            values = self._fields(record)
        except (KeyError, TypeError):
            values = None
        if values is None or len(record) != len(self.names):
            self.fill_records(row[None, :], (record,))
            return
        if self.numeric_only and set(map(type, values)) <= _NUMBER_CELLS:  # None: NaN
            try:
                row[: len(values)] = values
                return
            except OverflowError:  # an integer beyond float: the cell rule names it
                pass
        for j, value in enumerate(values):
            row[j] = self._value(value, j, 1)
        for j in self.text:
            self._fill_docs(row[None, :], j, [values[j]], 0, "record")

    def fill_array(self, ws: np.ndarray, rows: np.ndarray, first_row: int = 0) -> None:
        """Write a 2-D object array (cells as in records) into the first columns of ``ws``.

        Column by column, in C where it can be: numbers convert in one numpy call
        once their types are known to be right, categories are looked up with
        ``map(dict.get)``; only cells that are not plainly valid go cell by cell,
        so the messages are the records' own.
        """
        if len(rows) <= _FEW_ROWS:  # a row or a few: column set-up would cost more
            for r, row in enumerate(rows.tolist()):
                out = ws[r]
                for j, value in enumerate(row):
                    value = None if _is_nan(value) else value
                    out[j] = self._value(value, j, first_row + r + 1, "row")
            for j in self.text:
                self._fill_docs(ws, j, rows[:, j].tolist(), first_row, "row")
            return
        for j in range(len(self.names)):
            self._fill_cells(ws, j, rows[:, j].tolist(), first_row)

    def fill_columns(self, ws: np.ndarray, columns: Sequence[np.ndarray], a: int, b: int) -> None:
        """Write rows ``a:b`` of 1-D input columns (in input order) into ``ws``.

        A numeric input given as a number array is copied by numpy; anything else
        goes as ``fill_array``'s cells do, with the same messages.
        """
        for j, column in enumerate(columns):
            part = column[a:b]
            if self.codes[j] is None and j not in self.text and part.dtype.kind in "fiu":
                ws[:, j] = part
            else:
                self._fill_cells(ws, j, part.tolist(), a)

    def _fill_cells(self, ws: np.ndarray, j: int, cells: list[object], first_row: int) -> None:
        """Column ``j`` of ``ws`` from Python cells: numbers in one numpy call once their
        types are right, categories with ``map(dict.get)``, the rest cell by cell."""
        if j in self.text:
            self._fill_docs(ws, j, cells, first_row, "row")
            return
        codes = self.codes[j]
        if codes is None:
            if set(map(type, cells)) <= _NUMBER_CELLS:
                try:
                    ws[:, j] = cells  # None becomes NaN
                    return
                except OverflowError:  # an integer beyond float: the cell rule names it
                    pass
        else:
            try:
                looked_up = list(map(codes.get, cells, repeat(_NOT_FOUND)))
            except TypeError:  # an unhashable cell: the cell path names it
                looked_up = [_NOT_FOUND] * len(cells)
            ws[:, j] = looked_up
            misses = np.flatnonzero(ws[:, j] == _NOT_FOUND).tolist()
            for r in misses:
                value = None if _is_nan(cells[r]) else cells[r]
                ws[r, j] = self._value(value, j, first_row + r + 1, "row")
            return
        out = ws[:, j]
        for r, value in enumerate(cells):
            value = None if _is_nan(value) else value
            out[r] = self._value(value, j, first_row + r + 1, "row")

    def columns(self, given: Any) -> tuple[np.ndarray, ...]:
        """The inputs' columns from a mapping of name to 1-D array (a pandas DataFrame
        works): checked for names and lengths, in input order."""
        try:
            names = list(given.keys())
        except AttributeError:
            raise InputError(
                f"expected columns by name ({self._expected}), got {type(given).__name__}"
            ) from None
        missing = [n for n in self.names if n not in names]
        if missing:
            raise InputError(
                f"columns lack input(s) {', '.join(missing)}; expected {self._expected}"
            )
        out = []
        for name in self.names:
            column = np.asarray(given[name])
            if column.ndim == 2 and column.shape[1] == 1:  # an (n, 1) feed, as ONNX takes
                column = column[:, 0]
            if column.ndim != 1:
                raise InputError(
                    f"column {name!r}: expected one value per row, got shape {column.shape}"
                )
            if out and len(column) != len(out[0]):
                raise InputError(
                    f"column {name!r} has {len(column)} rows, column {self.names[0]!r} "
                    f"has {len(out[0])}"
                )
            out.append(column)
        return tuple(out)

    def _explain_fields(self, record: Mapping[str, object], r: int) -> None:
        missing = [n for n in self.names if n not in record]
        extra = sorted(str(k) for k in record if k not in self.names)
        parts = []
        if missing:
            parts.append("missing field(s) " + ", ".join(missing))
        if extra:
            parts.append("unknown field(s) " + ", ".join(extra))
        raise InputError(
            f"record {r}: {'; '.join(parts)}; expected fields: {self._expected} "
            "(use null for a missing value)"
        )

    def _value(self, value: object, j: int, r: int, what: str = "record") -> float:
        """``value`` of input ``j`` as a workspace value; ``r``: the 1-based record or row
        that messages name."""
        codes = self.codes[j]
        if j in self.text:  # checked here, written by _fill_docs
            self._text_doc(value, j, r, what)
            return 0.0
        if value is None:
            return math.nan
        if codes is None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(
                    f"{what} {r}, field {self.names[j]!r}: expected a number or "
                    f"null, got {_describe(value)}"
                )
            try:
                return float(value)
            except OverflowError:
                raise InputError(
                    f"{what} {r}, field {self.names[j]!r}: {str(value)[:20]}… is too large "
                    "for a number (at most about 1.8e308)"
                ) from None
        if not isinstance(value, str):
            raise InputError(
                f"{what} {r}, field {self.names[j]!r}: expected one of "
                f"{self._categories(j)} (a string) or null, got {_describe(value)}"
            )
        return codes.get(value, UNKNOWN_CODE)

    def _categories(self, j: int) -> str:
        codes = self.codes[j] or {}
        return ", ".join(repr(c) for c in codes)

    def fill_text(
        self, ws: np.ndarray, chunk: Chunk, where: Callable[[int], str] | None = None
    ) -> None:
        """Write CSV cells (one sequence of texts per input, in input order) into ``ws``;
        ``where(r)`` names row ``r`` in messages (default: file, row and line)."""
        if where is None:
            where = Where(chunk.source, chunk.first_row, chunk.lines)
        for j, cells in enumerate(chunk.columns):
            if j in self.text:  # a CSV cell is text as it is: unstripped, never missing
                self._fill_docs(ws, j, cells, 0, "row")
            else:
                ws[:, j] = self._text_column(cells, j, where)

    def _text_column(
        self,
        cells: Sequence[str],
        j: int,
        where: Callable[[int], str],
        rows: Sequence[int] | None = None,
    ) -> np.ndarray:
        """The values of CSV cells of input ``j``; ``rows[k]``: the chunk row of ``cells[k]``.

        The column goes through C loops (a dict lookup per cell, then numpy's
        conversion, which calls ``float`` on each text) and falls back to the
        cell-by-cell rule, ``_text_value``, only when a cell needs it: blanks
        around a missing text or a category, an unknown category, or a cell
        that is not a number, which that rule then names.
        """
        lookup = self._text_lookups[j]
        if self.codes[j] is None:
            try:
                return np.array(list(map(lookup.get, cells, cells)), dtype=np.float64)
            except ValueError:
                pass
        else:
            values = list(map(lookup.get, cells))
            if values.count(None) == 0:
                return np.array(values, dtype=np.float64)
        at = range(len(cells)) if rows is None else rows
        return np.array(
            [self._text_value(cell, j, r, where) for cell, r in zip(cells, at, strict=True)],
            dtype=np.float64,
        )

    @functools.cached_property
    def _text_lookups(self) -> tuple[dict[str, Any], ...]:
        """Per input, the cells ``fill_text`` can map without stripping them: missing texts
        (to NaN) and, for a categorical input, its categories (to their codes)."""
        lookups = []
        for codes in self.codes:
            # a category with blanks around it is not matched as it is: stripped, it differs
            exact = {
                c: v for c, v in (codes or {}).items() if not isinstance(c, str) or c == c.strip()
            }
            lookups.append({**exact, **dict.fromkeys(MISSING_TEXT, math.nan)})
        return tuple(lookups)

    def _text_value(self, cell: str, j: int, r: int, where: Callable[[int], str]) -> float:
        """One CSV cell of input ``j`` (row ``r`` of a chunk) as a workspace value."""
        text = cell.strip()
        if text in MISSING_TEXT:
            return math.nan
        codes = self.codes[j]
        if codes is not None:
            return codes.get(text, UNKNOWN_CODE)
        try:
            return float(text)
        except ValueError:
            raise InputError(
                f"{where(r)}, column {self.names[j]!r}: {cell!r} is not a number (leave the cell "
                "empty or write NA for a missing value)"
            ) from None


@dataclass(frozen=True)
class Chunk:
    """A block of CSV rows: input cells by column, and the rows as read (for pass-through)."""

    source: str
    header: list[str]
    first_row: int
    lines: Sequence[int]
    columns: list[list[str]]
    rows: list[list[str]]


class Where:
    """Names row ``r`` of a chunk in messages: ``<source>: row <n> (line <m>)``, both
    counted from 1 as a person counts them (the header is line 1, the first row row 1)."""

    __slots__ = ("first", "lines", "source")

    def __init__(self, source: str, first: int, lines: Sequence[int]) -> None:
        self.source, self.first, self.lines = source, first, lines

    def __call__(self, r: int) -> str:
        return f"{self.source}: row {self.first + r + 1} (line {int(self.lines[r])})"


def iter_csv_chunks(
    rows: Iterable[list[str]], names: Sequence[str], chunk_rows: int, source: str
) -> Iterator[Chunk]:
    """Yield chunks of at most ``chunk_rows`` rows from a CSV row iterator.

    The header must name every input; other columns are carried along (and
    ignored for scoring), so a labelled file can be scored as it is.
    """
    it = iter(rows)
    try:
        header = next(it)
    except StopIteration:
        raise InputError(
            f"{source}: empty file; expected a header row with {', '.join(names)}"
        ) from None
    header, index = _check_header(header, names, source)
    return _row_chunks(it, header, index, source, chunk_rows, 0, 2)


def _check_header(
    header: list[str], names: Sequence[str], source: str
) -> tuple[list[str], list[int]]:
    """The header's cells, stripped, and where each input is among them."""
    header = [h.strip() for h in header]
    if header:
        header[0] = header[0].removeprefix("\ufeff")  # a byte-order mark read as text
    missing = [n for n in names if n not in header]
    if missing:
        hints = [
            f"{close[0]!r} for {n!r}?"
            for n in missing
            if (close := difflib.get_close_matches(n, [h for h in header if h not in names], 1))
        ]
        raise InputError(
            f"{source}: line 1: header lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(names)} (found {', '.join(header)})"
            + (f"; did you mean {' '.join(hints)}" if hints else "")
        )
    return header, [header.index(n) for n in names]


def _row_chunks(
    it: Iterator[list[str]],
    header: list[str],
    index: list[int],
    source: str,
    chunk_rows: int,
    first: int,
    line_no: int,
) -> Iterator[Chunk]:
    """Chunks of ``chunk_rows`` rows from CSV records (``line_no``: the next record's).

    Empty records are skipped and do not count towards a chunk; a record with
    another number of cells than the header is refused, naming its line.
    """
    width = len(header)
    while True:
        block = list(islice(it, chunk_rows))
        if not block:
            return
        rows: list[list[str]]
        lines: Sequence[int]
        if len(block[0]) == width and len(set(map(len, block))) == 1:
            rows, lines = block, range(line_no, line_no + len(block))
            line_no += len(block)
        else:  # empty records to skip, or a wrong one to name
            rows, kept = [], []
            pending = iter(block)
            while len(rows) < chunk_rows:
                row = next(pending, None)
                if row is None:  # top the chunk up, as if empty records were not there
                    row = next(it, None)
                    if row is None:
                        break
                if row:
                    if len(row) != width:
                        raise InputError(
                            f"{source}: line {line_no} has {len(row)} cells, the header has {width}"
                        )
                    rows.append(row)
                    kept.append(line_no)
                line_no += 1
            if not rows:
                return
            lines = kept
        yield Chunk(
            source, header, first, lines, [list(map(itemgetter(i), rows)) for i in index], rows
        )
        first += len(rows)


#: Most bytes a file chunk's workspace may take: a plan with text inputs is as wide as
#: its vocabularies (one float64 column per term), so its chunks hold fewer rows.
CHUNK_BYTES = 64 << 20


def chunk_rows_for(width: int, rows: int = 8192) -> int:
    """Rows per file chunk for a workspace of ``width`` columns: ``rows``, or fewer so
    that a chunk stays within ``CHUNK_BYTES`` (at least 16 rows)."""
    return max(16, min(rows, CHUNK_BYTES // (8 * max(1, width))))


#: Bytes read at a time (at least) while looking for the end of a chunk.
_READ_BYTES = 1 << 18
#: Zero bytes around a chunk's bytes, so that 8-byte loads near its ends stay inside.
_PAD = 24
#: Longest category (in bytes) looked up in bulk; longer ones go through the cell rule.
_KEY_BYTES = 16

_U8 = np.uint64
_ASCII_ZEROS = _U8(0x3030303030303030)
_HIGH_BITS = _U8(0x8080808080808080)
_LOW_BITS = _U8(0x7F7F7F7F7F7F7F7F)
_POINTS = _U8(0x2E2E2E2E2E2E2E2E)
_ALL = 0xFFFFFFFFFFFFFFFF
#: By length 0..8: the bytes a cell of that length fills at the top (right-aligned) or
#: bottom (left-aligned) of a little-endian word, and where its first byte is.
_TOP = np.array([0] + [(_ALL << (8 * (8 - k))) & _ALL for k in range(1, 9)], dtype=_U8)
_BOTTOM = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [_ALL], dtype=_U8)
_FIRST = np.array([0] + [8 * (8 - k) for k in range(1, 9)], dtype=_U8)
#: By the byte k of a point: the bytes after it, and the bytes before it.
_ABOVE = np.array([(_ALL << (8 * k + 8)) & _ALL for k in range(7)] + [0], dtype=_U8)
_BELOW = _BOTTOM[:8]
_POW10 = 10.0 ** np.arange(9)
#: The missing texts as right-aligned words (as ``_parse_decimals`` reads a cell).
_MISSING_WORDS = np.array(
    [int.from_bytes(m.encode("ascii").rjust(8, b"\0"), "little") for m in MISSING_TEXT if m],
    dtype=_U8,
)


#: What a spreadsheet that saves "CSV UTF-8" writes before the first header.
BOM = b"\xef\xbb\xbf"


def not_utf8(
    source: str, data: bytes, pos: int, first_line: int, header: Sequence[str] | None = None
) -> InputError:
    """The error for byte ``pos`` of ``data`` (whose first byte is on line ``first_line``),
    which is not UTF-8: named by line and, once the header is known, column, since a
    byte offset means nothing to someone looking at the file in a spreadsheet."""
    line = first_line + data.count(b"\n", 0, pos)
    where = f"{source}: line {line}"
    end = data.find(b"\n")
    if header is None and first_line == 1 and 0 <= end < pos:  # the header is in data
        try:
            text = data[:end].decode("utf-8").rstrip("\r")
            header = [h.strip() for h in next(csv.reader([text]), [])]
        except csv.Error:
            header = None
    if header:
        start = data.rfind(b"\n", 0, pos) + 1
        before = data[start:pos].decode("utf-8", "replace").replace("\r", " ")
        try:
            cells = next(csv.reader([before + "x"]), [""])  # "x": a cell ending at pos counts
        except csv.Error:  # a line csv itself would refuse: name the line only
            cells = []
        if 0 < len(cells) <= len(header):
            where += f", column {header[len(cells) - 1]!r}"
    return InputError(
        f"{where}: byte 0x{data[pos]:02x} is not UTF-8 text; save the file as UTF-8 "
        '(in a spreadsheet: "CSV UTF-8")'
    )


def decode_csv(data: bytes, source: str) -> str:
    """The text of a whole CSV file: UTF-8, with or without a byte-order mark."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise not_utf8(source, data, exc.start, 1) from None


class _Lines:
    """The lines of a binary stream (``prefix`` first, which starts on line ``line_no``)
    as text for ``csv``: decoded whole lines at a time, so a byte that is not UTF-8 is
    reported by its line, and counting the bytes taken for progress reports."""

    def __init__(
        self, prefix: bytes, stream: BinaryIO, source: str, line_no: int, tolerant: bool = False
    ) -> None:
        """``tolerant``: a byte that is not UTF-8 does not stop the reading; it becomes a
        lone surrogate (``surrogateescape``), ``dirty`` is set, and the reader of the rows
        names the row (so only that row fails)."""
        self.prefix, self.stream, self.source, self.line_no = prefix, stream, source, line_no
        self.tolerant = tolerant
        #: The header's cells once read (for naming a column in errors).
        self.header: Sequence[str] | None = None
        self.delivered = 0
        self.dirty = False

    def __iter__(self) -> Iterator[str]:
        carry, eof = self.prefix, False
        while not eof:
            block = self.stream.read(_READ_BYTES)
            eof = not block
            data = carry + block
            cut = len(data) if eof else data.rfind(b"\n") + 1
            part, carry = data[:cut], data[cut:]
            if not part:
                continue
            try:
                text = part.decode("utf-8")
            except UnicodeDecodeError as exc:
                if not self.tolerant:
                    where = (self.source, part, exc.start, self.line_no, self.header)
                    raise not_utf8(*where) from None
                text, self.dirty = part.decode("utf-8", "surrogateescape"), True
            self.line_no += part.count(b"\n")
            self.delivered += len(part)
            yield from io.StringIO(text, newline="")


def csv_rows(stream: BinaryIO, source: str) -> Iterator[list[str]]:
    """The records of a CSV file opened in binary mode: UTF-8 with or without a
    byte-order mark, any line ends; non-UTF-8 bytes are named by line and column."""
    head = stream.read(len(BOM))
    lines = _Lines(b"" if head == BOM else head, stream, source, 1)
    return _noting_header(csv.reader(lines), lines)


class CsvReader:
    """Read a CSV file in chunks of ``chunk_rows`` rows straight into scoring workspaces.

    Iterating yields ``(ws, where)``: a workspace of ``width`` columns with the
    input columns filled, and the function naming row ``r`` in messages. On
    any file this gives what ``iter_csv_chunks`` then ``Encoder.fill_text``
    give (same chunks, values and errors), only faster: a chunk of plain
    lines (UTF-8, no quote or NUL, each with the header's number of commas)
    is split with numpy; numbers of at most 15 digits, with an optional sign
    and point and no exponent, are parsed in bulk (the digits as an integer,
    divided once by a power of ten: the correctly rounded value ``float``
    returns); categories are found by binary search; every other cell goes
    through ``fill_text``'s own code. A chunk that is not plain is read by
    ``csv``; from a quote or a lone carriage return on (a record may then
    span lines), so is the rest of the file.
    """

    def __init__(
        self,
        encoder: Encoder,
        stream: BinaryIO,
        source: str,
        width: int,
        chunk_rows: int,
        tolerant: bool = False,
        keep: Sequence[str] = (),
    ) -> None:
        """``tolerant``: instead of raising for a chunk with a bad row, yield it as
        ``RawLines`` (its bytes) for a reader that fails single rows, and hand a file
        that needs the csv module over as ``RestOfFile``; plain chunks are then
        ``PlainChunk``s, which also carry the cells of the ``keep`` columns."""
        self.encoder = encoder
        self.stream = stream
        self.source = source
        self.width = width
        self.chunk_rows = chunk_rows
        self.tolerant = tolerant
        self.keep = tuple(keep)
        #: Bytes of the file taken into chunks so far (for progress reports).
        self.bytes_read = 0
        #: The header's cells, once read, and where each ``keep`` column is among them.
        self.header: list[str] | None = None
        self.keep_index: list[int] = []
        self._tables = [_category_table(codes) for codes in encoder.codes]

    def _known(self, known: tuple[list[str], list[int]]) -> None:
        header = known[0]
        missing = [k for k in self.keep if k not in header]
        if missing:
            raise InputError(
                f"{self.source}: line 1: --keep {', '.join(missing)}: no such column "
                f"(columns: {', '.join(header)})"
            )
        self.header = header
        self.keep_index = [header.index(k) for k in self.keep]

    def __iter__(self) -> Iterator[tuple[np.ndarray, Callable[[int], str]]]:
        line = self.stream.readline()
        bom = len(BOM) if line.startswith(BOM) else 0
        line = line[bom:]
        self.bytes_read = bom
        body = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        if not line.endswith(b"\n") or b'"' in line or b"\0" in line or b"\r" in body:
            yield from self._text(line, None, 0, 1)
            return
        header = next(csv.reader([decode_csv(line, self.source)]))
        if not header:  # an empty first line: the csv path says what is wrong
            yield from self._text(line, None, 0, 1)
            return
        known = _check_header(header, self.encoder.names, self.source)
        self._known(known)
        self.bytes_read += len(line)
        buf, eof = b"", False
        first, line_no = 0, 2
        want = _READ_BYTES  # bytes that should hold a chunk (from the chunk before)
        while True:
            if not eof and len(buf) < want:
                pieces, size = [buf], len(buf)
                while not eof and size < want:  # a pipe may return less than asked
                    more = self.stream.read(want - size)
                    eof = not more
                    pieces.append(more)
                    size += len(more)
                buf = b"".join(pieces)
            if not buf:
                return
            arr = np.frombuffer(buf, dtype=np.uint8)
            ends = np.flatnonzero(arr == 10)
            if eof and buf[-1] != 10:  # the last line, without a line end
                ends = np.append(ends, len(buf))
            starts = np.empty_like(ends)
            starts[:1] = 0
            starts[1:] = ends[:-1] + 1
            # line lengths without the line end (a CR before the LF is part of it)
            filled = ends - starts - (arr[np.maximum(ends - 1, 0)] == 13)
            counted = np.cumsum(filled > 0)
            if not eof and (not len(counted) or counted[-1] < self.chunk_rows):
                # not a whole chunk yet (a long line, or many empty ones): read on
                want = len(buf) + max(_READ_BYTES, len(buf) // 2)
                continue
            k = min(int(np.searchsorted(counted, self.chunk_rows)), len(ends) - 1)
            cut = min(int(ends[k]) + 1, len(buf))
            data = buf[:cut]
            if b'"' in data or (b"\r" in data and data.count(b"\r") != data.count(b"\r\n")):
                yield from self._text(buf, known, first, line_no)
                return
            buf = buf[cut:]
            keep = filled[: k + 1] > 0
            lines = line_no + np.flatnonzero(keep)
            n = len(lines)
            if n:
                ws = np.empty((n, self.width))
                row_starts = starts[: k + 1][keep]
                row_ends = row_starts + filled[: k + 1][keep]
                kept: list[list[str]] = []
                try:
                    plain = (
                        _utf8(data)
                        and b"\0" not in data
                        and int((row_ends - row_starts).max()) <= csv.field_size_limit()
                        and self._fill_plain(
                            ws, arr[:cut], row_starts, row_ends, known, first, lines, kept
                        )
                    )
                    if not plain:
                        if self.tolerant:  # a line with another number of cells, say
                            raise InputError("not plain")
                        self._fill_csv(ws, data, known, first, line_no)
                except InputError:
                    if not self.tolerant:
                        raise
                    self.bytes_read += cut
                    yield RawLines(data, line_no)  # type: ignore[misc]
                else:
                    self.bytes_read += cut
                    if self.tolerant:
                        yield PlainChunk(ws, lines.tolist(), kept)  # type: ignore[misc]
                    else:
                        yield ws, Where(self.source, first, lines.tolist())
            else:
                self.bytes_read += cut
            first += n
            line_no += k + 1
            want = cut + cut // 16 + 256

    def _fill_plain(
        self,
        ws: np.ndarray,
        arr: np.ndarray,
        starts: np.ndarray,
        ends: np.ndarray,
        known: tuple[list[str], list[int]],
        first: int,
        lines: np.ndarray,
        kept: list[list[str]] | None = None,
    ) -> bool:
        """Fill ``ws`` from plain lines ``[starts, ends)`` of ``arr``; False if a line has
        another number of cells than the header (the csv path then names it). ``kept``
        gets the cells of the ``keep`` columns, one list per column."""
        header, index = known
        n = len(starts)
        seps = len(header) - 1
        commas = np.flatnonzero(arr == 44)
        if len(commas) != n * seps:
            return False
        commas = commas.reshape(n, seps)
        if seps and not ((commas[:, 0] >= starts).all() and (commas[:, -1] < ends).all()):
            return False
        padded = np.zeros(_PAD + len(arr) + _PAD + (-len(arr) % 8), dtype=np.uint8)
        padded[_PAD : _PAD + len(arr)] = arr
        words = padded.view("<u8")
        data = arr.tobytes()
        where = Where(self.source, first, lines)
        for j, i in enumerate(index):
            s = starts if i == 0 else commas[:, i - 1] + 1
            e = ends if i == seps else commas[:, i]
            col = ws[:, j]
            if j in self.encoder.text:
                cells = [
                    data[a:b].decode("utf-8") for a, b in zip(s.tolist(), e.tolist(), strict=True)
                ]
                self.encoder._fill_docs(ws, j, cells, first, "row")
                continue
            table = self._tables[j]
            if table is None:
                rest = _parse_decimals(col, words, s + _PAD, e + _PAD)
            else:
                rest = _find_categories(col, words, s + _PAD, e + _PAD, *table)
            if len(rest):  # the cells the bulk paths leave: through the cell rule
                at = rest.tolist()
                cells = [  # cut at commas: whole UTF-8 sequences
                    data[a:b].decode("utf-8")
                    for a, b in zip(s[at].tolist(), e[at].tolist(), strict=True)
                ]
                col[at] = self.encoder._text_column(cells, j, where, at)
        if kept is not None:
            for i in self.keep_index:
                s = starts if i == 0 else commas[:, i - 1] + 1
                e = ends if i == seps else commas[:, i]
                kept.append(
                    [data[a:b].decode("utf-8") for a, b in zip(s.tolist(), e.tolist(), strict=True)]
                )
        return True

    def _fill_csv(
        self,
        ws: np.ndarray,
        data: bytes,
        known: tuple[list[str], list[int]],
        first: int,
        line_no: int,
    ) -> None:
        """Fill ``ws`` from ``data`` (whole lines, no quote, no lone CR) read by ``csv``."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise not_utf8(self.source, data, exc.start, line_no, known[0]) from None
        rows = csv.reader(io.StringIO(text, newline=""))
        for chunk in _row_chunks(rows, *known, self.source, self.chunk_rows, first, line_no):
            self.encoder.fill_text(ws, chunk)

    def _text(
        self,
        prefix: bytes,
        known: tuple[list[str], list[int]] | None,
        first: int,
        line_no: int,
    ) -> Iterator[tuple[np.ndarray, Callable[[int], str]]]:
        """The rest of the file (``prefix``, then the stream, from line ``line_no`` on)
        read by ``csv``."""
        if self.tolerant:
            yield RestOfFile(prefix, known, line_no)  # type: ignore[misc]
            return
        base = self.bytes_read
        raw = _Lines(prefix, self.stream, self.source, line_no)
        raw.header = None if known is None else known[0]
        rows = csv.reader(raw)
        if known is None:
            rows = _noting_header(rows, raw)
            chunks = iter_csv_chunks(rows, self.encoder.names, self.chunk_rows, self.source)
        else:
            chunks = _row_chunks(rows, *known, self.source, self.chunk_rows, first, line_no)
        for chunk in chunks:
            ws = np.empty((len(chunk.rows), self.width))
            self.encoder.fill_text(ws, chunk)
            self.bytes_read = base + raw.delivered
            yield ws, Where(self.source, chunk.first_row, chunk.lines)


@dataclass(frozen=True)
class PlainChunk:
    """A tolerant ``CsvReader``'s chunk whose every row was read: the filled workspace,
    each row's line, and the ``keep`` columns' cells."""

    ws: np.ndarray
    lines: list[int]
    kept: list[list[str]]


@dataclass(frozen=True)
class RawLines:
    """A tolerant ``CsvReader``'s chunk with a row it could not read: its bytes (whole
    lines, no quote, so one record per line) and the first one's line number."""

    data: bytes
    line_no: int


@dataclass(frozen=True)
class RestOfFile:
    """What a tolerant ``CsvReader`` hands over when the file needs the csv module (a
    quote, a lone CR): ``prefix`` then the rest of the stream, from line ``line_no``;
    ``known``: the header and the inputs' places in it, once read (else None)."""

    prefix: bytes
    known: tuple[list[str], list[int]] | None
    line_no: int


def _noting_header(rows: Iterator[list[str]], lines: _Lines) -> Iterator[list[str]]:
    """``rows``, telling ``lines`` the header once it has been read."""
    for row in rows:
        if lines.header is None:
            lines.header = [h.strip() for h in row]
        yield row


def _utf8(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (an error is the csv path's to report)."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _category_table(codes: dict[str, float] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Category texts as NUL-padded UTF-8 (sorted) and their codes, for the cells a plain
    cell can match as it is: the missing texts (NaN; a category spelt like one is
    missing too) and the categories without NUL or blanks around, of at most
    ``_KEY_BYTES`` bytes. ``None`` for a numeric input."""
    if codes is None:
        return None
    pairs = [
        (c.encode("utf-8", "surrogatepass"), code)
        for c, code in codes.items()
        if isinstance(c, str)
        and c == c.strip()
        and c not in MISSING_TEXT
        and "\0" not in c
        and len(c.encode("utf-8", "surrogatepass")) <= _KEY_BYTES
    ]
    pairs += [(m.encode("ascii"), math.nan) for m in MISSING_TEXT if m]
    size = 8 if all(len(c) <= 8 for c, _ in pairs) else 16
    keys = np.array([c for c, _ in pairs], dtype=f"S{size}")
    order = np.argsort(keys, kind="stable")
    return keys[order], np.array([code for _, code in pairs], dtype=np.float64)[order]


def _load(words: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The 8 bytes from each offset ``at`` as a little-endian uint64 (``words``: the
    padded chunk as little-endian uint64; a shift by 64 gives 0 in numpy)."""
    shift = ((at & 7) << 3).astype(_U8)
    index = at >> 3
    return (words[index] >> shift) | (words[index + 1] << (_U8(64) - shift))


def _parse_decimals(col: np.ndarray, words: np.ndarray, s: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Parse cells ``[s, e)`` of at most 8 bytes written ``[+-]digits[.digits]`` into
    ``col`` (empty cells: NaN); return the rows left for the cell rule.

    Each cell is read as one 64-bit word (SWAR): left-padded with '0', sign and point
    replaced by '0' (the digits before the point moved up a byte), checked to be all
    digits, and its (at most 8) digits turned into the integer ``M``. The value is
    ``M / 10**k``, ``k`` digits after the point: one IEEE division of two exact
    numbers, so the correctly rounded value of the text, which ``float`` returns.
    """
    length = e - s
    short = np.where(length <= 8, length, 0)
    raw = _load(words, e - 8) & _TOP[short]  # the cell in the top bytes, zeros below
    x = raw | (_ASCII_ZEROS & ~_TOP[short])
    first = _FIRST[short]
    lead = (x >> first) & _U8(0xFF)
    negative = lead == 45
    signed = negative | (lead == 43)
    x = np.where(signed, x ^ ((lead ^ _U8(0x30)) << first), x)
    t = x ^ _POINTS
    points = ~(((t & _LOW_BITS) + _LOW_BITS) | t | _LOW_BITS)  # 0x80 in each '.' byte
    n_points = np.bitwise_count(points)
    has_point = n_points == 1
    k = np.where(has_point, (np.bitwise_count(points - _U8(1)) - 7) >> 3, 0).astype(np.intp)
    x = np.where(has_point, (x & _ABOVE[k]) | ((x & _BELOW[k]) << _U8(8)) | _U8(0x30), x)
    all_digits = (((x + _U8(0x4646464646464646)) | (x - _ASCII_ZEROS)) & _HIGH_BITS) == 0
    ok = (
        (short > 0)
        & (n_points <= 1)
        & all_digits
        & (short > signed.astype(np.intp) + has_point)  # at least one digit
    )
    v = x - _ASCII_ZEROS  # eight digits, the first in the lowest byte
    v = v * _U8(10) + (v >> _U8(8))
    v = (
        (v & _U8(0x000000FF000000FF)) * _U8(100 + (1000000 << 32))
        + ((v >> _U8(16)) & _U8(0x000000FF000000FF)) * _U8(1 + (10000 << 32))
    ) >> _U8(32)
    value = v.astype(np.float64) / _POW10[np.where(has_point, 7 - k, 0)]
    np.negative(value, out=value, where=negative)
    value[length == 0] = math.nan
    col[:] = value
    rest = np.flatnonzero(~ok & (length > 0))
    if len(rest):  # missing texts as they are ("NA", ...): NaN
        missing = np.isin(raw[rest], _MISSING_WORDS)
        col[rest[missing]] = math.nan
        rest = rest[~missing]
    return rest


def _find_categories(
    col: np.ndarray,
    words: np.ndarray,
    s: np.ndarray,
    e: np.ndarray,
    keys: np.ndarray,
    codes: np.ndarray,
) -> np.ndarray:
    """Look cells ``[s, e)`` up among ``keys`` into ``col`` (empty cells: NaN); return
    the rows left for the cell rule (blanks, missing texts, unknown or long ones)."""
    length = e - s
    if not len(keys):
        col[:] = math.nan
        return np.flatnonzero(length > 0)
    size = keys.itemsize
    packed = np.empty((len(s), size // 8), dtype="<u8")
    for w in range(size // 8):
        packed[:, w] = _load(words, s + 8 * w) & _BOTTOM[np.clip(length - 8 * w, 0, 8)]
    found = packed.view(f"S{size}")[:, 0]
    at = np.minimum(np.searchsorted(keys, found), len(keys) - 1)
    hit = (keys[at] == found) & (length <= size)
    col[:] = np.where(hit, codes[at], math.nan)
    return np.flatnonzero(~hit & (length > 0))
