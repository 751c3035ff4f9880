"""``bundle`` says what went wrong in the user's words, with the documented exit code.

Each case runs the real CLI in a subprocess, as a user (or a CI job) would, and
stops before freezing: wrong files in the model and extractor slots, a file that
is not a pickle, something that is not a bundle, a missing path, an unpinned
compile, an internal error, and output sent to a pipe instead of a terminal.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bundler import cli
from bundler.artifacts import sha256_file
from tests.conftest import BUNDLE, EPOCH, RESOURCES, ROOT, run_bundle
from tests.test_build_failures import ART, assert_refused, write_spec

MODEL = ART / "model.joblib"
EXTRACTOR = ART / "extractor.joblib"
E2E = RESOURCES / "gate" / "e2e.csv"
EXPECTED_BUNDLE = (
    "expected a onedir folder, a onefile binary built by mlbundle, or a .tar.gz or .deb "
    "installer made by it"
)


def with_extractor(spec: Path, extractor: Path) -> Path:
    """The spec with ``[extractor] path`` (and its hash) replaced by ``extractor``."""
    head, table = spec.read_text().split("[extractor]")
    table = table.replace(f'path = "{EXTRACTOR}"', f'path = "{extractor}"', 1)
    table = table.replace(sha256_file(EXTRACTOR), sha256_file(extractor), 1)
    spec.write_text(f"{head}[extractor]{table}")
    return spec


# -- model and extractor in the wrong slots ----------------------------------------------


def test_transformer_given_as_the_model_is_a_mismatch_not_unsupported(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, model=EXTRACTOR)
    proc = run_bundle("build", str(spec))
    assert_refused(
        proc,
        3,
        f"{spec}: model.path: the model file {EXTRACTOR} holds a transformer "
        "(ColumnTransformer), not a predictor; the model must be a classifier, regressor or "
        "outlier detector, or a Pipeline ending in one (a feature transformer goes in "
        "extractor.path)",
    )
    assert "passthrough" not in proc.stderr
    assert not (tmp_path / "dist").exists()


def test_swapped_model_and_extractor_are_named_as_swapped(tmp_path: Path) -> None:
    spec = with_extractor(write_spec(tmp_path, model=EXTRACTOR), MODEL)
    proc = run_bundle("build", str(spec))
    assert_refused(
        proc,
        3,
        f"{spec}: model.path and extractor.path look swapped: the model file {EXTRACTOR} holds "
        f"a transformer (ColumnTransformer) and the extractor file {MODEL} holds a predictor "
        "(RandomForestClassifier); give the predictor as the model and the transformer as the "
        "extractor",
    )
    assert "passthrough" not in proc.stderr


def test_predictor_given_as_the_extractor_is_a_mismatch(tmp_path: Path) -> None:
    proc = run_bundle(
        "compile", "--model", str(MODEL), "--extractor", str(MODEL), "--out", str(tmp_path / "plan")
    )
    assert_refused(
        proc,
        3,
        f"--extractor: the extractor file {MODEL} holds a predictor (RandomForestClassifier), "
        "not a transformer; the extractor must have transform()",
    )
    assert "passthrough" not in proc.stderr
    assert not (tmp_path / "plan").exists()


# -- files that are not what they should be ------------------------------------------------


def test_csv_given_as_the_model_is_not_a_pickle(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, model=E2E)
    proc = run_bundle("build", str(spec))
    head = E2E.read_bytes()[:16].decode()
    assert_refused(
        proc,
        3,
        f"model artifact {E2E} is not a joblib/pickle file (it starts with {head!r}); "
        "expected a file written by joblib.dump",
    )
    assert "pop from empty list" not in proc.stderr


def test_empty_model_file(tmp_path: Path) -> None:
    empty = tmp_path / "model.joblib"
    empty.write_bytes(b"")
    proc = run_bundle("compile", "--model", str(empty), "--out", str(tmp_path / "plan"))
    assert_refused(
        proc, 3, f"model artifact {empty} is empty; expected a file written by joblib.dump"
    )


@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_inspect_and_verify_on_a_csv_say_what_they_expected(command: str) -> None:
    proc = run_bundle(command, str(E2E))
    head = E2E.read_bytes()[:16].decode()
    assert_refused(
        proc,
        10,
        f"{E2E} is not an mlbundle bundle (not a folder, an installer or an executable: it "
        f"starts with {head!r}); {EXPECTED_BUNDLE}",
    )
    assert "COOKIE" not in proc.stderr


@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_inspect_and_verify_on_a_plain_folder(command: str, tmp_path: Path) -> None:
    proc = run_bundle(command, str(tmp_path))
    if command == "inspect":
        assert_refused(
            proc,
            10,
            f"{tmp_path} is not an mlbundle bundle (a folder without "
            f"_internal/mlbundle_payload/record.json); {EXPECTED_BUNDLE}",
        )
    else:
        assert_refused(proc, 10, f"{tmp_path} has no mlbundle-manifest.json")


# -- missing paths are usage errors ----------------------------------------------------


@pytest.mark.parametrize(
    ("args", "label"),
    [
        (["verify", "{missing}"], "bundle verify"),
        (["inspect", "{missing}"], "bundle inspect"),
        (["compile", "--model", "{missing}", "--out", "{tmp}/plan"], "--model"),
        (
            ["compile", "--model", str(MODEL), "--extractor", "{missing}", "--out", "{tmp}/p"],
            "--extractor",
        ),
        (["score", "{missing}", "--input", str(E2E), "--output", "{tmp}/o.csv"], "bundle score"),
        (["build", "{missing}"], ""),
    ],
    ids=["verify", "inspect", "compile-model", "compile-extractor", "score", "build"],
)
def test_a_missing_path_is_a_usage_error(args: list[str], label: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.joblib"
    proc = run_bundle(*(a.format(missing=missing, tmp=tmp_path) for a in args))
    expected = f"{label}: {missing} does not exist" if label else f"{missing}: spec file not found"
    assert_refused(proc, 2, expected)


def test_score_with_a_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    plan = tmp_path / "plan"
    plan.mkdir()
    missing = tmp_path / "rows.csv"
    proc = run_bundle(
        "score", str(plan), "--input", str(missing), "--output", str(tmp_path / "o.csv")
    )
    assert_refused(proc, 2, f"--input: {missing} does not exist")


# -- compile without a pinned hash -------------------------------------------------------


def test_compile_without_sha256_warns_that_it_unpickles_an_unverified_file(
    tmp_path: Path,
) -> None:
    proc = run_bundle(
        "compile",
        "--model",
        str(MODEL),
        "--extractor",
        str(EXTRACTOR),
        "--sha256",
        sha256_file(MODEL),
        "--out",
        str(tmp_path / "plan"),
    )
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: unpickling {EXTRACTOR} without checking its hash (a pickle can run any "
        f"code); pin the file you trust with a second --sha256 (after the model's) "
        f"{sha256_file(EXTRACTOR)}"
    ]
    proc = run_bundle(
        "compile",
        "--model",
        str(MODEL),
        "--extractor",
        str(EXTRACTOR),
        "--sha256",
        sha256_file(MODEL),
        "--sha256",
        sha256_file(EXTRACTOR),
        "--out",
        str(tmp_path / "plan2"),
    )
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr


def test_compile_model_alone_without_sha256_warns_once(tmp_path: Path) -> None:
    proc = run_bundle("compile", "--model", str(EXTRACTOR), "--out", str(tmp_path / "plan"))
    assert proc.stderr.splitlines()[0] == (
        f"warning: unpickling {EXTRACTOR} without checking its hash (a pickle can run any "
        f"code); pin the file you trust with --sha256 {sha256_file(EXTRACTOR)}"
    )
    assert proc.returncode == 3  # and then the mismatch: a transformer given as the model


# -- internal errors: one line, a documented code, the traceback on request ----------------


def _boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("something nobody expected")


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_is_one_line_with_its_own_code(
    debug: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr("bundler.verify.verify_bundle", _boom)
    monkeypatch.setattr(sys, "argv", ["bundle", "verify", str(tmp_path)])
    if debug:
        monkeypatch.setenv(cli.DEBUG_ENV, "1")
    else:
        monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == cli.INTERNAL_ERROR == 70
    stderr = capsys.readouterr().err
    assert ("Traceback" in stderr) is debug
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(
        "internal error: RuntimeError: something nobody expected (a bug in "
        "mlbundle, not in your files"
    )
    assert ("MLBUNDLE_DEBUG=1" in last) is not debug


def documented_codes() -> set[int]:
    """The exit codes the README's build-tool paragraph ("Exit codes: 2 bad spec ...") lists."""
    text = " ".join((ROOT / "README.md").read_text().split())
    start = text.index("Exit codes: 2 bad spec")
    paragraph = text[start : text.index(". Errors name", start)]
    listed = paragraph.removeprefix("Exit codes")
    return {int(n) for n in re.findall(r"(?:^|[:,] )(\d+) [a-z`]", listed)}


