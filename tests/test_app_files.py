"""The app's CLI for files and scripts: CSV and JSON Lines both ways, bad rows, signals.

Run in-process through ``mlbundle_runtime.cli.main`` (as the frozen launcher calls it)
on the example's payload, and as a real process for Ctrl-C and SIGTERM; the frozen
binaries get the same signal test in ``test_frozen_interrupts``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlbundle_runtime import cli, load
from mlbundle_runtime.api import InputError, Model
from tests.conftest import RESOURCES, ROOT

CONFIDENCE = RESOURCES / "gate" / "confidence.csv"
HEADER = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex"
GOOD = "Dream,46.5,17.9,192,3500,female"
RECORD = {
    "island": "Dream",
    "bill_length_mm": 46.5,
    "bill_depth_mm": 17.9,
    "flipper_length_mm": 192,
    "body_mass_g": 3500,
    "sex": "female",
}
NOT_A_NUMBER = "is not a number (leave the cell empty or write NA for a missing value)"


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's payload as ``bundle prepare`` writes it (aot kernels, record, gate)."""
    out = tmp_path_factory.mktemp("prepared") / "payload"
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "prepare", "specs/penguins.toml", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def model(payload: Path) -> Model:
    return load(payload)


def run(
    payload: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    stdin: str | None = None,
) -> tuple[int, str, str]:
    monkeypatch.setenv("MLBUNDLE_PAYLOAD", str(payload))
    monkeypatch.delenv("DISPLAY", raising=False)
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# -- formats, streams, --keep ------------------------------------------------------------
def test_json_lines_both_ways_and_through_stdin_and_stdout(
    payload: Path, model: Model, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    records = [RECORD | {"id": f"p{i}", "body_mass_g": 3000 + 100 * i} for i in range(5)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")  # a blank line too
    predictions = model.predict_many([_inputs(r) for r in records])
    expected = [p.to_dict() for p in predictions]
    # JSON Lines in, JSON Lines out (by extension), the id kept first
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src),
                         "--output", str(tmp_path / "out.jsonl"), "--keep", "id")  # fmt: skip
    assert code == 0, err
    rows = jsonl((tmp_path / "out.jsonl").read_text())
    assert [r.pop("id") for r in rows] == [r["id"] for r in records]
    assert rows == expected
    assert list(json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])) == [
        "id", "prediction", "probabilities", "warnings"
    ]  # fmt: skip
    # the same from stdin to stdout: the format is the input's, told by its first byte
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", "-",
                         stdin=src.read_text())  # fmt: skip
    assert (code, err) == (0, "")
    assert jsonl(out) == expected
    # JSON Lines in, CSV out; CSV in, JSON Lines out: the same scores
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src),
                         "--format", "csv", "--keep", "id")  # fmt: skip
    table = list(csv.DictReader(io.StringIO(out)))
    assert list(table[0]) == ["id", *model.outputs.columns, "uncertain", "warnings", "error"]
    assert [t["uncertain"] for t in table] == [str(p.uncertain).lower() for p in predictions]
    assert [t["prediction"] for t in table] == [e["prediction"] for e in expected]
    assert float(table[2]["proba_Chinstrap"]) == expected[2]["probabilities"]["Chinstrap"]
    csv_src = tmp_path / "in.csv"
    csv_src.write_text(
        f"id,{HEADER},species\n"
        + "".join(f"{r['id']},{','.join(str(r[k]) for k in RECORD)},?\n" for r in records)
    )
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(csv_src),
                         "--output", "-", "--format", "jsonl", "--keep", "id")  # fmt: skip
    assert code == 0, err
    assert jsonl(out) == [{"id": r["id"]} | e for r, e in zip(records, expected, strict=True)]


def _inputs(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record[k] for k in RECORD}


def test_unknown_columns_and_fields_are_ignored_alike_and_named_once(
    payload: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    (tmp_path / "a.csv").write_text(f"{HEADER},colour,id\n{GOOD},blue,1\n{GOOD},red,2\n")
    (tmp_path / "a.jsonl").write_text(
        json.dumps(RECORD | {"colour": "blue", "id": 1}) + "\n" + json.dumps(RECORD | {"id": 2})
    )
    outs = []
    for name in ("a.csv", "a.jsonl"):
        dst = tmp_path / f"{name}.out.csv"
        code, out, err = run(payload, monkeypatch, capsys, "predict", "--input",
                             str(tmp_path / name), "--output", str(dst))  # fmt: skip
        assert code == 0, err
        assert err.splitlines()[1] == "note: ignored column(s) the model does not use: colour, id"
        outs.append(dst.read_text())
    assert outs[0] == outs[1]


def test_keep_names_a_missing_column_and_a_format_it_cannot_tell(
    payload: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    src = tmp_path / "a.csv"
    src.write_text(f"{HEADER}\n{GOOD}\n")
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src),
                         "--keep", "sample_id")  # fmt: skip
    assert code == 3
    columns = HEADER.replace(",", ", ")
    assert err == f"error: {src}: line 1: --keep sample_id: no such column (columns: {columns})\n"
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src),
                         "--output", str(tmp_path / "scores.txt"))  # fmt: skip
    assert code == 3 and "cannot tell CSV from JSON Lines by the extension '.txt'" in err
    assert "--format csv|jsonl" in err and not (tmp_path / "scores.txt").exists()


