"""Turn user input (JSON records or CSV text) into rows of the scoring workspace.

Numeric inputs become float64 (missing -> NaN); categorical inputs become the
index of their category in the plan's vocabulary (missing -> NaN, unknown ->
-1, which matches no category). Every rejection names the row and the field
and says what would have been valid, because end users read these messages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from app.plan import Plan

#: Cell texts that mean "missing" in an input CSV.
MISSING_TEXT = frozenset({"", "NA", "NaN", "nan", "N/A", "null"})
UNKNOWN_CODE = -1.0


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

    def fill_records(
        self, ws: np.ndarray, records: Sequence[Mapping[str, object]], first_row: int = 0
    ) -> None:
        """Write records (dicts from JSON) into the first columns of ``ws``."""
        for r, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise InputError(
                    f"record {first_row + r}: expected an object with fields "
                    f"{self._expected}, got {type(record).__name__}"
                )
            if len(record) != len(self.names) or any(k not in record for k in self.names):
                self._explain_fields(record, first_row + r)
            row = ws[r]
            for j, name in enumerate(self.names):
                row[j] = self._value(record[name], j, first_row + r)

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

    def _value(self, value: object, j: int, r: int) -> float:
        codes = self.codes[j]
        if value is None:
            return math.nan
        if codes is None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(
                    f"record {r}, field {self.names[j]!r}: expected a number or "
                    f"null, got {_describe(value)}"
                )
            return float(value)
        if not isinstance(value, str):
            raise InputError(
                f"record {r}, field {self.names[j]!r}: expected one of "
                f"{self._categories(j)} (a string) or null, got {_describe(value)}"
            )
        return codes.get(value, UNKNOWN_CODE)

    def _categories(self, j: int) -> str:
        codes = self.codes[j] or {}
        return ", ".join(repr(c) for c in codes)

    def fill_text(self, ws: np.ndarray, chunk: Chunk) -> None:
        """Write CSV cells (one sequence of texts per input, in input order) into ``ws``."""
        for j, cells in enumerate(chunk.columns):
            codes = self.codes[j]
            col = ws[:, j]
            for r, cell in enumerate(cells):
                text = cell.strip()
                if text in MISSING_TEXT:
                    col[r] = math.nan
                elif codes is not None:
                    col[r] = codes.get(text, UNKNOWN_CODE)
                else:
                    try:
                        col[r] = float(text)
                    except ValueError:
                        raise InputError(
                            f"{chunk.source}: row {chunk.first_row + r} (line {chunk.lines[r]}), "
                            f"column "
                            f"{self.names[j]!r}: {cell!r} is not a number (leave the cell "
                            "empty or write NA for a missing value)"
                        ) from None


@dataclass(frozen=True)
class Chunk:
    """A block of CSV rows: input cells by column, and the rows as read (for pass-through)."""

    source: str
    header: list[str]
    first_row: int
    lines: list[int]
    columns: list[list[str]]
    rows: list[list[str]]


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
    header = [h.strip() for h in header]
    missing = [n for n in names if n not in header]
    if missing:
        raise InputError(
            f"{source}: header lacks column(s) {', '.join(missing)}; "
            f"expected {', '.join(names)} (found {', '.join(header)})"
        )
    index = [header.index(n) for n in names]
    width = len(header)
    first = 0
    chunk: list[list[str]] = []
    lines: list[int] = []

    def make() -> Chunk:
        return Chunk(
            source, header, first, lines, [[row[i] for row in chunk] for i in index], chunk
        )

    for line_no, row in enumerate(it, start=2):
        if len(row) != width:
            if not row:
                continue
            raise InputError(
                f"{source}: line {line_no} has {len(row)} cells, the header has {width}"
            )
        chunk.append(row)
        lines.append(line_no)
        if len(chunk) == chunk_rows:
            yield make()
            first += len(chunk)
            chunk, lines = [], []
    if chunk:
        yield make()
