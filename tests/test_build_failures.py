"""``bundle build`` refuses bad input with a clear message and publishes nothing.

These builds fail before freezing, so they are quick; each runs the real CLI.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import joblib
import pytest
from sklearn.neighbors import NearestCentroid

from bundler.artifacts import sha256_file
from tests.conftest import RESOURCES, SPEC, run_bundle

ART = RESOURCES / "artifacts"


def write_spec(
    tmp: Path,
    *,
    model: Path | None = None,
    model_sha: str | None = None,
    e2e: Path | None = None,
    metric_range: str = "[0.93, 1.0]",
    extra: str = "",
) -> Path:
    model = model or ART / "model.joblib"
    spec = tmp / "app.toml"
    spec.write_text(f"""
[app]
name = "penguins"
version = "1.0.0"
title = "Penguins"

[model]
path = "{model}"
sha256 = "{model_sha or sha256_file(model)}"
version = "1.0.0"

[extractor]
path = "{ART / "extractor.joblib"}"
sha256 = "{sha256_file(ART / "extractor.joblib")}"
version = "1.0.0"

[gate.e2e]
path = "{e2e or RESOURCES / "gate" / "e2e.csv"}"

[gate.confidence]
path = "{RESOURCES / "gate" / "confidence.csv"}"
target = "species"
metric = "balanced_accuracy"
range = {metric_range}

[build]
output_dir = "{tmp / "dist"}"
{extra}
""")
    return spec


def assert_refused(proc, code: int, *fragments: str) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode == code, text
    assert "Traceback" not in text
    flat = " ".join(text.split())
    for fragment in fragments:
        assert fragment in flat, f"{fragment!r} not in {flat!r}"


def test_wrong_hash_is_refused_before_unpickling(tmp_path: Path) -> None:
    wrong = "0" * 64
    proc = run_bundle("build", str(write_spec(tmp_path, model_sha=wrong)))
    actual = sha256_file(ART / "model.joblib")
    assert_refused(proc, 3, "sha256 mismatch, refusing to unpickle", wrong, actual)
    assert not (tmp_path / "dist").exists()


def test_unsupported_estimator_names_class_and_alternatives(tmp_path: Path) -> None:
    ex = joblib.load(ART / "extractor.joblib")
    X = ex.transform(_frame())
    y = _frame_target()
    model = NearestCentroid().fit(X, y)
    path = tmp_path / "gb.joblib"
    joblib.dump(model, path)
    proc = run_bundle("build", str(write_spec(tmp_path, model=path)))
    assert_refused(proc, 4, "NearestCentroid", "Supported:", "RandomForestClassifier")
    assert not (tmp_path / "dist").exists()


def test_failing_e2e_row_stops_the_build(tmp_path: Path) -> None:
    with open(RESOURCES / "gate" / "e2e.csv", newline="") as f:
        rows = list(csv.reader(f))
    col = rows[0].index("prediction")
    rows[3][col] = "Gentoo" if rows[3][col] != "Gentoo" else "Adelie"
    bad = tmp_path / "e2e.csv"
    with open(bad, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    proc = run_bundle("build", str(write_spec(tmp_path, e2e=bad)))
    assert_refused(
        proc,
        6,
        "release gate failed",
        "end-to-end: FAILED on 1 of 56 rows",
        "row 3 (line 4): prediction",
    )
    assert not (tmp_path / "dist").exists()


def test_metric_outside_range_stops_the_build(tmp_path: Path) -> None:
    proc = run_bundle("build", str(write_spec(tmp_path, metric_range="[0.995, 1.0]")))
    assert_refused(
        proc, 6, "balanced_accuracy = 0.989247311827957", "FAILED: outside", "[0.995, 1.0]"
    )
    assert not (tmp_path / "dist").exists()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ('backend = "fast"', ["build.backend", "'fast'", "aot", "jit"]),
        ('modez = ["onedir"]', ["build.modez: unknown key"]),
    ],
)
def test_bad_spec_values_name_the_key(tmp_path: Path, extra: str, fragments: list[str]) -> None:
    proc = run_bundle("build", str(write_spec(tmp_path, extra=extra)))
    assert_refused(proc, 2, str(tmp_path / "app.toml"), *fragments)


def test_spec_input_docs_must_name_real_inputs(tmp_path: Path) -> None:
    spec = write_spec(tmp_path)
    spec.write_text(spec.read_text() + '\n[inputs.beak]\ndescription = "?"\n')
    proc = run_bundle("build", str(spec))
    assert_refused(proc, 2, "inputs.beak", "valid: island, bill_length_mm")


def test_missing_spec_file(tmp_path: Path) -> None:
    proc = run_bundle("build", str(tmp_path / "nope.toml"))
    assert_refused(proc, 2, "nope.toml")


def test_example_spec_is_valid() -> None:
    from bundler.spec import load_spec

    spec = load_spec(SPEC)
    assert spec.model.path.is_file() and spec.extractor is not None


def _frame():
    import pandas as pd

    df = pd.read_csv(RESOURCES / "gate" / "confidence.csv")
    for c in ("island", "sex"):
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df.drop(columns=["species"])


def _frame_target():
    import pandas as pd

    return pd.read_csv(RESOURCES / "gate" / "confidence.csv")["species"].to_numpy()


def test_score_and_compile_commands(tmp_path: Path) -> None:
    plan = tmp_path / "plan"
    proc = run_bundle(
        "compile",
        "--model",
        str(ART / "model.joblib"),
        "--extractor",
        str(ART / "extractor.joblib"),
        "--out",
        str(plan),
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in plan.iterdir()) == ["arrays.npz", "plan.json"]
    out = tmp_path / "scores.csv"
    proc = run_bundle(
        "score", str(plan), "--input", str(RESOURCES / "gate" / "e2e.csv"), "--output", str(out)
    )
    assert proc.returncode == 0, proc.stderr
    with open(out, newline="") as f:
        got = list(csv.DictReader(f))
    with open(RESOURCES / "gate" / "e2e.csv", newline="") as f:
        want = list(csv.DictReader(f))
    assert [g["prediction"] for g in got] == [w["prediction"] for w in want]
    # a wrong hash on the compile path is refused too
    proc = run_bundle(
        "compile",
        "--model",
        str(ART / "model.joblib"),
        "--sha256",
        "ab" * 32,
        "--out",
        str(tmp_path / "p2"),
    )
    assert_refused(proc, 3, "sha256 mismatch")
    assert not (tmp_path / "p2").exists()
    shutil.rmtree(plan)


AUDIT = {
    "model_author": '"Ada <ada@example.org>"',
    "model_date": "2026-11-01",
    "approved_by": '"Grace <grace@example.org>"',
    "approved_date": "2026-11-02",
    "approval_grounds": '"metric within range"',
    "privacy_reviewer": '"Pat <pat@example.org>"',
    "privacy_review_date": "2026-11-03",
    "security_reviewer": '"Sam <sam@example.org>"',
    "security_review_date": "2026-11-04",
}


def audited_spec(
    tmp: Path, *, skip: str = "", extractor_version: str = "1.0.0", training_sha: str | None = None
) -> Path:
    training = RESOURCES / "data" / "training.csv"
    audit = "\n".join(f"{k} = {v}" for k, v in AUDIT.items() if k != skip)
    spec = write_spec(tmp, extra="")
    text = spec.read_text().replace(
        'version = "1.0.0"\n\n[extractor]',
        f'version = "1.0.0"\nextractor_version = "{extractor_version}"\n\n[extractor]',
    )
    text += f"""
