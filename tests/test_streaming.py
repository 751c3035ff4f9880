"""Scoring a CSV file from the command line: progress on stderr, output, and the benchmark.

``predict --input`` shows a live progress line only on a terminal, a summary
line at the end (none with ``--quiet``), and writes the same bytes to a file
or to stdout. ``bench/streaming.py`` runs end to end on a small input; nothing
here asserts anything about time.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import pytest

from bundler.compiler import compile_estimators, write_plan_files
from mlbundle_runtime import cli
from mlbundle_runtime.cli import Progress
from tests.conftest import RESOURCES, ROOT

E2E = RESOURCES / "gate" / "e2e.csv"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_progress_rewrites_one_line_then_leaves_the_summary() -> None:
    clock, err = _Clock(), _Terminal()
    progress = Progress(err, 2_000_000_000, live=True, clock=clock)
    progress.update(8192, 400_000)  # too soon: nothing
    assert err.getvalue() == ""
    clock.now += 10
    progress.update(3_000_000, 500_000_000)
    clock.now += 10
    progress.update(6_000_000, 1_000_000_000)
    shown = err.getvalue()
    assert shown.startswith(
        "\r3,000,000 rows, 500.0 of 2,000.0 MB (25.0%), 300,000 rows/s, 30.0s left"
    )
    assert "\r6,000,000 rows, 1,000.0 of 2,000.0 MB (50.0%), 300,000 rows/s, 20.0s left" in shown
    assert "\n" not in shown  # one line, rewritten in place
    progress.finish(12_000_000, "out.csv")
    last = err.getvalue().rsplit("\r", 1)[-1]
    assert last == "scored 12000000 rows into out.csv in 20.0s, 600,000 rows/s\n"


def test_progress_in_a_log_is_a_line_every_so_often() -> None:
    clock, err = _Clock(), io.StringIO()
    progress = Progress(err, None, live=False, clock=clock)
    for _ in range(100):  # 10 s of chunks: no line yet
        clock.now += 0.1
        progress.update(1000, 1_000_000)
    assert err.getvalue() == ""
    clock.now += Progress.LOG_EVERY
    progress.update(5000, 3_000_000)
    assert err.getvalue() == "progress: 5,000 rows, 3.0 MB, 125 rows/s\n"
    progress.close()  # nothing to take away
    progress.finish(5000, "out.csv")
    assert err.getvalue().splitlines()[-1].startswith("scored 5000 rows into out.csv in 40.0s")


def test_close_clears_the_live_line_before_an_error() -> None:
    clock, err = _Clock(), _Terminal()
    progress = Progress(err, 100, live=True, clock=clock)
    clock.now += 1
    progress.update(10, 50)
    progress.close()
    assert err.getvalue().endswith("\r" + " " * len(err.getvalue().split("\r")[1]) + "\r")


@pytest.fixture(scope="module")
def payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example's plan as a payload folder the app reads (jit kernels)."""
    art = RESOURCES / "artifacts"
    compiled = compile_estimators(
        joblib.load(art / "model.joblib"), joblib.load(art / "extractor.joblib")
    )
    folder = tmp_path_factory.mktemp("payload")
    write_plan_files(compiled, folder)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    info = {"name": "penguins", "version": "test", "backend": "jit", "files": files}
    (folder / "bundle.json").write_text(json.dumps(info))
    return folder


def _predict(
    payload: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, Any]:
    monkeypatch.setenv("MLBUNDLE_PAYLOAD", str(payload))
    code = cli.main(["predict", *args])
    return code, capsys.readouterr()


def test_predict_to_a_file_and_to_stdout_write_the_same_bytes(
    payload: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dst = tmp_path / "out.csv"
    code, out = _predict(payload, monkeypatch, capsys, "--input", str(E2E), "--output", str(dst))
    assert code == 0, out.err
    assert out.out == ""
    # not a terminal: the summary only, and the columns left out (the e2e file's outputs)
    assert out.err.startswith(f"scored 56 rows into {dst} in ")
    assert out.err.splitlines()[1:] == [
        "note: ignored column(s) the model does not use: "
        "prediction, proba_Adelie, proba_Chinstrap, proba_Gentoo"
    ]
    code, out = _predict(payload, monkeypatch, capsys, "--input", str(E2E))
    assert code == 0
    assert out.out == dst.read_text()
    assert out.err == ""  # scores on stdout, stderr not a terminal: nothing else
    code, out = _predict(
        payload, monkeypatch, capsys, "--input", str(E2E), "--output", str(dst), "--quiet"
    )
    assert (code, out.out, out.err) == (0, "", "")
    assert list(tmp_path.iterdir()) == [dst]  # the temporary file was renamed


def test_a_bad_cell_late_in_a_long_file_fails_its_row_or_with_strict_the_file(
    payload: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = tmp_path / "rows.csv"
    good = "Dream,46.5,17.9,192,3500,female\n"
    src.write_text(
        "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n"
        + good * 20000
        + "Dream,46.5,seventeen,192,3500,female\n"
        + good
    )
    reason = (
        "line 20002, column 'bill_depth_mm': 'seventeen' is not a "
        "number (leave the cell empty or write NA for a missing value)"
    )
    dst = tmp_path / "out.csv"
    argv = ("--input", str(src), "--output", str(dst))
    code, out = _predict(payload, monkeypatch, capsys, *argv, "--strict")
    assert code == 3
    assert out.err == f"error: {src}: {reason}\n"
    assert list(tmp_path.iterdir()) == [src]
    code, out = _predict(payload, monkeypatch, capsys, *argv)
    assert code == 5
    assert out.err.startswith(f"scored 20,001 of 20,002 rows into {dst} in ")
    assert out.err.endswith(f"1 could not be scored (their reasons are in the error column), "
                            f"the first: {reason}\n")  # fmt: skip
    lines = dst.read_text().splitlines()
    assert len(lines) == 20003 and lines[1] == lines[-1] and lines[1].endswith(",,")
    assert lines[20001] == f',,,,,"{reason}"'  # no uncertain column: a bare plan


def test_streaming_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "streaming.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "streaming.py"), "--size-mb", "2",
         "--work", str(tmp_path / "work"), "--out", str(out)],
        capture_output=True, text=True, cwd=ROOT, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "| end to end rows/s |" in proc.stdout  # the table line is printed
    res = json.loads(out.read_text())
    rows = res["input"]["rows"]
    assert rows > 40000 and res["input"]["bytes"] >= 2 * 2**20
    run = res["end_to_end"]
    assert run["rows"] == rows  # every row scored, once
    assert run["header"] == "prediction,proba_Adelie,proba_Chinstrap,proba_Gentoo,warnings,error"
    assert run["peak_rss_mb"] > 0 and run["rows_per_s"] > 0
    kernel = res["kernel_rows_per_s"]["best"]
    assert kernel["chunked"] > 0 and kernel["batch_100k"] > 0 and kernel["chunked_1_thread"] > 0
    assert res["stages"]["rows"] == rows
