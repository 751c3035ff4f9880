"""The fast CSV paths give what the cell-by-cell rules give, byte for byte and error for error.

``CsvReader`` (numpy splitting, bulk number parsing, binary search for categories)
and ``Scores.to_csv`` (column-wise formatting) only exist for speed, so each is
checked against a plain reference written here from the documented rules: CSV
records read by ``csv``, empty records skipped, chunks of ``chunk_rows`` records,
a cell stripped, a missing text is NaN, a category its code (unknown: -1), any
other cell ``float(cell)`` or an error naming row, line and column; output rows
written by ``csv.writer`` from ``Scores.rows()``.
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from bundler.compiler import compile_estimators
from mlbundle_runtime.inputs import (
    BOM,
    MISSING_TEXT,
    CsvReader,
    Encoder,
    InputError,
    csv_rows,
    iter_csv_chunks,
)
from mlbundle_runtime.plan import Extra
from mlbundle_runtime.scorer import Scorer, Scores
from tests._parity import kernels
from tests.conftest import RESOURCES

NAMES = ("site", "x", "y", "kind")
KINDS = ("categorical", "numeric", "numeric", "categorical")
CATEGORIES: dict[str, tuple[Any, ...]] = {
    "site": (
        "Biscoe",
        "Dream",
        "Torgersen",
        "A",
        "NA",
        " padded",
        "été",
        "a-very-long-category-name",
    ),
    "kind": ("x", "yy", "1", "null2", "exactly8"),
}


@dataclass(frozen=True)
class _Input:
    name: str
    kind: str
    categories: tuple[Any, ...] = ()


class _Plan:
    """What the Encoder reads from a plan: its inputs."""

    inputs = tuple(_Input(n, k, CATEGORIES.get(n, ())) for n, k in zip(NAMES, KINDS, strict=True))
    input_names = NAMES
    width = len(NAMES) + 2  # workspace columns beyond the inputs are the kernels'


def encoder() -> Encoder:
    return Encoder(_Plan())  # type: ignore[arg-type]


# -- the reference: the rules, cell by cell ---------------------------------------------
def reference(text: str, chunk_rows: int, source: str = "in.csv") -> list[Any]:
    """Chunks as (values, row names) and, last, an error message if reading stops."""
    out: list[Any] = []
    codes = [
        {c: float(k) for k, c in enumerate(CATEGORIES[n])} if kind == "categorical" else None
        for n, kind in zip(NAMES, KINDS, strict=True)
    ]
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise InputError(f"{source}: empty file; expected a header row with {', '.join(NAMES)}")
        header = [h.strip() for h in header]
        if any(n not in header for n in NAMES):
            raise InputError("header")
        index = [header.index(n) for n in NAMES]
        rows: list[tuple[int, list[str]]] = []
        first = 0

        def flush() -> None:
            values = np.empty((len(rows), len(NAMES)))
            names = [
                f"{source}: row {first + r + 1} (line {line})" for r, (line, _) in enumerate(rows)
            ]
            for j, i in enumerate(index):
                for r, (_, row) in enumerate(rows):
                    cell = row[i]
                    t = cell.strip()
                    if t in MISSING_TEXT:
                        values[r, j] = math.nan
                    elif codes[j] is not None:
                        values[r, j] = codes[j].get(t, -1.0)
                    else:
                        try:
                            values[r, j] = float(t)
                        except ValueError:
                            raise InputError(
                                f"{names[r]}, column {NAMES[j]!r}: {cell!r} is not a number "
                                "(leave the cell empty or write NA for a missing value)"
                            ) from None
            out.append((values, names))

        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{source}: line {line} has {len(row)} cells, the header has {len(header)}"
                )
            rows.append((line, row))
            if len(rows) == chunk_rows:
                flush()
                first += len(rows)
                rows = []
        if rows:
            flush()
    except InputError as exc:
        out.append(str(exc) if str(exc) != "header" else "header")
    except (csv.Error, UnicodeDecodeError) as exc:
        out.append(type(exc).__name__)
    return out


def fast(data: bytes, chunk_rows: int, source: str = "in.csv") -> list[Any]:
    out: list[Any] = []
    try:
        for ws, where in CsvReader(encoder(), io.BytesIO(data), source, _Plan.width, chunk_rows):
            out.append((ws[:, : len(NAMES)].copy(), [where(r) for r in range(len(ws))]))
    except InputError as exc:
        out.append("header" if "header lacks" in str(exc) else str(exc))
    except (csv.Error, UnicodeDecodeError) as exc:
        out.append(type(exc).__name__)
    return out


def text_path(data: bytes, chunk_rows: int, source: str = "in.csv") -> list[Any]:
    """``csv_rows`` + ``iter_csv_chunks`` + ``fill_text``: the app's text path (files with
    quotes, the passthrough scorer)."""
    out: list[Any] = []
    enc = encoder()
    try:
        for chunk in iter_csv_chunks(csv_rows(io.BytesIO(data), source), NAMES, chunk_rows, source):
            ws = np.empty((len(chunk.rows), len(NAMES)))
            enc.fill_text(ws, chunk)
            names = [
                f"{source}: row {chunk.first_row + r + 1} (line {chunk.lines[r]})"
                for r in range(len(ws))
            ]
            out.append((ws, names))
    except InputError as exc:
        out.append("header" if "header lacks" in str(exc) else str(exc))
    except (csv.Error, UnicodeDecodeError) as exc:
        out.append(type(exc).__name__)
    return out


def same(a: list[Any], b: list[Any]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, str) or isinstance(y, str):
            if x != y:
                return False
            continue
        if x[1] != y[1] or x[0].shape != y[0].shape:
            return False
        # bit for bit, except that every NaN is a NaN
        bx, by = x[0].view(np.int64), y[0].view(np.int64)
        nan = np.isnan(x[0]) & np.isnan(y[0])
        if not np.array_equal(np.where(nan, 0, bx), np.where(nan, 0, by)):
            return False
    return True


def check(data: bytes, chunk_rows: int = 3) -> None:
    got_fast = fast(data, chunk_rows)
    got_text = text_path(data, chunk_rows)
    body = data.removeprefix(BOM)  # a byte-order mark is not part of the header
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # both name the first bad byte by its line (after how many chunks may differ)
        line = body.count(b"\n", 0, exc.start) + 1
        expected = f"in.csv: line {line}"
        assert got_fast[-1].startswith(expected), (data, got_fast[-1])
        assert got_text[-1].startswith(expected), (data, got_text[-1])
        assert f"byte 0x{body[exc.start]:02x} is not UTF-8" in got_fast[-1] == got_text[-1]
        return
    want = reference(text, chunk_rows)
    assert same(got_text, want), (data, got_text, want)
    assert same(got_fast, want), (data, got_fast, want)


HEADER = b"site,x,y,kind\n"


@pytest.mark.parametrize(
    "body",
    [
        b"Dream,1.5,2,x\nBiscoe,-0.25,+3.,yy\n",
        b"Dream,1.5,2,x\r\nBiscoe,-0.25,+3.,yy\r\n",  # CRLF
        b"Dream,1.5,2,x\nBiscoe,-0.25,+3.,yy",  # no final line end
        b"\n\nDream,1.5,2,x\n\n\r\nBiscoe,.5,3,yy\n\n",  # empty lines are skipped
        b"Dream, 1.5 ,\t2,x\n NA,NA,N/A,null\n,,,\nnan,NaN,nan,NA\n",  # blanks, missing texts
        b"Atlantis,1,2,zz\n padded,1,2, x\n",  # unknown categories, blanks
        b"\xc3\xa9t\xc3\xa9,1e5,1_000,1\n",  # UTF-8, exponents, underscores
        b"A,1,2,exactly8\nA,1,2,exactly8x\nA,1,2,exactly\n",  # a full-width key, longer cells
        b"A,inf,-Infinity,x\nA,1e-400,1e400,x\nA,-0,-0.0,x\n",
        b"A,123456789,1234567.89,x\nA,0.30000000000000004,12345678901234567890,x\n",
        b"A,00000001,99999999,x\nA,9999999.,.9999999,x\nA,-.5,+.5,x\n",
        b'"Dream",1.5,2,x\nBiscoe,"1,5",3,"y\ny"\n',  # quotes: csv from there on
        b"Dream,1.5,2,x\rBiscoe,2,3,x\r",  # lone CRs end records too
        b"Dream,1.5,2,x\nBiscoe,2,3\n",  # a short line
        b"Dream,1.5,2,x\nBiscoe,2,3,x,extra\n",  # a long line
        b"Dream,1.5,2,x\nBiscoe,1.2.3,3,x\n",  # not a number
        b"Dream,1.5,2,x\nBiscoe,.,3,x\n",
        b"Dream,1.5,2,x\nBiscoe,+,3,x\n",
        b"Dream,1.5,2,x\nBiscoe,0x10,3,x\n",
        b"Dream,1.5,2,x\nBiscoe,1,3,x\x00\n",  # NUL
        b"Dream,1.5,2,x\nBiscoe,1,\xff,x\n",  # not UTF-8
        b"a-very-long-category-name,1,2,null2\nDream,1,2,null\n",
        b"",
    ],
)
@pytest.mark.parametrize("chunk_rows", [1, 2, 3, 8192])
def test_reader_matches_the_rules(body: bytes, chunk_rows: int) -> None:
    check(HEADER + body, chunk_rows)


@pytest.mark.parametrize(
    "data",
    [
        b"",  # empty file
        b"site,x,y,kind",  # header only, no line end
        b"\nsite,x,y,kind\nA,1,2,x\n",  # empty first line
        b"site,x,y\nA,1,2\n",  # a missing column
        b"kind,y,extra,x,site\r\nx,1,zzz,2,A\r\n",  # other order, other columns
        b'"site","x","y","kind"\nA,1,2,x\n',  # quoted header
        b" site , x ,y,kind\nA,1,2,x\n",  # header cells are stripped
        BOM + b"site,x,y,kind\r\nA,1,2,x\r\n",  # saved by a spreadsheet as "CSV UTF-8"
        BOM + b'"site",x,y,kind\nA,1,2,x\n',  # the same, with a quoted header
        BOM + b"site,x,y,kind",  # only a byte-order mark and a header
        b"site,x,y,kind\nA,1,\xe9,x\n",  # Latin-1 in a cell
        b"site,x,y,kind\nA,1,2,x\nB,2,3,\xe9t\xe9\n",  # Latin-1 in the last column
        b"s\xefte,x,y,kind\nA,1,2,x\n",  # Latin-1 in the header
        b'site,x,y,kind\n"A\xe9",1,2,x\n',  # Latin-1 in a file read by csv (a quote)
    ],
)
def test_reader_headers(data: bytes) -> None:
    check(data, 2)


def test_byte_order_mark_is_not_part_of_the_first_column() -> None:
    """A file a spreadsheet saved as "CSV UTF-8" reads as the same file without the mark."""
    plain = b"site,x,y,kind\r\nDream,1.5,2,x\r\nBiscoe,1,3,x\r\n"
    for data in (plain, BOM + plain):
        for read in (fast, text_path):
            got = read(data, 8192)
            assert len(got) == 1 and not isinstance(got[0], str), got
            assert same(got, read(plain, 8192))


def test_bytes_that_are_not_utf8_are_named_by_line_and_column() -> None:
    data = b"site,x,y,kind\nDream,1.5,2,x\nBiscoe,1,2,\xe9t\xe9\n"
    message = (
        "in.csv: line 3, column 'kind': byte 0xe9 is not UTF-8 text; save the file as "
        'UTF-8 (in a spreadsheet: "CSV UTF-8")'
    )
    assert fast(data, 2)[-1] == text_path(data, 2)[-1] == message


def _random_cell(rng: random.Random, kind: str) -> str:
    pool = {
        "numeric": [
            "1",
            "-2.5",
            "+0.125",
            "39.1",
            "3750",
            ".5",
            "5.",
            "-0",
            "NA",
            "",
            " 7 ",
            "1e3",
            "12345678",
            "123456789",
            "1.23456789",
            "nan",
            "inf",
            "N/A",
            "1_0",
            "٣",
            "x",
            "1.2.3",
            "--1",
            "+",
            ".",
        ],
        "categorical": [
            "Biscoe",
            "Dream",
            "Torgersen",
            "A",
            "NA",
            "",
            " Dream",
            "Dream ",
            "été",
            "Atlantis",
            "x",
            "yy",
            "1",
            "null2",
            "null",
            "a-very-long-category-name",
        ],
    }[kind]
    if rng.random() < 0.5:
        return rng.choice(pool)
    if kind == "numeric":
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 10)))
        point = rng.randint(0, len(digits))
        text = digits[:point] + ("." if rng.random() < 0.7 else "") + digits[point:]
        return rng.choice(["", "", "-", "+"]) + text
    return rng.choice(pool)


@pytest.mark.parametrize("seed", range(40))
def test_reader_random_files(seed: int) -> None:
    rng = random.Random(seed)
    order = rng.sample(range(4), 4)
    header = [NAMES[i] for i in order] + ["extra"] * rng.randint(0, 2)
    lines = [",".join(header)]
    for _ in range(rng.randint(0, 60)):
        if rng.random() < 0.05:
            lines.append("")
            continue
        cells = [_random_cell(rng, KINDS[i]) for i in order] + ["e"] * (len(header) - 4)
        lines.append(",".join(cells))
    end = rng.choice(["\n", "\r\n"])
    text = end.join(lines) + (end if rng.random() < 0.8 else "")
    check(text.encode("utf-8"), rng.choice([1, 2, 5, 8192]))


def test_reader_reports_bytes_read() -> None:
    data = HEADER + b"Dream,1.5,2,x\n" * 1000
    reader = CsvReader(encoder(), io.BytesIO(data), "in.csv", _Plan.width, 100)
    seen = [reader.bytes_read for _ in reader]
    assert seen == sorted(seen) and seen[-1] == len(data)


# -- output ------------------------------------------------------------------------------
def _via_csv(scores: Scores) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(scores.rows())
    return out.getvalue()


SPECIAL = [
    0.0,
    -0.0,
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    1e-300,
    5e-324,
    0.1,
    1 / 3,
    2.5e16,
    -123456.789,
    1e22,
    0.30000000000000004,
]


@pytest.mark.parametrize("seed", range(6))
def test_to_csv_is_what_csv_writer_writes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    classes: tuple[Any, ...] = [
        ("a", "b", "c"),
        ("", "x,y", 'q"uote', "new\nline", " sp "),
        (0, 1),
        (True, False, None),
    ][seed % 4]
    k = len(classes)
    pool = np.array(SPECIAL + list(rng.random(5)))
    repeated = pool[rng.integers(0, len(pool), (n, k))]  # few distinct values: formatted once
    distinct = rng.standard_normal((n, k)) * 10.0 ** rng.integers(-5, 5, (n, k))
    label = rng.integers(0, k, n)
    extra = Extra(name="margin", cols=(0, 1), labels=("lo", "hi"))
    cases = [
        Scores("classification", classes, label, repeated, None),
        Scores("classification", classes, label, distinct, None),
        Scores("classification", classes, label, distinct.astype(np.float32), None),
        Scores("classification", classes, label, None, None),
        Scores(
            "classification",
            classes,
            label,
            repeated,
            None,
            ((extra, distinct[:, :1].repeat(2, 1)),),
        ),
        Scores("regression", (), None, None, distinct[:, 0].copy()),
        Scores("regression", (), None, None, repeated[:, 0].copy()),
        Scores("regression", (), None, None, rng.integers(-(10**18), 10**18, n)),
        Scores(
            "regression", (), None, None, distinct[:, 0].copy(), ((extra, repeated[:, :2].copy()),)
        ),
    ]
    for scores in cases:
        assert scores.to_csv() == _via_csv(scores)


def test_score_csv_file_writes_what_rows_gives(tmp_path: Path) -> None:
    """The whole file path (reader, kernels, formatting) against iter_csv + csv.writer."""
    art = RESOURCES / "artifacts"
    plan = compile_estimators(
        joblib.load(art / "model.joblib"), joblib.load(art / "extractor.joblib")
    ).load()
    scorer = Scorer(plan, kernels())
    src = tmp_path / "in.csv"
    rng = random.Random(0)
    with open(RESOURCES / "gate" / "confidence.csv", newline="") as f:
        rows = list(csv.reader(f))
    body = [rng.choice(rows[1:]) for _ in range(20000)]
    with open(src, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows([rows[0], *body])
    dst = tmp_path / "out.csv"
    progress: list[tuple[int, int]] = []
    n = scorer.score_csv_file(src, dst, lambda r, b: progress.append((r, b)))
    want = io.StringIO()
    writer = csv.writer(want, lineterminator="\n")
    with open(src, newline="") as f:
        for i, (_, scores) in enumerate(scorer.iter_csv(f, str(src))):
            if i == 0:
                writer.writerow(scores.header())
            writer.writerows(scores.rows())
    assert n == 20000
    assert dst.read_text() == want.getvalue()
    assert progress[-1] == (20000, src.stat().st_size)
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)
    stream = io.StringIO()
    assert scorer.score_csv_file(src, stream) == 20000  # an open stream works too
    assert stream.getvalue() == want.getvalue()


def _cells_to_words(cells: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells joined by commas, as ``CsvReader._fill_plain`` lays a chunk out."""
    from mlbundle_runtime.inputs import _PAD

    data = ",".join(cells).encode("ascii")
    padded = np.zeros(_PAD + len(data) + _PAD + (-len(data) % 8), dtype=np.uint8)
    padded[_PAD : _PAD + len(data)] = np.frombuffer(data, dtype=np.uint8)
    ends = np.cumsum([len(c) + 1 for c in cells]) - 1
    starts = ends - np.array([len(c) for c in cells])
    return padded.view("<u8"), starts + _PAD, ends + _PAD


