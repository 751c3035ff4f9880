"""The gate and data files a release engineer writes by hand, read as strictly as the app.

Each case runs the build's own checks (``bundler.build.check_model``: the spec's
inputs, the gate files read once, parity, the gate, the data files) on the
example model with a gate or data file changed the way people get them wrong,
and shows the message the build now gives. A property test mutates the files
at random and finds no traceback and no error that fails to name the file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bundler.artifacts import Artifacts, load_artifacts
from bundler.build import check_model
from bundler.compiler import compile_estimators
from bundler.errors import BundleError, GateError, InputError, ParityError, SpecError
from bundler.gate import shown
from bundler.spec import load_spec
from mlbundle_runtime.inputs import BOM
from mlbundle_runtime.scorer import Scorer, output_columns
from tests._parity import kernels

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "penguins.toml"
FILES = {
    "e2e": ROOT / "resources" / "gate" / "e2e.csv",
    "confidence": ROOT / "resources" / "gate" / "confidence.csv",
    "training": ROOT / "resources" / "data" / "training.csv",
}
#: The spec key that names each file, as messages give it.
KEYS = {
    "e2e": "[gate.e2e] path",
    "confidence": "[gate.confidence] path",
    "training": "[data.training] path",
}
#: Exit codes ``bundle build`` documents for problems in these files.
DOCUMENTED = {SpecError: 2, ParityError: 5, GateError: 6, InputError: 9}


@dataclass(frozen=True)
class Example:
    artifacts: Artifacts
    scorer: Scorer
    inputs: list[dict[str, Any]]


@functools.cache
def example() -> Example:
    """The example's model, compiled once and bound to the JIT kernels."""
    spec = load_spec(SPEC)
    artifacts = load_artifacts(spec)
    compiled = compile_estimators(
        artifacts.model.estimator, artifacts.extractor.estimator if artifacts.extractor else None
    )
    return Example(artifacts, Scorer(compiled.load(), kernels()), compiled.header["inputs"])


def write_spec(folder: Path, files: dict[str, bytes], extra: str = "") -> Path:
    """The example's spec in ``folder``, naming copies of its gate and data files there
    (``files`` replaces some of them), with the data hashes of the copies."""
    folder.mkdir(parents=True, exist_ok=True)
    text = SPEC.read_text().replace('"../', f'"{ROOT}/')
    original = tomllib.loads(SPEC.read_text())
    for name, path in FILES.items():
        data = files.get(name, path.read_bytes())
        (folder / f"{name}.csv").write_bytes(data)
        text = text.replace(f'"{ROOT}/{path.relative_to(ROOT)}"', f'"{name}.csv"')
    digest = {
        n: hashlib.sha256((folder / f"{n}.csv").read_bytes()).hexdigest()
        for n in ("training", "confidence")
    }
    text = text.replace(original["data"]["training"]["sha256"], digest["training"])
    text = text.replace(original["data"]["validation"]["sha256"], digest["confidence"])
    if extra:
        text = text.replace("[gate.e2e]\n", f"[gate.e2e]\n{extra}\n")
    spec = folder / "penguins.toml"
    spec.write_text(text)
    return spec


def run_checks(folder: Path, files: dict[str, bytes], extra: str = "") -> Any:
    """The build's checks on the example with ``files`` changed; the gate report."""
    ex = example()
    spec = load_spec(write_spec(folder, files, extra))
    _, gate, _ = check_model(spec, ex.artifacts, ex.scorer, ex.inputs)
    return gate


def refusal(folder: Path, files: dict[str, bytes], extra: str = "") -> BundleError:
    with pytest.raises(BundleError) as info:
        run_checks(folder, files, extra)
    return info.value


def edit(name: str, old: str, new: str, count: int = -1) -> bytes:
    text = FILES[name].read_text()
    assert old in text
    return text.replace(old, new, count).encode()


def source(folder: Path, name: str) -> str:
    return f"{shown(folder / f'{name}.csv')} ({KEYS[name]})"


