"""Model packs in the frozen onedir app, as a user and a release engineer meet them.

The session's build (``built``) accepts packs signed with the session's key; the
example retrained with another seed is packed with ``bundle pack`` as model 1.1.0
(``retrained_pack``). Each test gives the app its own data folder (``XDG_DATA_HOME`` or
``MLBUNDLE_DATA_DIR``), installs packs with the app's own ``models`` commands, and
compares what ``predict`` answers with what scikit-learn's ``predict_proba`` answers for
the model that should be active, loaded from its joblib here.

The packs no release engineer would make (an e2e set that fails inside the app, a
metric out of range, a pack for another app, an expired one, an older version) are the
real pack's contents edited and signed again with the session's key (``tests/_packs``),
so that the app's own checks refuse them, not the signature.

Not here: an UNAPPROVED pack refused by a *release* build. The shared build is a
development build (``test_frozen.py`` checks it is UNAPPROVED), and a development build
takes development packs; a second, release, frozen build only for that refusal would
double the suite's freezing time. The same runtime code refuses it in
``tests/test_model_store.py`` (``test_an_unapproved_pack_is_refused_by_a_release_build_only``,
on a payload whose bundle.json says ``release: true``), without freezing.
"""

from __future__ import annotations

import csv
import functools
import json
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bundler.freeze import run_frozen
from tests._packs import Sklearn, pack_contents, resign
from tests.conftest import RESOURCES, Built, Keys, RetrainedPack, run_bundle

pytestmark = pytest.mark.frozen

CONFIDENCE = RESOURCES / "gate" / "confidence.csv"
EXIT_REFUSED = 6
#: scikit-learn's forest sums its trees in another order than the plan's kernels.
TOLERANCE = 1e-9
CATEGORICAL = ("island", "sex")


# -- helpers ------------------------------------------------------------------------------


@functools.cache
def original() -> Sklearn:
    """scikit-learn's pipeline for the bundled model 1.0.0."""
    return Sklearn(
        RESOURCES / "artifacts" / "extractor.joblib", RESOURCES / "artifacts" / "model.joblib"
    )


def app(built: Built, data: Path, *args: str, env: Mapping[str, str] | None = None) -> Any:
    """The frozen onedir app run as a user would, its data folder ``data``."""
    return run_frozen(built.onedir, *args, env={"MLBUNDLE_DATA_DIR": str(data), **(env or {})})


def records(path: Path) -> list[dict[str, object]]:
    """A CSV's rows as records of the app's inputs (an empty cell is missing)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
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
            record[name] = None if cell == "" else (cell if name in CATEGORICAL else float(cell))
        out.append(record)
    return out


def write_records(path: Path, rows: list[Mapping[str, object]]) -> Path:
    names = list(rows[0])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(names)
        for r in rows:
            writer.writerow(["" if r[n] is None else r[n] for n in names])
    return path


def scores(
    built: Built, data: Path, src: Path, tmp: Path, **kw: Any
) -> tuple[list[str], np.ndarray]:
    """``predict --input src``: the labels and the probability columns the app wrote."""
    dst = tmp / f"scores-{time.monotonic_ns()}.csv"
    proc = app(built, data, "predict", "--input", str(src), "--output", str(dst), **kw)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with open(dst, newline="") as f:
        rows = list(csv.DictReader(f))
    classes = original().classes
    proba = np.array([[float(r[f"proba_{c}"]) for c in classes] for r in rows])
    return [r["prediction"] for r in rows], proba


def assert_serves(built: Built, data: Path, oracle: Sklearn, tmp: Path) -> None:
    """The app's answers on the confidence set are ``oracle``'s, label and probabilities."""
    rows = records(CONFIDENCE)
    labels, proba = scores(built, data, CONFIDENCE, tmp)
    want = oracle.predict_proba(rows)
    assert labels == oracle.predict(rows)
    assert np.abs(proba - want).max() <= TOLERANCE, np.abs(proba - want).max()


def listed(built: Built, data: Path) -> list[dict[str, Any]]:
    proc = app(built, data, "models", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def active(built: Built, data: Path) -> str:
    entries = listed(built, data)
    on = [e for e in entries if e["active"]]
    assert len(on) == 1, entries
    return str(on[0]["version"])


def install(built: Built, data: Path, pack: Path, *args: str, env: Any = None) -> Any:
    return app(built, data, "models", "install", str(pack), *args, env=env)


def one_line_error(proc: Any) -> str:
    """The app's refusal: one error line on stderr, the last (after the install's step
    lines), and no traceback."""
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
    return errors[0]


def snapshot(data: Path) -> dict[str, bytes]:
    """Every file in the app's data folder (the trial log aside), to compare before/after."""
    return {
        p.relative_to(data).as_posix(): p.read_bytes()
        for p in sorted(data.rglob("*"))
        if p.is_file() and "logs" not in p.relative_to(data).parts and p.name != ".lock"
    }


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(scope="module")
def retrained(retrained_pack: RetrainedPack) -> Sklearn:
    """scikit-learn's pipeline for the retrained model (the oracle for 1.1.0)."""
    return Sklearn(retrained_pack.retrained.extractor, retrained_pack.retrained.model)