def test_every_error_class_has_a_code_the_readme_documents() -> None:
    from bundler import errors, manifest, pickle_globals

    documented = documented_codes()
    assert {2, 3, 4, 10, 11, cli.INTERNAL_ERROR, cli.VERIFY_FAILED} <= documented, documented
    classes = {
        c
        for m in (errors, manifest, pickle_globals)
        for c in vars(m).values()
        if isinstance(c, type) and issubclass(c, errors.BundleError)
    }
    assert len(classes) >= 10
    for cls in classes:
        assert cls.exit_code != 1 and cls.exit_code in documented, cls


# -- output for logs ---------------------------------------------------------------------


def _through_a_pipe(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with stdout and stderr on pipes and no COLUMNS: what a CI log records."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(NO_COLOR="1", SOURCE_DATE_EPOCH=EPOCH)
    return subprocess.run(
        [*BUNDLE, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300
    )


def test_errors_are_not_wrapped_when_not_a_terminal(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-folder-name"] * 6))
    deep.mkdir(parents=True)
    csv_file = deep / "rows.csv"
    csv_file.write_text("species,island\nAdelie,Biscoe\n")
    proc = _through_a_pipe("inspect", str(csv_file))
    assert proc.returncode == 10
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {csv_file} is not an mlbundle bundle")
    assert lines[0].endswith(EXPECTED_BUNDLE)


def test_tables_are_neither_wrapped_nor_truncated_when_not_a_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "penguins"
    payload = folder / "_internal" / "mlbundle_payload"
    payload.mkdir(parents=True)
    description = "A description long enough to be wrapped at eighty columns, " * 4
    long_file = "model-" + "x" * 150 + ".joblib"
    record = {
        "schema": "mlbundle.record",
        "schema_version": "1.2",
        "app": {
            "name": "penguins",
            "version": "1.0.0",
            "title": "Penguins",
            "description": description.strip(),
        },
        "model": {"algorithm": "RandomForestClassifier", "file": long_file},
    }
    (payload / "record.json").write_text(json.dumps(record))
    proc = _through_a_pipe("inspect", str(folder))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(description.strip() in line for line in lines), proc.stdout
    assert any(long_file in line for line in lines), proc.stdout
    assert "…" not in proc.stdout


# -- [app] maintainer, homepage and license ---------------------------------------------


def test_release_build_needs_a_maintainer(tmp_path: Path) -> None:
    from tests.test_build_failures import audited_spec

    spec = audited_spec(tmp_path)
    proc = run_bundle("build", str(spec), "--release")
    assert_refused(
        proc,
        2,
        f"{spec}: a release build (--release) needs every audit field; missing: "
        'app.maintainer ("Name <email>": the .deb\'s Maintainer field) Fill them in,',
    )
    assert not (tmp_path / "dist").exists()


def test_development_build_without_maintainer_is_warned_about(tmp_path: Path) -> None:
    from bundler.installers import MAINTAINER_PLACEHOLDER, check_maintainer
    from bundler.spec import load_spec

    spec = load_spec(write_spec(tmp_path))
    assert check_maintainer(spec) == [
        f"{spec.path}: app.maintainer is not set; the .deb says Maintainer: "
        f'{MAINTAINER_PLACEHOLDER} (set maintainer = "Name <email>" in [app])'
    ]
    assert MAINTAINER_PLACEHOLDER.endswith("@example.invalid>")  # RFC 2606: reaches no one
    text = spec.path.read_text().replace(
        'title = "Penguins"', 'title = "Penguins"\nmaintainer = "Ada <ada@example.org>"'
    )
    spec.path.write_text(text)
    assert check_maintainer(load_spec(spec.path)) == []


def _control(deb: Path) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("named", [True, False], ids=["from-spec", "placeholder"])
def test_deb_control_takes_maintainer_homepage_and_license_from_the_record(
    named: bool, tmp_path: Path
) -> None:
    import shutil

    from bundler.installers import MAINTAINER_PLACEHOLDER, make_deb

    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    onedir = tmp_path / "penguins"
    onedir.mkdir()
    (onedir / "penguins").write_text("#!/bin/sh\n")
    app = {"name": "penguins", "version": "1.0.0", "title": "Penguins", "description": "x"}
    if named:
        app.update(
            maintainer="Example Release Manager <release@example.org>",
            homepage="https://example.org/penguins",
            license="Apache-2.0",
        )
    record = {
        "app": app,
        "model": {"algorithm": "RandomForestClassifier", "version": "1.0.0", "sha256": "ab" * 32},
        "audit": {"model_author": "Data Team <ds@example.org>"},
        "build": {"tool_version": "0.1.0"},
    }
    deb = make_deb(
        onedir, tmp_path, name="penguins", version="1.0.0", title="Penguins",
        description="x", record=record, work=tmp_path / "work",
    )  # fmt: skip
    control = _control(deb.path)
    if named:
        assert "Maintainer: Example Release Manager <release@example.org>\n" in control
        assert "Homepage: https://example.org/penguins\n" in control
        assert " License: Apache-2.0.\n" in control
    else:
        assert f"Maintainer: {MAINTAINER_PLACEHOLDER}\n" in control
        assert "Homepage:" not in control and "License:" not in control
    assert "unknown@localhost" not in control and "ds@example.org" not in control


def test_record_schema_1_2_requires_the_app_keys_and_older_records_stay_valid() -> None:
    from bundler.record import SCHEMA_VERSION
    from bundler.verify import validate_record

    assert SCHEMA_VERSION == "1.5"
    app = {"name": "penguins", "version": "1.0.0", "title": "Penguins", "description": ""}

    def app_errors(version: str, **extra: object) -> list[str]:
        record = {"schema": "mlbundle.record", "schema_version": version, "app": app | extra}
        return sorted(e for e in validate_record(record) if e.startswith("app"))

    assert app_errors("1.1") == [] and app_errors("1.0") == []
    assert app_errors("1.2") == [
        "app: 'homepage' is a required property",
        "app: 'license' is a required property",
        "app: 'maintainer' is a required property",
    ]
    assert app_errors("1.2", maintainer=None, homepage=None, license=None) == []
    good = {
        "maintainer": "Example Release Manager <release@example.org>",
        "homepage": "https://example.org/penguins",
        "license": "Apache-2.0",
    }
    assert app_errors("1.2", **good) == []
    bad = app_errors("1.2", **(good | {"maintainer": "Release Team", "homepage": "ftp://x"}))
    assert [e.split(":")[0] for e in bad] == ["app/homepage", "app/maintainer"]


@pytest.mark.frozen
def test_the_built_record_and_deb_carry_the_spec_app_keys(built) -> None:
    from bundler.verify import validate_record

    record = json.loads((built.out / "payload" / "record.json").read_text())
    assert record["schema_version"] == "1.5"
    assert record["outputs"]["uncertain_below"] == 0.6
    assert {k: record["app"][k] for k in ("maintainer", "homepage", "license")} == {
        "maintainer": "Example Release Manager <release@example.org>",
        "homepage": "https://example.org/penguins",
        "license": "Apache-2.0",
    }
    assert validate_record(record) == []
    control = _control(built.out / "installers" / "penguins_1.0.0_amd64.deb")
    assert "Maintainer: Example Release Manager <release@example.org>\n" in control
    assert "Homepage: https://example.org/penguins\n" in control