# -- the cases from the issue, each with its message ---------------------------------------
def test_the_example_passes_and_says_what_it_compared(tmp_path: Path) -> None:
    gate = run_checks(tmp_path, {})
    assert gate.result.passed
    assert gate.result.e2e_columns == (
        "prediction",
        "proba_Adelie",
        "proba_Chinstrap",
        "proba_Gentoo",
    )
    assert gate.result.summary()[0] == (
        "end-to-end: 56 rows match on prediction, proba_Adelie, proba_Chinstrap, proba_Gentoo "
        "(largest difference 0)"
    )
    assert gate.to_json()["e2e"]["columns"] == list(gate.result.e2e_columns)


def test_an_e2e_set_made_from_the_apps_output_may_keep_its_warnings_and_error_columns(
    tmp_path: Path,
) -> None:
    lines = FILES["e2e"].read_text().splitlines()
    made = [lines[0] + ",uncertain,warnings,error"] + [line + ",false,," for line in lines[1:]]
    assert run_checks(tmp_path, {"e2e": ("\n".join(made) + "\n").encode()}).result.passed
    # a row the app could not score has empty outputs: the gate names it
    cells = made[3].split(",")
    failed = ",".join(cells[:6] + [""] * 4) + ",,,line 4: a reason"
    broken = "\n".join([*made[:3], failed, *made[4:]]) + "\n"
    err = refusal(tmp_path, {"e2e": broken.encode()})
    assert "row 3 (line 4): prediction 'Adelie', expected ''" in str(err)


@pytest.mark.parametrize("wrong", ["proba_adelie", "prob_Adelie", "proba_ Adelie"])
def test_a_misspelled_output_column_is_refused_with_the_right_name(
    tmp_path: Path, wrong: str
) -> None:
    err = refusal(tmp_path, {"e2e": edit("e2e", "proba_Adelie", wrong)})
    assert isinstance(err, InputError) and err.exit_code == 9
    assert str(err) == (
        f"{source(tmp_path, 'e2e')}: line 1: unknown column {wrong.strip()!r}; did you mean "
        "'proba_Adelie'? an e2e set holds the inputs (island, bill_length_mm, bill_depth_mm, "
        "flipper_length_mm, body_mass_g, sex) and the expected outputs (prediction, "
        "proba_Adelie, proba_Chinstrap, proba_Gentoo)"
    )


def _only_prediction() -> bytes:
    lines = FILES["e2e"].read_text().splitlines()
    return ("\n".join(",".join(line.split(",")[:7]) for line in lines) + "\n").encode()


def test_an_e2e_set_without_probabilities_must_say_so_in_the_spec(tmp_path: Path) -> None:
    err = refusal(tmp_path, {"e2e": _only_prediction()})
    assert str(err) == (
        f"{source(tmp_path, 'e2e')}: line 1: no column proba_Adelie, proba_Chinstrap, "
        "proba_Gentoo; the e2e set must give the expected prediction, proba_Adelie, "
        "proba_Chinstrap, proba_Gentoo (add the column(s), or name the outputs to compare "
        "in the spec's [gate.e2e] compare)"
    )
    gate = run_checks(tmp_path / "fewer", {"e2e": _only_prediction()}, 'compare = ["prediction"]')
    assert gate.result.passed and gate.result.e2e_columns == ("prediction",)
    assert gate.result.summary()[0].startswith("end-to-end: 56 rows match on prediction (")


def test_compare_names_only_outputs_the_model_has(tmp_path: Path) -> None:
    err = refusal(tmp_path, {}, 'compare = ["prediction", "proba_adelie"]')
    assert isinstance(err, SpecError) and err.exit_code == 2
    assert str(err).endswith(
        "gate.e2e.compare: 'proba_adelie' is not an output of this model; did you mean "
        "'proba_Adelie'? valid: prediction, proba_Adelie, proba_Chinstrap, proba_Gentoo"
    )
    err = refusal(tmp_path / "left-out", {}, 'compare = ["prediction"]')
    assert (
        "column proba_Adelie, proba_Chinstrap, proba_Gentoo is an output that [gate.e2e] "
        "compare leaves out (prediction); add it to compare or remove the column" in str(err)
    )


