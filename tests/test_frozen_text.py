"""The review example (a text input) frozen: one build per session, onedir only.

``specs/reviews.toml`` is built through the real ``bundle build`` (the aot kernels the
session already compiled are reused). Inside the binary: ``predict`` on text (JSON,
a CSV with quoted multi-line reviews) answers what scikit-learn answers in this
process, the release gate passes in ``selftest``, and the window started with no
arguments under Xvfb shows a multi-line text box: Enter there starts a new line, and
the answer (Ctrl+Enter, copied with Ctrl+Shift+C) is the CLI's for the two-line text.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest

from bundler.freeze import run_frozen
from tests._display import Display
from tests.conftest import ROOT, run_bundle
from tests.test_frozen_window import (
    WINDOW_TIMEOUT,
    copied_result,
    expected_line,
    started,
    wait_for_window,
    window_title,
    x,
)

SPEC = ROOT / "specs" / "reviews.toml"
ARTIFACTS = ROOT / "resources" / "reviews" / "artifacts"
OUTPUT = Path(os.environ.get("MLBUNDLE_TEST_OUTPUT", ROOT / "tests" / "output"))
FIRST = "Great value, works perfectly"
SECOND = "broke after a week, waste of money, terrible customer service"
TEXTS = [
    "",
    "Zürich naïve façade: très bien!!",
    f"{FIRST}\n{SECOND}",
    'He said "returned it immediately", then: 5 stars',
    "unseen words only",
    " ".join([FIRST, SECOND] * 200),
]


@pytest.fixture(scope="session")
def reviews_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """specs/reviews.toml built once (onedir); the executable."""
    work = tmp_path_factory.mktemp("reviews")
    text = SPEC.read_text(encoding="utf-8").replace('"../', f'"{ROOT}/')
    spec = work / "reviews.toml"
    spec.write_text(text, encoding="utf-8")
    proc = run_bundle("build", str(spec), "--output-dir", str(work / "dist"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((work / "dist" / "reviews" / "build-report.json").read_text())
    assert "largest difference 0" in proc.stdout, proc.stdout
    assert report, "no build report"
    return work / "dist" / "reviews" / "onedir" / "reviews" / "reviews"


def sklearn_answers(texts: list[str]) -> tuple[Any, np.ndarray, np.ndarray]:
    extractor = joblib.load(ARTIFACTS / "extractor.joblib")
    model = joblib.load(ARTIFACTS / "model.joblib")
    Xt = extractor.transform(pd.DataFrame({"review": texts}))
    return model.predict(Xt), model.predict_proba(Xt), model.decision_function(Xt)


@pytest.mark.frozen
def test_frozen_predict_on_text_is_scikit_learns(reviews_app: Path) -> None:
    labels, proba, decision = sklearn_answers(TEXTS)
    for text, label, p, d in zip(TEXTS, labels, proba, decision, strict=True):
        proc = run_frozen(reviews_app, "predict", "--json", json.dumps({"review": text}))
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        assert answer["prediction"] == label
        assert answer["decision_function"] == float(d)  # to the bit
        got = [answer["probabilities"][c] for c in ("negative", "positive")]
        assert np.abs(np.array(got) - p).max() <= 1e-9
    missing = run_frozen(reviews_app, "predict", "--json", '{"review": null}')
    assert missing.returncode != 0
    assert "field 'review': expected text" in missing.stderr


@pytest.mark.frozen
def test_frozen_predict_csv_with_quoted_texts(reviews_app: Path, tmp_path: Path) -> None:
    src = tmp_path / "reviews.csv"
    with src.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review"])
        writer.writerows([[k, t] for k, t in enumerate(TEXTS)])
    proc = subprocess.run(
        [str(reviews_app), "predict", "--input", str(src), "--keep", "id", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"},
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    labels, _, decision = sklearn_answers(TEXTS)
    assert [r["prediction"] for r in rows] == list(labels)
    assert [float(r["decision_function"]) for r in rows] == [float(d) for d in decision]


@pytest.mark.frozen
def test_frozen_selftest_passes_the_gate(reviews_app: Path) -> None:
    proc = run_frozen(reviews_app, "selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "end-to-end: 69 rows match" in proc.stdout and "(largest difference 0)" in proc.stdout
    assert "selftest: PASSED" in proc.stdout


@pytest.mark.frozen
def test_frozen_window_has_a_multiline_text_box(
    reviews_app: Path, display: Display, tmp_path: Path
) -> None:
    text = f"{FIRST}\n{SECOND}"
    cli = run_frozen(reviews_app, "predict", "--json", json.dumps({"review": text}))
    assert cli.returncode == 0, cli.stderr
    label, percentages = expected_line(json.loads(cli.stdout))
    assert label == "negative"
    title = window_title(reviews_app, tmp_path)
    with started(reviews_app, display, tmp_path) as proc:
        wid = wait_for_window(display, title, proc, WINDOW_TIMEOUT)
        x(display, "windowfocus", "--sync", wid)
        x(display, "type", "--delay", "10", FIRST)
        x(display, "key", "Return")  # in a text box: a new line, not a prediction
        x(display, "type", "--delay", "10", SECOND)
        x(display, "key", "--clearmodifiers", "ctrl+Return")
        line = copied_result(display, wid)
        display.screenshot(OUTPUT / "frozen-window-text.png")
        x(display, "key", "--clearmodifiers", "ctrl+q")
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, out[-2000:] + err[-2000:]
    # the two-line text's answer (the first line alone is positive)
    assert line.split()[0] == label, line
    for part in percentages:
        assert part in line, (part, line)
