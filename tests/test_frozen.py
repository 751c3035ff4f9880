"""The real thing: the example built by ``bundle build`` and run as an end user would.

Both binaries are copies outside the source tree, run with a clean
environment (no PYTHONPATH, no venv, an empty working folder).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from bundler.freeze import bundled_names, run_frozen
from tests.conftest import RESOURCES, Built

pytestmark = pytest.mark.frozen

E2E = RESOURCES / "gate" / "e2e.csv"
MODES = ["onedir", "onefile"]
FORBIDDEN = ("sklearn", "scipy", "joblib", "numba", "llvmlite", "pandas", "bundler")


def exe(built: Built, mode: str) -> Path:
    return built.onedir if mode == "onedir" else built.onefile


def e2e_rows() -> list[dict[str, str]]:
    with open(E2E, newline="") as f:
        return list(csv.DictReader(f))


def as_record(row: dict[str, str]) -> dict[str, object]:
    record: dict[str, object] = {}
    for name in (
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
    ):
        cell = row[name]
        if cell == "":
            record[name] = None
        elif name in ("island", "sex"):
            record[name] = cell
        else:
            record[name] = float(cell)
    return record


def test_build_published_both_binaries_and_a_report(built: Built) -> None:
    report = json.loads((built.out / "build-report.json").read_text())
    assert set(report["binaries"]) == {"onedir", "onefile", "tar.gz", "deb"}
    assert report["gate"]["passed"] is True
    assert report["parity"]["max_abs_diff"] <= 1e-9
    assert (built.out / "onefile" / "penguins").stat().st_size == report["binaries"]["onefile"][
        "size"
    ]
    # no staging leftovers beside the published folder
    assert [p.name for p in built.out.parent.iterdir()] == ["penguins"]


@pytest.mark.parametrize("mode", MODES)
def test_predict_json_matches_expected_outputs(built: Built, mode: str) -> None:
    rows = e2e_rows()
    for row in (rows[0], rows[-1], rows[-4]):  # a normal row, unseen island, all-missing
        proc = run_frozen(exe(built, mode), "predict", "--json", json.dumps(as_record(row)))
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["prediction"] == row["prediction"]
        for cls, p in out["probabilities"].items():
            assert math.isclose(p, float(row[f"proba_{cls}"]), abs_tol=1e-9)


@pytest.mark.parametrize("mode", MODES)
def test_predict_csv_writes_full_precision_file(built: Built, mode: str, tmp_path: Path) -> None:
    dst = tmp_path / "scores.csv"
    proc = run_frozen(exe(built, mode), "predict", "--input", str(E2E), "--output", str(dst))
    assert proc.returncode == 0, proc.stderr
    with open(dst, newline="") as f:
        got = list(csv.DictReader(f))
    want = e2e_rows()
    assert len(got) == len(want)
    outputs = ["prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]
    assert list(got[0]) == [*outputs, "uncertain", "warnings", "error"]
    for g, w in zip(got, want, strict=True):
        assert g["prediction"] == w["prediction"] and g["error"] == ""
        for col in outputs[1:]:
            assert abs(float(g[col]) - float(w[col])) <= 1e-9
    assert not list(tmp_path.glob(".*tmp"))  # written via a temporary file, then renamed


@pytest.mark.parametrize("mode", MODES)
def test_about_and_version_describe_the_model(built: Built, mode: str) -> None:
    about = run_frozen(exe(built, mode), "about")
    assert about.returncode == 0, about.stderr
    assert "RandomForestClassifier" in about.stdout
    assert "scikit-learn 1.9.1" in about.stdout
    record = json.loads(run_frozen(exe(built, mode), "about", "--json").stdout)
    assert (
        record["model"]["sha256"]
        == json.loads((built.out / "build-report.json").read_text())["model"]["sha256"]
    )
    assert [i["name"] for i in record["inputs"]] == [
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
    ]
    version = run_frozen(exe(built, mode), "--version")
    assert version.returncode == 0
    assert version.stdout.startswith("penguins 1.0.0")


@pytest.mark.parametrize("mode", MODES)
def test_selftest_passes_inside_the_binary(built: Built, mode: str) -> None:
    proc = run_frozen(exe(built, mode), "selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "end-to-end: 56 rows match" in proc.stdout
    assert "selftest: PASSED" in proc.stdout


GOOD = {
    "island": "Dream",
    "bill_length_mm": 46.5,
    "bill_depth_mm": 17.9,
    "flipper_length_mm": 192,
    "body_mass_g": 3500,
    "sex": "female",
}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["predict", "--json", json.dumps({k: v for k, v in GOOD.items() if k != "sex"})],
            "missing field(s) sex",
        ),
        (
            ["predict", "--json", json.dumps(GOOD | {"bill_depth_mm": "deep"})],
            "field 'bill_depth_mm': expected a number or null, got str 'deep'",
        ),
        (["predict", "--json", json.dumps(GOOD | {"colour": "red"})], "unknown field(s) colour"),
        (["predict", "--json", "{not json"], "--json: not valid JSON"),
        (
            ["predict", "--json", json.dumps(GOOD | {"body_mass_g": math.inf})],
            "field 'body_mass_g': an infinite value",
        ),
        (["predict", "--input", "/no/such/file.csv"], "/no/such/file.csv: no such file"),
    ],
)
def test_bad_input_is_a_clear_error(built: Built, args: list[str], message: str) -> None:
    proc = run_frozen(built.onedir, *args)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_csv_cell_names_row_and_column(built: Built, tmp_path: Path) -> None:
    src = tmp_path / "rows.csv"
    src.write_text(
        "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex\n"
        "Dream,46.5,17.9,192,3500,female\n"
        "Dream,46.5,seventeen,192,3500,female\n"
    )
    dst = tmp_path / "out.csv"
    proc = run_frozen(
        built.onedir, "predict", "--input", str(src), "--output", str(dst), "--strict"
    )
    assert proc.returncode == 3
    assert "rows.csv: line 3, column 'bill_depth_mm': 'seventeen' is not a number" in proc.stderr
    assert not dst.exists()  # nothing half-written
    assert list(tmp_path.iterdir()) == [src]
    proc = run_frozen(built.onedir, "predict", "--input", str(src), "--output", str(dst))
    assert proc.returncode == 5  # the other row is scored; the bad one carries its reason
    rows = list(csv.DictReader(dst.open()))
    assert rows[0]["error"] == "" and rows[1]["error"].startswith("line 3, column 'bill_depth_mm'")
    dst.unlink()
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    proc = run_frozen(built.onedir, "predict", "--input", str(binary))
    assert proc.returncode == 3 and "Traceback" not in proc.stderr


def test_aot_bundle_ships_no_build_stack(built: Built) -> None:
    for mode in MODES:
        names = bundled_names(exe(built, mode))
        assert any("_mlbundle_kernels" in n for n in names)
        leaked = sorted(
            {n for n in names for f in FORBIDDEN if n == f or n.startswith((f + ".", f + "/"))}
        )
        assert leaked == [], f"{mode} ships {leaked[:10]}"


def test_model_record_inside_the_bundle(built: Built) -> None:
    from bundler.artifacts import sha256_file
    from mlbundle_runtime.backend import kernel_source_hash

    record = json.loads(run_frozen(built.onefile, "about", "--json").stdout)
    assert record["schema"] == "mlbundle.record" and record["schema_version"] == "1.5"
    model, extractor = record["model"], record["extractor"]
    assert model["algorithm"] == "RandomForestClassifier"
    assert model["hyperparameters"]["n_estimators"] == 100
    assert model["sha256"] == sha256_file(RESOURCES / "artifacts" / "model.joblib")
    assert extractor["algorithm"] == "ColumnTransformer"
    assert extractor["hyperparameters"]["transformers"][0][1]["class"].endswith("Pipeline")
    assert record["training"]["libraries"] == {"scikit-learn": "1.9.1"}
    assert record["outputs"]["columns"] == [
        "prediction",
        "proba_Adelie",
        "proba_Chinstrap",
        "proba_Gentoo",
    ]
    assert record["outputs"]["consume"].startswith("Use `prediction`")
    units = {i["name"]: i["unit"] for i in record["inputs"]}
    assert units["bill_length_mm"] == "mm"
    cats = {i["name"]: i.get("categories") for i in record["inputs"]}
    assert cats["island"] == ["Biscoe", "Dream", "Torgersen"]
    assert record["gate"]["confidence"]["metric"] == "balanced_accuracy"
    assert 0.93 <= record["gate"]["confidence"]["value"] <= 1.0
    assert record["gate"]["e2e"]["rows"] == 56
    assert record["scoring_code"]["kernels_sha256"] == kernel_source_hash()
    assert record["scoring_code"]["backend"] == "aot"
    assert record["build"]["libraries"]["scikit-learn"] == "1.9.1"
    assert record["build"]["tool"] == "mlbundle"


def test_development_build_is_marked_unapproved(built: Built) -> None:
    about = run_frozen(built.onedir, "about")
    assert about.stdout.startswith("UNAPPROVED")
    assert "UNAPPROVED development build" in run_frozen(built.onefile, "--version").stdout
    record = json.loads(run_frozen(built.onedir, "about", "--json").stdout)
    assert record["audit"]["status"] == "UNAPPROVED"
    assert record["audit"]["release_build"] is False
    assert record["data"]["training"]["verified"] is True
    ranges = {i["name"]: i["training_range"] for i in record["inputs"]}
    assert ranges["bill_length_mm"]["min"] < ranges["bill_length_mm"]["max"]
    assert ranges["sex"] == {"categories": ["female", "male"]}


@pytest.mark.parametrize("name", ["arrays.npz", "plan.json", "record.json"])
def test_app_refuses_a_tampered_payload(built: Built, tmp_path: Path, name: str) -> None:
    import shutil

    copy = tmp_path / "penguins"
    shutil.copytree(built.onedir.parent, copy)
    target = copy / "_internal" / "mlbundle_payload" / name
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    args = ["about"] if name == "record.json" else ["predict", "--json", json.dumps(GOOD)]
    proc = run_frozen(copy / "penguins", *args)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"the bundle's {name} was modified after the build" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_installers_unpack_to_a_working_app(built: Built, tmp_path: Path) -> None:
    import subprocess
    import tarfile

    installers = built.out / "installers"
    tarball = installers / "penguins-1.0.0-linux-x86_64.tar.gz"
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        assert names[0] == "penguins-1.0.0"
        assert all(m.uid == 0 and m.uname == "root" for m in tar.getmembers())
        tar.extractall(tmp_path / "tgz", filter="data")
    proc = run_frozen(tmp_path / "tgz" / "penguins-1.0.0" / "app" / "penguins", "selftest")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    deb = installers / "penguins_1.0.0_amd64.deb"
    info = subprocess.run(
        ["dpkg-deb", "--field", str(deb), "Package", "Version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Package: penguins" in info and "Version: 1.0.0" in info
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path / "deb")], check=True)
    launcher = (tmp_path / "deb" / "usr" / "bin" / "penguins").read_text()
    assert "exec /opt/penguins/penguins" in launcher
    proc = run_frozen(tmp_path / "deb" / "opt" / "penguins" / "penguins", "--version")
    assert proc.returncode == 0 and proc.stdout.startswith("penguins 1.0.0")