def test_a_wrong_expected_value_fails_the_gate_naming_row_and_line(tmp_path: Path) -> None:
    err = refusal(tmp_path, {"e2e": edit("e2e", "Adelie,0.99,0.01,0.0", "Adelie,0.5,0.01,0.0", 1)})
    assert isinstance(err, GateError) and err.exit_code == 6
    assert "row 1 (line 2): proba_Adelie 0.99, expected 0.5 (difference 0.49 > 1e-09)" in str(err)
    assert str(err).startswith(f"the release gate failed ({shown(tmp_path / 'e2e.csv')}, ")


def test_a_header_typo_in_an_input_is_named(tmp_path: Path) -> None:
    for name in ("e2e", "confidence"):
        err = refusal(tmp_path / name, {name: edit(name, "bill_depth_mm", "bill_depht_mm", 1)})
        assert isinstance(err, InputError)
        assert str(err).startswith(
            f"{source(tmp_path / name, name)}: line 1: header lacks column(s) bill_depth_mm; "
        )
        assert str(err).endswith("did you mean 'bill_depht_mm' for 'bill_depth_mm'?")
    err = refusal(tmp_path / "training", {"training": edit("training", "sex", "gender", 1)})
    assert str(err).startswith(
        f"{source(tmp_path / 'training', 'training')}: line 1: header lacks column(s) sex; "
    )


def test_a_byte_order_mark_and_crlf_line_ends_are_fine(tmp_path: Path) -> None:
    files = {n: BOM + p.read_bytes().replace(b"\n", b"\r\n") for n, p in FILES.items()}
    gate = run_checks(tmp_path, files)
    assert gate.result.passed and gate.result.e2e_rows == 56 and gate.result.confidence_rows == 86


def test_text_in_a_numeric_cell_is_named_by_row_line_and_column(tmp_path: Path) -> None:
    err = refusal(tmp_path, {"e2e": edit("e2e", "Biscoe,37.7,", "Biscoe,thirty,", 1)})
    assert str(err) == (
        f"{source(tmp_path, 'e2e')}: row 1 (line 2), column 'bill_length_mm': 'thirty' is not a "
        "number (leave the cell empty or write NA for a missing value)"
    )
    err = refusal(tmp_path / "expected", {"e2e": edit("e2e", "Adelie,0.99,", "Adelie,high,", 1)})
    assert str(err) == (
        f"{source(tmp_path / 'expected', 'e2e')}: row 1 (line 2), column 'proba_Adelie': 'high' "
        "is not a number; expected the output's value (NA for a missing one)"
    )
    err = refusal(tmp_path / "data", {"training": edit("training", "Dream,51.3,", "Dream,x,", 1)})
    assert str(err) == (
        f"{source(tmp_path / 'data', 'training')}: row 1 (line 2), column 'bill_length_mm': 'x' "
        "is not a number (the input is numeric; leave the cell empty or write NA for a missing "
        "value)"
    )


@pytest.mark.parametrize("name", ["e2e", "confidence", "training"])
def test_bytes_that_are_not_utf8_are_named_by_line_and_column(tmp_path: Path, name: str) -> None:
    data = FILES[name].read_bytes()
    second = data.index(b"\n", data.index(b"\n") + 1) + 1  # line 3
    latin1 = data[:second] + b"Dr\xe9am" + data[second + len(b"Dream") :]
    if not data[second:].startswith(b"Dream"):
        latin1 = data[:second] + b"\xe9" + data[second + 1 :]
    err = refusal(tmp_path, {name: latin1})
    assert isinstance(err, InputError) and err.exit_code == 9
    assert str(err) == (
        f"{source(tmp_path, name)}: line 3, column 'island': byte 0xe9 is not UTF-8 text; save "
        'the file as UTF-8 (in a spreadsheet: "CSV UTF-8")'
    )