# -- bad rows -------------------------------------------------------------------------------
BAD_ROWS = [
    ("Dream,46.5,thirty,192,3500,female",
     f"line {{n}}, column 'bill_depth_mm': 'thirty' {NOT_A_NUMBER}"),
    ("Dream,46.5,17.9,192", "line {n} has 4 cells, the header has 6"),
    ("Dream,46.5,17.9,192,3500,female,extra", "line {n} has 7 cells, the header has 6"),
]  # fmt: skip


def test_bad_rows_get_their_reason_and_the_rest_are_scored(
    payload: Path, model: Model, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    lines = [HEADER, GOOD, BAD_ROWS[0][0], ",46.5,,192,NA,", BAD_ROWS[1][0], GOOD, BAD_ROWS[2][0]]
    src = tmp_path / "rows.csv"
    src.write_bytes(("\n".join(lines) + "\n").encode() + b"Dr\xe9am,46.5,17.9,192,3500,female\n")
    dst = tmp_path / "out.csv"
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src),
                         "--output", str(dst))  # fmt: skip
    assert code == cli.EXIT_SOME_ROWS_FAILED == 5
    reasons = [
        BAD_ROWS[0][1].format(n=3),
        BAD_ROWS[1][1].format(n=5),
        BAD_ROWS[2][1].format(n=7),
        "line 8, column 'island': byte 0xe9 is not UTF-8 text; save the file as UTF-8 "
        '(in a spreadsheet: "CSV UTF-8")',
    ]
    assert err.startswith(f"scored 3 of 7 rows into {dst} in ")
    assert err.endswith(f"; 4 could not be scored (their reasons are in the error column), "
                        f"the first: {reasons[0]}\n")  # fmt: skip
    table = list(csv.DictReader(dst.open()))
    assert [t["error"] for t in table] == [
        "",
        reasons[0],
        "",
        reasons[1],
        "",
        reasons[2],
        reasons[3],
    ]
    good = model.predict_many([RECORD, {k: None for k in RECORD} | {"bill_length_mm": 46.5,
                               "flipper_length_mm": 192}])  # fmt: skip
    assert [t["prediction"] for t in table if not t["error"]] == [
        good[0].label,
        good[1].label,
        good[0].label,
    ]  # missing values (empty, NA) score: the model's imputer fills them
    assert all(t["prediction"] == "" for t in table if t["error"])
    # --strict: the first bad row, by line, and nothing written (file or stdout)
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src),
                         "--output", str(tmp_path / "strict.csv"), "--strict")  # fmt: skip
    assert (code, err) == (3, f"error: {src}: {reasons[0]}\n")
    assert not (tmp_path / "strict.csv").exists()
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src), "--strict")
    assert (code, out) == (3, "")