def edited(
    pack: Path,
    keys: Keys,
    out: Path,
    *,
    meta: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes] | None = None,
) -> Path:
    out.write_bytes(resign(pack.read_bytes(), keys.private.read_bytes(), meta=meta, files=files))
    return out


def with_version(pack: Path, keys: Keys, out: Path, version: str) -> Path:
    """The pack as model ``version``: its manifest and its bundle.json say so."""
    _meta, files = pack_contents(pack.read_bytes())
    info = json.loads(files["bundle.json"])
    info["model_version"] = version
    return edited(
        pack,
        keys,
        out,
        meta={"model_version": version},
        files={"bundle.json": json.dumps(info).encode()},
    )


# -- installing, serving, rolling back ------------------------------------------------------


def test_install_serves_the_retrained_model_and_rollback_the_old_one(
    built: Built, retrained_pack: RetrainedPack, retrained: Sklearn, tmp_path: Path
) -> None:
    xdg = tmp_path / "xdg"
    env = {"XDG_DATA_HOME": str(xdg)}

    def run(*args: str) -> Any:
        return run_frozen(built.onedir, *args, env=env)

    def served() -> tuple[list[str], np.ndarray]:
        dst = tmp_path / f"out-{time.monotonic_ns()}.csv"
        proc = run("predict", "--input", str(CONFIDENCE), "--output", str(dst))
        assert proc.returncode == 0, proc.stderr
        with open(dst, newline="") as f:
            rows = list(csv.DictReader(f))
        return [r["prediction"] for r in rows], np.array(
            [[float(r[f"proba_{c}"]) for c in original().classes] for r in rows]
        )

    rows = records(CONFIDENCE)
    old_proba, new_proba = original().predict_proba(rows), retrained.predict_proba(rows)
    assert np.abs(old_proba - new_proba).max() > 0.01  # two models worth telling apart

    labels, proba = served()
    assert labels == original().predict(rows) and np.abs(proba - old_proba).max() <= TOLERANCE

    proc = run("models", "install", str(retrained_pack.pack))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"installed model 1.1.0 from {retrained_pack.pack}: now active")
    # platformdirs' user data folder: $XDG_DATA_HOME/<app name>
    assert (xdg / "penguins" / "models" / "1.1.0" / "pack.json").is_file()
    state = json.loads((xdg / "penguins" / "models" / "state.json").read_text())
    assert state["active"] == "1.1.0" and state["previous"] == []

    labels, proba = served()
    assert labels == retrained.predict(rows)
    assert np.abs(proba - new_proba).max() <= TOLERANCE, np.abs(proba - new_proba).max()
    version = run("--version")
    assert "(model 1.1.0," in version.stdout, version.stdout
    about = json.loads(run("about", "--json").stdout)
    assert about["model"]["version"] == "1.1.0"
    assert run("selftest").returncode == 0  # the pack's own gate, in the app

    proc = run("models", "rollback")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "active model: 1.0.0 (bundled)"
    labels, proba = served()
    assert labels == original().predict(rows) and np.abs(proba - old_proba).max() <= TOLERANCE
    assert not (xdg / "penguins" / "models" / "1.1.0").exists()  # rollback removes it


