"""backend = "passthrough": ship a model the compiler refuses, with scikit-learn inside.

Three layers: ``bundler.pickle_globals`` against what a real (instrumented)
unpickling imports; the passthrough runtime in process; and one real frozen
build of a StackingClassifier (onedir only), run as an end user would.
"""

from __future__ import annotations

import _compat_pickle
import csv
import hashlib
import io
import json
import math
import pickle
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    StackingClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bundler.errors import ArtifactError
from bundler.freeze import bundled_names, render_spec, run_frozen
from bundler.pickle_globals import (
    PickleReadError,
    distributions,
    hidden_imports,
    pickle_globals,
)
from tests.conftest import run_bundle

# -- models ----------------------------------------------------------------------------


def iris_frame() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = load_iris(return_X_y=True, as_frame=True)
    names = np.array(["setosa", "versicolor", "virginica"])[np.asarray(y)]
    return X, names


def stacking(X: Any, y: Any) -> StackingClassifier:
    return StackingClassifier(
        [
            ("rf", RandomForestClassifier(10, random_state=0)),
            ("lr", LogisticRegression(max_iter=1000)),
        ],
        final_estimator=LogisticRegression(max_iter=1000),
    ).fit(X, y)


def mixed_frame() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = iris_frame()
    X = X.copy()
    X["site"] = np.where(X["sepal width (cm)"] > 3.0, "north", "south")
    X.loc[::7, "petal length (cm)"] = np.nan
    return X, y


def categorical_pipeline(X: pd.DataFrame, y: np.ndarray) -> Any:
    numeric = [c for c in X.columns if c != "site"]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["site"]),
        ]
    )
    return make_pipeline(pre, HistGradientBoostingClassifier(max_iter=10)).fit(X, y)


def _models() -> dict[str, Any]:
    X, y = iris_frame()
    Xm, ym = mixed_frame()
    return {
        "stacking": stacking(X.to_numpy(), y),
        "hgb_classifier": HistGradientBoostingClassifier(max_iter=10).fit(X, y),
        "hgb_regressor": HistGradientBoostingRegressor(max_iter=10).fit(
            X.iloc[:, 1:], X.iloc[:, 0]
        ),
        "pipeline": make_pipeline(StandardScaler(), Ridge()).fit(X.to_numpy(), np.arange(150.0)),
        "column_transformer": categorical_pipeline(Xm, ym),
        # arrays joblib writes in every way it can: object dtype (a nested pickle),
        # structured with an object field, Fortran order, big-endian, datetime,
        # empty, 0-d, matrix subclass, and a RandomState (pickled by reduce)
        "odd_arrays": {
            "object": np.array(["x", None, 3], dtype=object),
            "structured": np.zeros(3, dtype=[("f", "<f4"), ("o", "O")]),
            "unicode": np.array(["abc", "de"]),
            "datetime": np.arange(0, 5).astype("M8[D]"),
            "big_endian": np.arange(4, dtype=">i4"),
            "fortran": np.asfortranarray(np.ones((3, 4))),
            "empty": np.empty((0, 3)),
            "zero_d": np.array(2.5),
            "matrix": np.matrix([[1, 2]]),
            "random_state": np.random.RandomState(0),
        },
    }


@pytest.fixture(scope="module")
def models() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of tiny fits
        return _models()


# -- pickle_globals vs a real, instrumented unpickling -------------------------------