def test_bulk_numbers_are_float_to_the_bit() -> None:
    """Every cell the bulk parser takes is exactly float(cell); it leaves the others."""
    from mlbundle_runtime.inputs import _parse_decimals

    rng = random.Random(7)
    alphabet = "0123456789" * 4 + ".+- e_x"
    cells = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10))) for _ in range(60000)]
    cells += [
        "0",
        "-0",
        "+0",
        ".5",
        "5.",
        "-.5",
        "+5.",
        "00000001",
        "99999999",
        "9999999.",
        ".9999999",
        "-9999999",
        "1234.567",
    ]
    cells += [".", "-", "+", "-.", "+.", "1..2", "--1", "1-", "1+", "1.-"]
    words, s, e = _cells_to_words(cells)
    col = np.empty(len(cells))
    rest = set(_parse_decimals(col, words, s, e).tolist())
    taken = 0
    for r, cell in enumerate(cells):
        if r in rest:
            continue
        if cell == "":
            assert np.isnan(col[r])
            continue
        taken += 1
        want = np.float64(float(cell))  # the bulk parser only takes what float reads
        assert col[r].view(np.int64) == want.view(np.int64), (cell, col[r], want)
    plain = [c for c in cells if c and len(c) <= 8 and c.strip() == c and "_" not in c
             and "e" not in c and "x" not in c]  # fmt: skip
    readable = 0
    for c in plain:
        try:
            float(c)
            readable += 1
        except ValueError:
            pass
    assert taken == readable  # and it takes every short plain number


def test_reader_on_long_lines_and_small_reads() -> None:
    """Lines longer than a read, and a stream that returns a few bytes at a time."""

    class Trickle(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            return super().read(min(size if size and size > 0 else 7, 7))

    long = ",".join(["x" * 100_000] * 3)  # a line longer than a read; cells within csv's limit
    text = "site,x,y,kind,a,b,c\n" + f"Dream,1,2,x,{long}\n" * 3 + "A,.5,-2,yy,e,e,e\n" * 50
    data = text.encode()
    for chunk_rows in (1, 2, 8192):
        want = reference(text, chunk_rows)
        assert same(fast(data, chunk_rows), want)
        out: list[Any] = []
        for ws, where in CsvReader(encoder(), Trickle(data), "in.csv", _Plan.width, chunk_rows):
            out.append((ws[:, : len(NAMES)].copy(), [where(r) for r in range(len(ws))]))
        assert same(out, want)