def test_models_list_shows_the_bundled_model_and_the_pack(
    built: Built, retrained_pack: RetrainedPack, data: Path
) -> None:
    assert install(built, data, retrained_pack.pack).returncode == 0
    entries = listed(built, data)
    assert [(e["version"], e["origin"], e["active"], e["trial"]) for e in entries] == [
        ("1.0.0", "bundled", False, False),
        ("1.1.0", "pack", True, False),
    ]
    text = app(built, data, "models", "list").stdout
    assert "* 1.1.0" in text and "[active]" in text and "bundled" in text


# -- refusals -------------------------------------------------------------------------------


def refused(built: Built, data: Path, pack: Path, *args: str) -> str:
    """Install ``pack`` over the retrained model: refused (exit 6, one line), and the
    data folder and the answers exactly as before."""
    before = snapshot(data)
    proc = install(built, data, pack, *args)
    assert proc.returncode == EXIT_REFUSED, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert str(pack) in line, line
    assert snapshot(data) == before
    assert active(built, data) == "1.1.0"
    return line


@pytest.fixture()
def updated(built: Built, retrained_pack: RetrainedPack, data: Path) -> Path:
    """A data folder in which the retrained model 1.1.0 is active."""
    proc = install(built, data, retrained_pack.pack)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return data


def test_a_flipped_byte_anywhere_is_refused(
    built: Built,
    retrained_pack: RetrainedPack,
    retrained: Sklearn,
    updated: Path,
    tmp_path: Path,
) -> None:
    good = retrained_pack.pack.read_bytes()
    body = good.index(b"\n", len(b"MLPACK 1\n")) + 1  # the zip archive starts here
    where = {
        "magic": 3,
        "signature": 20,
        "zip header": body + 2,
        "first member": body + 40,
        "middle": len(good) // 2,
        "central directory": len(good) - 60,
        "last byte": len(good) - 1,
    }
    for what, i in where.items():
        bad = bytearray(good)
        bad[i] ^= 0x01
        path = tmp_path / f"flipped-{what.replace(' ', '-')}.mlpack"
        path.write_bytes(bytes(bad))
        line = refused(built, updated, path)
        assert "signature" in line or "not a model pack" in line or "format" in line, (what, line)
    assert_serves(built, updated, retrained, tmp_path)