def unpickled_globals(path: Path, monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """What ``joblib.load`` asks ``find_class`` for (mapped as the unpickler maps it)."""
    seen: set[tuple[str, str]] = set()
    original = pickle._Unpickler.find_class  # joblib's unpickler is the pure-Python one

    def spy(self: Any, module: str, name: str) -> Any:
        m, n = module, name
        if self.proto < 3 and self.fix_imports:
            if (m, n) in _compat_pickle.NAME_MAPPING:
                m, n = _compat_pickle.NAME_MAPPING[(m, n)]
            elif m in _compat_pickle.IMPORT_MAPPING:
                m = _compat_pickle.IMPORT_MAPPING[m]
        seen.add((m, n))
        return original(self, module, name)

    with monkeypatch.context() as patch:
        patch.setattr(pickle._Unpickler, "find_class", spy)
        joblib.load(path)
    return seen


COMPRESSIONS = {
    "raw": 0,
    "zlib": 3,
    "gzip": ("gzip", 3),
    "bz2": ("bz2", 3),
    "lzma": ("lzma", 3),
    "xz": ("xz", 3),
}


@pytest.mark.parametrize("compress", list(COMPRESSIONS))
@pytest.mark.parametrize(
    "name",
    ["stacking", "hgb_classifier", "hgb_regressor", "pipeline", "column_transformer", "odd_arrays"],
)
def test_globals_match_instrumented_unpickling(
    models: dict[str, Any],
    name: str,
    compress: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / f"{name}.joblib"
    joblib.dump(models[name], path, compress=COMPRESSIONS[compress])
    found = pickle_globals(path)
    assert found == unpickled_globals(path, monkeypatch)
    assert ("joblib.numpy_pickle", "NumpyArrayWrapper") in found


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("name", ["stacking", "odd_arrays"])
def test_every_pickle_protocol(
    models: dict[str, Any],
    name: str,
    protocol: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(models[name], path, protocol=protocol)
    assert pickle_globals(path) == unpickled_globals(path, monkeypatch)


def test_arrays_without_alignment_padding(
    models: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dump into a stream that cannot tell() has no padding byte before its arrays."""

    class NoTell(io.BytesIO):
        def tell(self) -> int:
            raise io.UnsupportedOperation("tell")

    buf = NoTell()
    joblib.dump(models["odd_arrays"], buf)
    path = tmp_path / "unaligned.joblib"
    path.write_bytes(buf.getvalue())
    assert pickle_globals(path) == unpickled_globals(path, monkeypatch)


def test_unreadable_files_are_refused_clearly(models: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(models["stacking"], path)
    data = path.read_bytes()
    cases = {
        "truncated": (data[: len(data) // 2], "not a readable joblib/pickle file"),
        "trailing": (data + b"\x00extra", "unexpected data after the pickle's STOP"),
        "lz4": (b"\x04\x22\x4d\x18" + data, "lz4-compressed"),
        "old joblib": (b"ZF" + data, "joblib < 0.10"),
        "not a pickle": (b"hello world", "cannot follow opcode|not a readable"),
    }
    for case, (content, message) in cases.items():
        path.write_bytes(content)
        with pytest.raises(PickleReadError, match=message) as info:
            pickle_globals(path)
        assert str(path) in str(info.value), case
        assert isinstance(info.value, ArtifactError)  # the CLI maps it to exit 3
    with pytest.raises(PickleReadError, match="cannot be read"):
        pickle_globals(tmp_path / "missing.joblib")


def test_persistent_ids_are_refused(tmp_path: Path) -> None:
    class Persisting(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return "external" if obj == "secret" else None

    buf = io.BytesIO()
    Persisting(buf, protocol=4).dump({"a": "secret"})
    path = tmp_path / "persid.pkl"
    path.write_bytes(buf.getvalue())
    with pytest.raises(PickleReadError, match="persistent ids"):
        pickle_globals(path)


def test_hidden_imports_and_distributions() -> None:
    found = {
        ("sklearn.ensemble._stacking", "StackingClassifier"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("builtins", "getattr"),
        ("copyreg", "_reconstructor"),
    }
    modules = hidden_imports(found)
    assert modules == [
        "copyreg",
        "numpy",
        "numpy._core",
        "numpy._core.multiarray",
        "sklearn",
        "sklearn.ensemble",
        "sklearn.ensemble._stacking",
    ]
    dists = distributions(modules)
    assert set(dists) == {"numpy", "scikit-learn"}  # the standard library is not listed
    assert dists["scikit-learn"] == __import__("sklearn").__version__
    with pytest.raises(PickleReadError, match="__main__.Custom"):
        hidden_imports({("__main__", "Custom")})


# -- the passthrough stage and runtime, in process -----------------------------------


@dataclass(frozen=True)
class Project:
    folder: Path
    spec: Path
    model: Any
    X: Any  # the rows of the gate files, as scikit-learn takes them
    names: list[str]


def write_project(
    folder: Path,
    model: Any,
    X: Any,
    y: np.ndarray,
    *,
    backend: str = "passthrough",
    target: str = "species",
) -> Project:
    """A model, its spec and both gate files (expected outputs from scikit-learn)."""
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.joblib", compress=3)
    digest = hashlib.sha256((folder / "model.joblib").read_bytes()).hexdigest()
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    names = (
        [str(c) for c in X.columns]
        if isinstance(X, pd.DataFrame)
        else [f"x{i}" for i in range(X.shape[1])]
    )
    pred, proba = model.predict(X), model.predict_proba(X)
    cells = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
    with open(folder / "e2e.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, "prediction", *(f"proba_{c}" for c in model.classes_)])
        for r in range(0, len(cells), 5):
            w.writerow([*cells[r], pred[r], *(repr(float(p)) for p in proba[r])])
    with open(folder / "confidence.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([*names, target])
        for r, row in enumerate(cells):
            w.writerow([*row, y[r]])
    spec = folder / "spec.toml"
    spec.write_text(
        f"""[app]
name = "stacked"
version = "1.0.0"
title = "Iris species (StackingClassifier, passthrough)"

[model]
path = "model.joblib"
sha256 = "{digest}"
version = "1.0.0"

[gate.e2e]
path = "e2e.csv"
tolerance = 1e-12

[gate.confidence]
path = "confidence.csv"
target = "{target}"
metric = "accuracy"
range = [0.9, 1.0]

[build]
modes = ["onedir"]
backend = "{backend}"
installers = []
output_dir = "dist"
"""
    )
    return Project(folder, spec, model, X, names)


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return "" if math.isnan(value) else repr(float(value))


def payload_of(project: Project, tmp: Path) -> Path:
    """The payload the build would write, without freezing (for in-process tests)."""
    from bundler.artifacts import load_artifacts
    from bundler.gate import run_gate_stage
    from bundler.passthrough import describe_passthrough
    from bundler.payload import write_payload
    from bundler.spec import load_spec

    spec = load_spec(project.spec)
    described = describe_passthrough(spec, load_artifacts(spec))
    gate = run_gate_stage(spec, described.scorer())
    info = {"name": "stacked", "version": "1.0.0", "title": "t", "backend": "passthrough"}
    return write_payload(
        tmp / "payload",
        info=info,
        plan=described,
        record={},
        gate=gate,
        requirements="",
    )


def test_runtime_scores_as_scikit_learn_does(tmp_path: Path) -> None:
    from mlbundle_runtime.bundle import open_bundle
    from mlbundle_runtime.inputs import InputError
    from mlbundle_runtime.passthrough import PassthroughScorer

    X, y = mixed_frame()
    model = categorical_pipeline(X, y)
    project = write_project(tmp_path / "project", model, X, y)
    payload = payload_of(project, tmp_path)
    schema = json.loads((payload / "schema.json").read_text())
    assert schema["frame"] is True
    kinds = {i["name"]: i["kind"] for i in schema["inputs"]}
    assert kinds["site"] == "categorical" and kinds["sepal width (cm)"] == "numeric"
    assert schema["output"] == {
        "task": "classification",
        "classes": ["setosa", "versicolor", "virginica"],
        "proba": [0, 1, 2],
    }
    modules = schema["requires"]["modules"]
    assert "pandas" in modules
    assert "sklearn.ensemble._hist_gradient_boosting.gradient_boosting" in modules
    bundle = open_bundle(payload)
    assert sorted(bundle.info["files"]) == sorted(
        ["schema.json", "model.joblib", "record.json", "gate.json", "requirements.txt",
         "gate/e2e.csv", "gate/confidence.csv"]
    )  # fmt: skip
    scorer = bundle.scorer()
    assert isinstance(scorer, PassthroughScorer)
    records = [
        {n: (None if isinstance(v, float) and math.isnan(v) else v) for n, v in row.items()}
        for row in X.iloc[:12].to_dict("records")
    ]
    scores = scorer.score_records(records)
    assert scores.labels() == model.predict(X.iloc[:12]).tolist()
    np.testing.assert_array_equal(scores.proba, model.predict_proba(X.iloc[:12]))
    with open(project.folder / "e2e.csv", newline="") as f:
        rows = [row for _, s in scorer.iter_csv(f, "e2e.csv") for row in s.rows()]
    with open(project.folder / "e2e.csv", newline="") as f:
        want = list(csv.DictReader(f))
    assert [r[0] for r in rows] == [w["prediction"] for w in want]
    with pytest.raises(InputError, match="record 1, field 'site': expected a string or null"):
        scorer.score_records([{**records[0], "site": 3}])
    with pytest.raises(InputError, match="missing field"):
        scorer.score_records([{"site": "north"}])
    # a modified joblib file is refused before anything is unpickled
    (payload / "model.joblib").write_bytes(b"\x80\x04N.")
    from mlbundle_runtime.plan import PlanError

    with pytest.raises(PlanError, match="modified after the build"):
        open_bundle(payload).scorer()


def test_numpy_model_scores_without_pandas(tmp_path: Path) -> None:
    from mlbundle_runtime.bundle import open_bundle

    X, y = iris_frame()
    model = stacking(X.to_numpy(), y)
    project = write_project(tmp_path / "project", model, X.to_numpy(), y)
    payload = payload_of(project, tmp_path)
    bundle = open_bundle(payload)
    assert bundle.plan.input_names == ("x0", "x1", "x2", "x3")
    schema = json.loads((payload / "schema.json").read_text())
    assert schema["frame"] is False and "pandas" not in schema["requires"]["modules"]
    scorer = bundle.scorer()
    scores = scorer.score_records([{"x0": 5.1, "x1": 3.5, "x2": 1.4, "x3": 0.2}])
    assert scores.record(0)["prediction"] == "setosa"
    assert scorer.empty_header() == ["prediction", "proba_setosa", "proba_versicolor",
                                     "proba_virginica"]  # fmt: skip


def test_aot_bundles_leave_the_passthrough_runtime_out(tmp_path: Path) -> None:
    kernels = tmp_path / "_mlbundle_kernels.cpython-311-x86_64-linux-gnu.so"
    kernels.write_bytes(b"")
    common = dict(name="app", modes=["onedir"], payload_dir=tmp_path, payload_import_root=tmp_path)
    aot = render_spec(backend="aot", aot_extension=kernels, **common)
    for module in ("'mlbundle_runtime.passthrough'", "'pandas'", "'sklearn'", "'joblib'"):
        assert module in aot.split("excludes=")[1]
    passthrough = render_spec(
        backend="passthrough",
        aot_extension=None,
        hiddenimports=["joblib", "sklearn", "sklearn.ensemble._stacking"],
        **common,
    )
    hidden, excludes = passthrough.split("hiddenimports=")[1].split("excludes=")
    assert "'mlbundle_runtime.passthrough'" in hidden and "'sklearn.ensemble._stacking'" in hidden
    for kept in ("'sklearn'", "'joblib'", "'scipy'", "'threadpoolctl'", "'cloudpickle'"):
        assert kept not in excludes
    for dropped in ("'numba'", "'llvmlite'", "'pandas'", "'bundler'"):
        assert dropped in excludes


def test_compile_names_the_blocking_estimator_and_suggests_passthrough(tmp_path: Path) -> None:
    from sklearn.neighbors import NearestCentroid

    X, y = iris_frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = NearestCentroid()
        joblib.dump(model.fit(X.to_numpy(), y), tmp_path / "model.joblib")
    proc = run_bundle(
        "compile", "--model", str(tmp_path / "model.joblib"), "--out", str(tmp_path / "plan")
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "cannot compile sklearn.neighbors._nearest_centroid.NearestCentroid" in proc.stderr
    assert 'set backend = "passthrough"' in proc.stderr
    assert not (tmp_path / "plan").exists()


# -- the real thing: a frozen passthrough bundle -------------------------------------


@dataclass(frozen=True)
class Frozen:
    project: Project
    out: Path  # the published folder
    exe: Path  # the onedir executable
    stdout: str
    build_seconds: float


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Frozen]:
    import time

    X, y = iris_frame()
    Xn = X.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = stacking(Xn, y)
    project = write_project(tmp_path_factory.mktemp("project"), model, Xn, y)
    dist = tmp_path_factory.mktemp("dist")
    start = time.perf_counter()
    proc = run_bundle("build", str(project.spec), "--output-dir", str(dist))
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = dist / "stacked"
    yield Frozen(project, out, out / "onedir" / "stacked" / "stacked", proc.stdout, seconds)


@pytest.mark.frozen
def test_passthrough_build_passes_its_gate(frozen: Frozen) -> None:
    report = json.loads((frozen.out / "build-report.json").read_text())
    assert report["backend"] == "passthrough"
    assert report["gate"]["passed"] is True
    assert report["parity"]["rows"] > 0 and report["parity"]["max_abs_diff"] == 0.0
    print(
        f"\npassthrough onedir: {report['binaries']['onedir']['size'] / 1e6:.1f} MB, "
        f"built in {frozen.build_seconds:.1f} s"
    )
    proc = run_frozen(frozen.exe, "selftest")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("selftest: PASSED")
    record = json.loads(run_frozen(frozen.exe, "about", "--json").stdout)
    assert record["build"]["backend"] == record["scoring_code"]["backend"] == "passthrough"
    assert record["model"]["algorithm"] == "StackingClassifier"
    assert record["parity"]["passed"] is True
    assert "scikit-learn (passthrough)" in run_frozen(frozen.exe, "--version").stdout


@pytest.mark.frozen
def test_passthrough_bundle_ships_scikit_learn_and_no_kernels(frozen: Frozen) -> None:
    tops = {n.replace("\\", "/").split("/")[0].split(".")[0] for n in bundled_names(frozen.exe)}
    assert {"sklearn", "scipy", "joblib", "numpy"} <= tops
    assert not tops & {"numba", "llvmlite", "_mlbundle_kernels", "pandas", "bundler"}
    schema = json.loads((frozen.out / "payload" / "schema.json").read_text())
    assert "sklearn.ensemble._stacking" in schema["requires"]["modules"]
    assert set(schema["requires"]["distributions"]) == {"joblib", "numpy", "scikit-learn"}


@pytest.mark.frozen
def test_predict_json_equals_scikit_learn(frozen: Frozen) -> None:
    model, X = frozen.project.model, frozen.project.X
    for r in (0, 57, 149):
        record = {f"x{j}": float(v) for j, v in enumerate(X[r])}
        proc = run_frozen(frozen.exe, "predict", "--json", json.dumps(record))
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["prediction"] == model.predict(X[r : r + 1])[0]
        want = model.predict_proba(X[r : r + 1])[0]
        for cls, p in zip(model.classes_, want, strict=True):
            assert math.isclose(out["probabilities"][cls], p, rel_tol=0, abs_tol=1e-12)
    proc = run_frozen(frozen.exe, "predict", "--json", json.dumps({"x0": 1.0}))
    assert proc.returncode == 3 and "missing field(s) x1, x2, x3" in proc.stderr
    proc = run_frozen(frozen.exe, "predict", "--json", '{"x0": null, "x1": 1, "x2": 1, "x3": 1}')
    assert proc.returncode == 3 and "record 1: the model refused this row" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.frozen
def test_predict_csv_equals_scikit_learn(frozen: Frozen, tmp_path: Path) -> None:
    model, X = frozen.project.model, frozen.project.X
    src = frozen.project.folder / "confidence.csv"
    dst = tmp_path / "scores.csv"
    proc = run_frozen(frozen.exe, "predict", "--input", str(src), "--output", str(dst))
    assert proc.returncode == 0, proc.stderr
    with open(dst, newline="") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == [
        "prediction",
        *(f"proba_{c}" for c in model.classes_),
        "warnings",
        "error",
    ]
    assert [g["prediction"] for g in got] == model.predict(X).tolist()
    proba = np.array([[float(g[f"proba_{c}"]) for c in model.classes_] for g in got])
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-12)