def test_a_short_row_is_named_by_its_line(tmp_path: Path) -> None:
    err = refusal(tmp_path, {"confidence": edit("confidence", ",male,Adelie\n", ",male\n", 1)})
    assert re.fullmatch(
        re.escape(source(tmp_path, "confidence")) + r": line \d+ has 6 cells, the header has 7",
        str(err),
    ), str(err)


@pytest.mark.parametrize("name", ["e2e", "confidence", "training"])
def test_an_empty_set_is_refused(tmp_path: Path, name: str) -> None:
    header = FILES[name].read_bytes().split(b"\n")[0] + b"\n"
    err = refusal(tmp_path / "header", {name: header})
    assert str(err) == (
        f"{source(tmp_path / 'header', name)}: no rows after the header; a gate set needs at "
        "least one row to check"
    )
    err = refusal(tmp_path / "empty", {name: b""})
    assert str(err).startswith(
        f"{source(tmp_path / 'empty', name)}: empty file; expected a header row with island, "
    )


def test_a_misspelled_target_column_is_named(tmp_path: Path) -> None:
    err = refusal(tmp_path, {"confidence": edit("confidence", ",species\n", ",Species\n", 1)})
    assert str(err) == (
        f"{source(tmp_path, 'confidence')}: line 1: no target column 'species' (the spec's "
        "[gate.confidence] target); columns: island, bill_length_mm, bill_depth_mm, "
        "flipper_length_mm, body_mass_g, sex, Species; did you mean 'Species'?"
    )
    err = refusal(
        tmp_path / "class", {"confidence": edit("confidence", ",Adelie\n", ",adelie\n", 1)}
    )
    assert (
        "column 'species': 'adelie' is not a class the model can predict; its classes are "
        "'Adelie', 'Chinstrap', 'Gentoo'" in str(err)
    )


def test_the_record_lists_every_output_column() -> None:
    scorer = example().scorer
    assert output_columns(scorer.plan.output) == [
        "prediction",
        "proba_Adelie",
        "proba_Chinstrap",
        "proba_Gentoo",
    ]


# -- random damage: success or a one-line message naming the file, never a traceback ---------
def _mutations(name: str) -> st.SearchStrategy[bytes]:
    text = FILES[name].read_text()
    lines = text.splitlines()
    header = lines[0].split(",")

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        rows = [line.split(",") for line in lines]
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(
                st.sampled_from(
                    [
                        "rename",
                        "drop",
                        "add",
                        "misspell",
                        "text",
                        "short",
                        "long",
                        "blank",
                        "empty",
                        "header-only",
                        "quote",
                    ]
                )
            )
            col = draw(st.integers(0, len(rows[0]) - 1)) if rows and rows[0] else 0
            row = draw(st.integers(1, max(1, len(rows) - 1)))
            if kind == "rename" and rows:
                rows[0][col] = draw(st.sampled_from([*header, "x", "", "Prediction", "species"]))
            elif kind == "drop" and rows:
                rows = [r[:col] + r[col + 1 :] for r in rows]
            elif kind == "add" and rows:
                rows = [r + (["extra"] if i == 0 else ["1"]) for i, r in enumerate(rows)]
            elif kind == "misspell" and rows and rows[0]:
                cell = rows[0][col]
                rows[0][col] = cell.upper() if draw(st.booleans()) else cell[:-1]
            elif kind == "text" and len(rows) > row and len(rows[row]) > col:
                rows[row][col] = draw(st.sampled_from(["abc", "1,5", "--", "inf", "1e999", ""]))
            elif kind == "short" and len(rows) > row and rows[row]:
                rows[row] = rows[row][:-1]
            elif kind == "long" and len(rows) > row:
                rows[row] = rows[row] + ["1"]
            elif kind == "blank" and len(rows) > row:
                rows[row] = []
            elif kind == "empty":
                rows = []
            elif kind == "header-only":
                rows = rows[:1]
            elif kind == "quote" and len(rows) > row and rows[row]:
                rows[row][0] = '"' + rows[row][0]
        data = "\n".join(",".join(r) for r in rows) + ("\n" if rows else "")
        raw = data.encode()
        if draw(st.booleans()):
            raw = raw.replace(b"\n", b"\r\n")
        if draw(st.booleans()):
            raw = BOM + raw
        if raw and draw(st.booleans()):  # Latin-1 somewhere
            at = draw(st.integers(0, len(raw) - 1))
            raw = raw[:at] + b"\xe9" + raw[at:]
        return raw

    return mutate()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(name=st.sampled_from(sorted(FILES)), data=st.data())