def test_a_pack_signed_with_another_key_is_refused(
    built: Built, retrained_pack: RetrainedPack, updated: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    proc = run_bundle("keygen", str(other / "private.pem"), str(other / "public.pem"))
    assert proc.returncode == 0, proc.stderr
    again = with_version(
        retrained_pack.pack,
        Keys(private=other / "private.pem", public=other / "public.pem"),
        tmp_path / "other-key.mlpack",
        "1.2.0",
    )
    line = refused(built, updated, again)
    assert "does not match this app's release key" in line, line


def test_an_older_version_is_refused_unless_allowed(
    built: Built, retrained_pack: RetrainedPack, release_keys: Keys, updated: Path, tmp_path: Path
) -> None:
    older = with_version(retrained_pack.pack, release_keys, tmp_path / "older.mlpack", "1.0.5")
    line = refused(built, updated, older)
    assert "model 1.0.5 is not newer than the active model 1.1.0" in line, line
    line = refused(built, updated, retrained_pack.pack)  # the same version again
    assert "1.1.0" in line, line
    proc = install(built, updated, older, "--allow-downgrade")
    assert proc.returncode == 0, proc.stderr
    assert active(built, updated) == "1.0.5"


def test_a_pack_whose_e2e_set_fails_is_refused(
    built: Built, retrained_pack: RetrainedPack, release_keys: Keys, updated: Path, tmp_path: Path
) -> None:
    _meta, files = pack_contents(retrained_pack.pack.read_bytes())
    text = files["gate/e2e.csv"].decode()
    header, first, rest = text.split("\n", 2)
    cells = first.split(",")
    column = header.split(",").index("prediction")
    cells[column] = "Gentoo" if cells[column] != "Gentoo" else "Adelie"
    e2e = "\n".join([header, ",".join(cells), rest]).encode()
    bad = with_version(retrained_pack.pack, release_keys, tmp_path / "e2e.mlpack", "1.2.0")
    bad = edited(bad, release_keys, bad, files={"gate/e2e.csv": e2e})
    line = refused(built, updated, bad)
    assert "e2e set does not score as at its build" in line and "1 of 56 rows differ" in line, line


def test_a_pack_whose_metric_is_out_of_range_is_refused(
    built: Built, retrained_pack: RetrainedPack, release_keys: Keys, updated: Path, tmp_path: Path
) -> None:
    _meta, files = pack_contents(retrained_pack.pack.read_bytes())
    gate = json.loads(files["gate.json"])
    gate["confidence"]["range"] = [0.995, 1.0]  # the model scores 0.989
    bad = with_version(retrained_pack.pack, release_keys, tmp_path / "metric.mlpack", "1.2.0")
    bad = edited(bad, release_keys, bad, files={"gate.json": json.dumps(gate).encode()})
    line = refused(built, updated, bad)
    assert "balanced_accuracy = 0.9892" in line and "[0.995, 1.0]" in line, line


@pytest.mark.parametrize(
    ("name", "meta", "message"),
    [
        ("another-app", {"app": "puffins"}, "the pack is for the app 'puffins', not 'penguins'"),
        ("expired", {"expires": "2020-06-30"}, "the pack expired on 2020-06-30"),
        (
            "other-classes",
            {"requires": "classes"},
            "the pack's classes ['Adelie', 'Chinstrap', 'Emperor'] are not this app's",
        ),
    ],
)
def test_a_pack_this_app_cannot_take_is_refused(
    built: Built,
    retrained_pack: RetrainedPack,
    release_keys: Keys,
    updated: Path,
    tmp_path: Path,
    name: str,
    meta: dict[str, Any],
    message: str,
) -> None:
    base = with_version(retrained_pack.pack, release_keys, tmp_path / f"{name}.mlpack", "1.2.0")
    if meta.get("requires") == "classes":
        requires = pack_contents(base.read_bytes())[0]["requires"]
        meta = {"requires": {**requires, "classes": ["Adelie", "Chinstrap", "Emperor"]}}
    bad = edited(base, release_keys, base, meta=meta)
    line = refused(built, updated, bad)
    assert message in line, line


# -- an install killed at each step ---------------------------------------------------------


@pytest.mark.parametrize("step", ["verified", "extracted", "gated", "moved", "state"])
def test_an_install_killed_at_each_step_leaves_a_working_app(
    built: Built,
    retrained_pack: RetrainedPack,
    retrained: Sklearn,
    data: Path,
    tmp_path: Path,
    step: str,
) -> None:
    proc = install(built, data, retrained_pack.pack, env={"MLBUNDLE_FAULT_AT": step})
    assert proc.returncode == -signal.SIGKILL, (step, proc.returncode, proc.stderr)
    # the state file is written at "state" only: before it, the bundled model still answers
    expected = retrained if step == "state" else original()
    assert active(built, data) == ("1.1.0" if step == "state" else "1.0.0")
    assert_serves(built, data, expected, tmp_path)
    probe = app(built, data, "predict", "--json", json.dumps(records(CONFIDENCE)[0]))
    assert probe.returncode == 0 and probe.stderr == "", probe.stderr  # no warning either
    # the next install cleans up what the killed one left, and works
    again = install(built, data, retrained_pack.pack)
    if step == "state":  # it did finish: the same version again is refused
        assert again.returncode == EXIT_REFUSED and "1.1.0" in one_line_error(again)
    else:
        assert again.returncode == 0, again.stderr
    assert active(built, data) == "1.1.0"
    assert_serves(built, data, retrained, tmp_path)
    assert not list((data / "models").glob(".incoming-*"))


# -- a damaged installed pack at start ------------------------------------------------------


def test_a_damaged_installed_pack_falls_back_with_one_warning(
    built: Built,
    retrained_pack: RetrainedPack,
    retrained: Sklearn,
    release_keys: Keys,
    updated: Path,
    tmp_path: Path,
) -> None:
    newer = with_version(retrained_pack.pack, release_keys, tmp_path / "newer.mlpack", "1.2.0")
    assert install(built, updated, newer).returncode == 0
    assert active(built, updated) == "1.2.0"
    # 1.2.0's plan is modified on disk: the previous pack (1.1.0) answers, with one line
    target = updated / "models" / "1.2.0" / "payload" / "arrays.npz"
    blob = bytearray(target.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    target.write_bytes(bytes(blob))
    record = records(CONFIDENCE)[0]
    proc = app(built, updated, "predict", "--json", json.dumps(record))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "1.2.0" in lines[0] and "arrays.npz" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    got = json.loads(proc.stdout)["probabilities"]
    want = dict(zip(retrained.classes, retrained.predict_proba([record])[0], strict=True))
    assert all(abs(got[c] - want[c]) <= TOLERANCE for c in want), (got, want)
    assert_serves(built, updated, retrained, tmp_path)
    # 1.1.0's manifest goes too: then the bundled model, one line for each pack skipped
    meta = updated / "models" / "1.1.0" / "pack.json"
    meta.write_bytes(meta.read_bytes().replace(b'"penguins"', b'"penguinz"'))
    proc = app(built, updated, "predict", "--json", json.dumps(record))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "1.2.0" in lines[0] and "1.1.0" in lines[1], proc.stderr
    assert_serves(built, updated, original(), tmp_path)


# -- a silent trial -------------------------------------------------------------------------


def disagreeing_rows(retrained: Sklearn, agree: int, differ: int) -> list[dict[str, object]]:
    """``differ`` rows on which the two models' labels differ, then ``agree`` on which they
    agree, drawn inside the training ranges (the forests part ways near class borders)."""
    rng = np.random.default_rng(14)
    pool = [
        {
            "island": str(rng.choice(["Biscoe", "Dream", "Torgersen"])),
            "bill_length_mm": round(float(rng.uniform(33, 58)), 1),
            "bill_depth_mm": round(float(rng.uniform(13.1, 21.2)), 1),
            "flipper_length_mm": float(rng.integers(174, 232)),
            "body_mass_g": float(rng.integers(54, 126) * 50),
            "sex": str(rng.choice(["female", "male"])),
        }
        for _ in range(600)
    ]
    old, new = original().predict(pool), retrained.predict(pool)
    unlike = [r for r, a, b in zip(pool, old, new, strict=True) if a != b]
    alike = [r for r, a, b in zip(pool, old, new, strict=True) if a == b]
    assert len(unlike) >= differ, len(unlike)
    return unlike[:differ] + alike[:agree]


def test_a_trial_reports_the_agreement_and_shows_only_the_active_model(
    built: Built, retrained_pack: RetrainedPack, retrained: Sklearn, data: Path, tmp_path: Path
) -> None:
    proc = install(built, data, retrained_pack.pack, "--trial")
    assert proc.returncode == 0, proc.stderr
    assert "in trial beside the active model" in proc.stdout
    entries = listed(built, data)
    assert [(e["version"], e["active"], e["trial"]) for e in entries] == [
        ("1.0.0", True, False),
        ("1.1.0", False, True),
    ]
    rows = disagreeing_rows(retrained, agree=16, differ=4)
    src = write_records(tmp_path / "rows.csv", rows)
    labels, proba = scores(built, data, src, tmp_path)
    # only the active model's output: the bundled model's answers, not the candidate's
    assert labels == original().predict(rows)
    assert np.abs(proba - original().predict_proba(rows)).max() <= TOLERANCE
    assert labels != retrained.predict(rows)
    one = app(built, data, "predict", "--json", json.dumps(rows[0]))
    assert one.returncode == 0 and one.stderr == "", one.stderr
    answer = json.loads(one.stdout)
    assert answer["prediction"] == original().predict(rows[:1])[0]
    assert answer["prediction"] != retrained.predict(rows[:1])[0]

    proc = app(built, data, "models", "trial-report", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["candidate"], report["active"]) == ("1.1.0", "1.0.0")
    assert report["rows"] == 21 and report["agreed"] == 16, report  # 20 in the file, 1 alone
    assert report["agreement"] == pytest.approx(16 / 21)
    every = rows + rows[:1]
    diff = np.abs(original().predict_proba(every) - retrained.predict_proba(every)).max()
    assert report["max_proba_diff"] == pytest.approx(diff, abs=TOLERANCE)
    assert report["calls"] == 2
    assert report["active_us_per_row"] > 0 and report["candidate_us_per_row"] > 0
    text = app(built, data, "models", "trial-report").stdout
    assert "label agreement 16 of 21 (76.19%)" in text, text
    # the log holds outputs, not the user's inputs (no --log-inputs)
    log = (data / "logs" / "trial.jsonl").read_text()
    assert log.count("\n") >= 2 and "bill_length_mm" not in log and "Torgersen" not in log

    assert app(built, data, "models", "promote").stdout.strip() == "active model: 1.1.0 (pack)"
    assert_serves(built, data, retrained, tmp_path)