def test_rows_a_step_of_the_model_refuses_fail_alone_among_many(
    payload: Path, model: Model, tmp_path: Path
) -> None:
    refused = {2, 5000, 5001, 9999}  # the imputer refuses an infinite value
    rows = [GOOD.replace("3500", "inf") if r in refused else GOOD for r in range(10_000)]
    (tmp_path / "in.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    result = model.predict_file(tmp_path / "in.csv", tmp_path / "out.csv")
    assert (result.scored, result.failed) == (10_000 - len(refused), len(refused))
    table = list(csv.DictReader((tmp_path / "out.csv").open()))
    failed = {r for r, t in enumerate(table) if t["error"]}
    assert failed == refused
    assert table[2]["error"] == (
        "line 4, field 'body_mass_g': an infinite value (inf) is not accepted by SimpleImputer "
        "(extractor/num/impute)"
    )
    assert {t["prediction"] for r, t in enumerate(table) if r not in refused} == {
        model.predict(RECORD).label
    }


def test_json_lines_bad_records_wrong_types_missing_fields_and_not_json(
    payload: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    lines = [
        json.dumps(RECORD),
        json.dumps(RECORD | {"body_mass_g": "heavy"}),
        json.dumps({k: v for k, v in RECORD.items() if k != "sex"}),
        "{not json",
        json.dumps([1, 2]),
        json.dumps(RECORD | {"island": 3}),
        json.dumps(RECORD | {"bill_length_mm": None, "island": "Atlantis"}),
        json.dumps(RECORD | {"bill_depth_mm": True}),
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src))
    assert code == 5
    rows = jsonl(out)
    errors = [r.get("error") for r in rows]
    assert errors[0] is None and errors[6] is None
    assert errors[1] == "line 2, field 'body_mass_g': expected a number or null, got str 'heavy'"
    assert errors[2].startswith("line 3: missing field(s) sex; expected fields: island, ")
    assert errors[3].startswith("line 4: not valid JSON (")
    assert errors[4].startswith("line 5: expected a JSON object with fields island, ")
    assert errors[4].endswith(", got an array")
    assert errors[5].startswith("line 6, field 'island': expected one of 'Biscoe', 'Dream', ")
    assert errors[7] == "line 8, field 'bill_depth_mm': expected a number or null, got bool True"
    # an unknown category still scores, with its warning
    assert rows[6]["warnings"] == [
        "island: a category the model never saw in training (known: Biscoe, Dream, Torgersen)"
    ]


def test_a_json_list_keeps_its_good_records(
    payload: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    data = [RECORD, RECORD | {"sex": 1}, RECORD]
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--json", json.dumps(data))
    assert code == 5
    results = json.loads(out)
    assert results[0] == results[2] and "prediction" in results[0]
    assert results[1] == {
        "error": "record 2, field 'sex': expected one of 'female', 'male' (a string) or null, "
        "got int 1"
    }
    assert err == 'error: 1 of 3 records could not be scored; each has its reason under "error"\n'
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--json", json.dumps(data),
                         "--strict")  # fmt: skip
    assert (code, out) == (3, "") and err.startswith("error: record 2, field 'sex'")


def test_out_of_range_values_warn_in_csv_and_json(
    payload: Path, model: Model, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    src = tmp_path / "w.csv"
    src.write_text(
        f"{HEADER}\n{GOOD}\nDream,46.5,17.9,192,35000,female\nMars,46.5,17.9,192,3500,female\n"
    )
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src))
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    high = next(i for i in model.inputs if i.name == "body_mass_g").training_range["max"]
    assert table[0]["warnings"] == ""
    assert (
        table[1]["warnings"]
        == f"body_mass_g = 35000 g is outside the training range 2700 to {high:g} g"
    )
    assert table[2]["warnings"].startswith("island: a category the model never saw in training")
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--json",
                         json.dumps(RECORD | {"body_mass_g": 35000}))  # fmt: skip
    assert json.loads(out)["warnings"] == [table[1]["warnings"]]


# -- whole-file problems -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "{src}: empty file; expected a header row with island, bill_length_mm, "),
        (b"island,bill_length,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n" + GOOD.encode(),
         "{src}: line 1: header lacks column(s) bill_length_mm; expected "),
        (b"isl\xe9nd," + HEADER.encode(), "{src}: line 1: byte 0xe9 is not UTF-8 text"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_read_as_a_whole_is_one_error_and_no_output(
    payload: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path,
    content: bytes, expected: str,
) -> None:  # fmt: skip
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    dst = tmp_path / "out.csv"
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src),
                         "--output", str(dst))  # fmt: skip
    assert code == 3
    assert err.startswith("error: " + expected.format(src=src)) and err.count("\n") == 1
    assert sorted(tmp_path.iterdir()) == [src]


def test_a_very_long_line_fails_its_row_only(
    payload: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    src = tmp_path / "long.csv"
    long_cell = '"' + "x" * (csv.field_size_limit() + 10) + '"'
    src.write_text(f"{HEADER}\n{GOOD}\nDream,46.5,17.9,192,3500,{long_cell}\n{GOOD}\n")
    code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src))
    assert code == 5
    table = list(csv.DictReader(io.StringIO(out)))
    assert [t["error"] for t in table] == [
        "", f"line 3: field larger than field limit ({csv.field_size_limit()})", ""
    ]  # fmt: skip


def test_an_output_that_cannot_be_written_is_named_and_the_input_is_never_overwritten(
    payload: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any, tmp_path: Path
) -> None:
    src = tmp_path / "in.csv"
    src.write_text(f"{HEADER}\n{GOOD}\n")
    for dst, reason in [
        (tmp_path / "nowhere" / "out.csv", "its folder does not exist"),
        (tmp_path, "is a folder; give a file name for the scores"),
        (src, "is the input file; write the scores to another file"),
    ]:
        code, out, err = run(payload, monkeypatch, capsys, "predict", "--input", str(src),
                             "--output", str(dst))  # fmt: skip
        assert (code, err) == (3, f"error: {dst}: {reason}\n")
    assert src.read_text() == f"{HEADER}\n{GOOD}\n" and sorted(tmp_path.iterdir()) == [src]
    code, out, err = run(
        payload, monkeypatch, capsys, "predict", "--input", str(tmp_path / "no.csv")
    )
    assert (code, err) == (3, f"error: {tmp_path / 'no.csv'}: no such file\n")