[data.training]
version = "v1"
location = "resources/data/training.csv"
sha256 = "{training_sha or sha256_file(training)}"
path = "{training}"

[data.validation]
version = "v1"
location = "resources/gate/confidence.csv"
sha256 = "{sha256_file(RESOURCES / "gate" / "confidence.csv")}"

[audit]
{audit}
"""
    spec.write_text(text)
    return spec


@pytest.mark.parametrize("field", list(AUDIT))
def test_release_build_refuses_each_missing_audit_field(tmp_path: Path, field: str) -> None:
    proc = run_bundle("build", str(audited_spec(tmp_path, skip=field)), "--release")
    assert_refused(proc, 2, "a release build (--release) needs every audit field", f"audit.{field}")
    assert not (tmp_path / "dist").exists()


def test_extractor_version_mismatch_is_refused(tmp_path: Path) -> None:
    proc = run_bundle("build", str(audited_spec(tmp_path, extractor_version="0.9.0")))
    assert_refused(proc, 2, "model.extractor_version", "'0.9.0'", "'1.0.0'")
    assert not (tmp_path / "dist").exists()


def test_training_data_hash_mismatch_is_refused(tmp_path: Path) -> None:
    proc = run_bundle("build", str(audited_spec(tmp_path, training_sha="ab" * 32)))
    assert_refused(proc, 3, "training data", "sha256 mismatch", "ab" * 32)
    assert not (tmp_path / "dist").exists()