def test_damaged_files_give_a_one_line_error_or_pass(
    tmp_path_factory: pytest.TempPathFactory, name: str, data: st.DataObject
) -> None:
    raw = data.draw(_mutations(name))
    folder = tmp_path_factory.mktemp("mutated")
    try:
        run_checks(folder, {name: raw})
    except (InputError, SpecError) as exc:
        message = str(exc)
        assert "\n" not in message, message
        assert message.startswith(source(folder, name) + ": "), message
        assert re.match(
            r"(line \d+|row \d+ \(line \d+\)|empty file|no rows)",
            message[len(source(folder, name)) + 2 :],
        ), message
        assert DOCUMENTED[type(exc)] == exc.exit_code
    except (GateError, ParityError) as exc:  # the file reads, its values do not hold
        assert shown(folder / f"{name}.csv") in str(exc) or name == "training", str(exc)
        assert DOCUMENTED[type(exc)] == exc.exit_code


# -- through the real command: no traceback, nothing published -------------------------------
def test_a_broken_gate_file_stops_the_build_before_anything_is_written(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec", {"e2e": edit("e2e", "proba_Gentoo", "proba_gentoo")})
    spec.write_text(spec.read_text().replace('backend = "aot"', 'backend = "jit"'))
    out = tmp_path / "dist"
    env = dict(os.environ, NO_COLOR="1")
    env.pop("COLUMNS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "bundler", "build", str(spec), "--output-dir", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 9, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    message = (
        f"{tmp_path / 'spec' / 'e2e.csv'} ([gate.e2e] path): line 1: unknown column "
        "'proba_gentoo'; did you mean 'proba_Gentoo'?"
    )
    assert message in proc.stderr.replace("\n", " ") or message in proc.stderr, proc.stderr
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


def test_extra_outputs_are_columns_everywhere_and_the_gate_needs_them() -> None:
    """A model with ``decision_function``: the scorer's header, the empty file's header and
    the e2e reader all take their columns from ``output_columns``."""
    from sklearn.linear_model import LogisticRegression

    from mlbundle_runtime.gate import GateConfig, read_table, run_gate
    from mlbundle_runtime.inputs import InputError as RowError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    model = LogisticRegression().fit(X, y)
    scorer = Scorer(compile_estimators(model, None).load(), kernels())
    columns = output_columns(scorer.plan.output)
    assert columns == ["prediction", "proba_no", "proba_yes", "decision_function"]
    scores = scorer.score_rows(X)
    assert scores.header() == scorer.empty_header() == columns
    names = ",".join(scorer.plan.input_names)
    rows = "".join(
        f"{a!r},{b!r},{','.join(cells)}\n"
        for (a, b), cells in zip(X.tolist(), scores.rows(), strict=True)
    )
    config = GateConfig("e2e.csv", 1e-9, "conf.csv", "y", "accuracy", 0.5, 1.0)
    conf = read_table(
        f"{names},y\n{float(X[0, 0])!r},{float(X[0, 1])!r},yes\n".encode(),
        "conf.csv",
        scorer.plan.input_names,
    )
    full = read_table(
        f"{names},{','.join(columns)}\n{rows}".encode(), "e2e.csv", scorer.plan.input_names
    )
    assert run_gate(scorer, config, full, conf).e2e_columns == tuple(columns)
    short = "".join(",".join(r.split(",")[:-1]) + "\n" for r in rows.splitlines())
    table = read_table(
        f"{names},{','.join(columns[:-1])}\n{short}".encode(), "e2e.csv", scorer.plan.input_names
    )
    with pytest.raises(RowError, match=r"e2e.csv: line 1: no column decision_function; "):
        run_gate(scorer, config, table, conf)