# -- properties: nothing a file holds gives a traceback --------------------------------------
_cells = st.one_of(
    st.text(max_size=8),
    st.sampled_from(["Dream", "Biscoe", "female", "NA", "", "nan", "1e309", "-0", "3500"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(st.lists(_cells, min_size=0, max_size=8), max_size=12),
    header=st.sampled_from([HEADER, HEADER + ",id", "id," + HEADER]),
    tail=st.binary(max_size=40),
)
def test_random_csv_bytes_score_or_fail_by_row_never_a_traceback(
    model: Model, tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], header: str,
    tail: bytes,
) -> None:  # fmt: skip
    folder = tmp_path_factory.mktemp("fuzz")
    body = "\n".join(",".join(r) for r in rows)
    (folder / "in.csv").write_bytes(f"{header}\n{body}\n".encode() + tail)
    try:
        result = model.predict_file(folder / "in.csv", folder / "out.jsonl")
    except InputError as exc:
        assert "\n" not in str(exc)
        assert sorted(p.name for p in folder.iterdir()) == ["in.csv"]
        return
    out = jsonl((folder / "out.jsonl").read_text())
    assert len(out) == result.rows and result.scored + result.failed == result.rows
    assert sum("error" in r for r in out) == result.failed
    assert all(("prediction" in r) != ("error" in r) for r in out)


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from([10**400, -(10**400), 2**63]),  # beyond float, beyond int64
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    records=st.lists(
        st.fixed_dictionaries(
            {}, optional={k: _json_values | st.just(v) for k, v in RECORD.items()}
        ),
        max_size=6,
    ),
    junk=st.lists(st.binary(max_size=20), max_size=3),
)
def test_random_records_and_json_lines_bytes_never_a_traceback(
    model: Model, tmp_path_factory: pytest.TempPathFactory, records: list[dict[str, Any]],
    junk: list[bytes],
) -> None:  # fmt: skip
    for record in records:  # one record through the API: an answer or an InputError
        try:
            model.predict(record)
        except InputError as exc:
            assert str(exc).startswith("record 1")
    folder = tmp_path_factory.mktemp("fuzz")
    lines = [json.dumps(r).encode() for r in records] + junk
    (folder / "in.jsonl").write_bytes(b"\n".join(lines))
    try:
        result = model.predict_file(folder / "in.jsonl", folder / "out.csv")
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    table = list(csv.DictReader((folder / "out.csv").open(newline="")))
    assert len(table) == result.rows
    assert sum(bool(t["error"]) for t in table) == result.failed


# -- Ctrl-C and SIGTERM ------------------------------------------------------------------
@pytest.fixture(scope="module")
def long_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 1.5 million rows: long enough to be stopped half-way."""
    body = CONFIDENCE.read_text().splitlines()
    path = tmp_path_factory.mktemp("long") / "long.csv"
    with path.open("w") as f:
        f.write(body[0] + "\n")
        block = "\n".join(body[1:]) + "\n"
        for _ in range(1_500_000 // (len(body) - 1)):
            f.write(block)
    return path


def interrupt(command: list[str], out: Path, sig: int, env: dict[str, str]) -> tuple[int, str]:
    """Start ``command``, wait until it is writing ``out``'s temporary file, send ``sig``."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir()):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "the temporary output never appeared"
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_scoring_leaves_the_output_as_it_was(
    payload: Path, long_csv: Path, tmp_path: Path, sig: int, code: int
) -> None:
    out = tmp_path / "scores.csv"
    out.write_text("yesterday's scores\n")
    env = dict(os.environ, MLBUNDLE_PAYLOAD=str(payload))
    env.pop("DISPLAY", None)
    command = [sys.executable, "-m", "mlbundle_runtime", "predict", "--input", str(long_csv),
               "--output", str(out)]  # fmt: skip
    returncode, err = interrupt(command, out, sig, env)
    assert returncode == code, err
    word = "interrupted" if sig == signal.SIGINT else "terminated"
    assert err.strip() == f"{word}: stopped; no output file was changed"
    assert "Traceback" not in err
    assert out.read_text() == "yesterday's scores\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.csv"]


@pytest.mark.frozen
@pytest.mark.parametrize("mode", ["onedir", "onefile"])
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_frozen_interrupts(built: Any, long_csv: Path, tmp_path: Path, mode: str, sig: int,
                           code: int) -> None:  # fmt: skip
    out = tmp_path / "scores.csv"
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    binary = built.onedir if mode == "onedir" else built.onefile
    returncode, err = interrupt(
        [str(binary), "predict", "--input", str(long_csv), "--output", str(out)], out, sig, env
    )
    assert returncode == code, err
    assert "Traceback" not in err and "Failed to execute script" not in err
    assert err.strip().endswith("stopped; no output file was changed")
    assert len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
