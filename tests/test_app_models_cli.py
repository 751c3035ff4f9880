"""The app's ``models`` commands and ``<app> FILE.mlpack``, run as a user runs the app.

The app is the payload folder of ``tests/test_model_store.py`` (the example from a spec with
``[updates]``), run from source with ``python -m mlbundle_runtime`` and ``MLBUNDLE_PAYLOAD``;
its packs are that module's real retrained ones. No display: a pack on the command line is
installed, as ``models install`` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests import test_model_store
from tests._packs import RESOURCES, ROOT
from tests.test_model_store import World, edited, records

#: The same app and real packs as the runtime's tests (a module fixture of its own here).
world = test_model_store.world


def app(
    world: World, data: Path, *args: str, payload: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")} | {
        "MLBUNDLE_PAYLOAD": str(payload or world.app),
        "MLBUNDLE_DATA_DIR": str(data),
        "PYTHONPATH": str(ROOT / "app"),
    }
    return subprocess.run(
        [sys.executable, "-m", "mlbundle_runtime", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def predicted(world: World, data: Path) -> tuple[list[str], np.ndarray]:
    rows = records()
    proc = app(world, data, "predict", "--json", json.dumps(rows))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    classes = ["Adelie", "Chinstrap", "Gentoo"]
    return [r["prediction"] for r in out], np.array(
        [[r["probabilities"][c] for c in classes] for r in out]
    )


def test_install_list_predict_and_rollback_from_the_command_line(
    world: World, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    proc = app(world, data, "models", "install", str(world.packs["1.1.0"]))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"installed model 1.1.0 from {world.packs['1.1.0']}: now active")
    assert "gate" in proc.stderr  # the progress lines
    listed = json.loads(app(world, data, "models", "list", "--json").stdout)
    assert [(e["version"], e["origin"], e["active"]) for e in listed] == [
        ("1.0.0", "bundled", False),
        ("1.1.0", "pack", True),
    ]
    labels, proba = predicted(world, data)
    oracle = world.models["1.1.0"]
    assert labels == oracle.predict(records())
    np.testing.assert_allclose(proba, oracle.predict_proba(records()), atol=1e-9)
    # a pack given as the only argument, as a double-click passes it: without a display, installed
    proc = app(world, data, str(world.packs["1.2.0"]))
    assert proc.returncode == 0, proc.stderr
    assert "installed model 1.2.0" in proc.stdout
    text = app(world, data, "models", "list").stdout.splitlines()
    assert text[-1].startswith("* 1.2.0") and "[active]" in text[-1]
    proc = app(world, data, "models", "rollback")
    assert (proc.returncode, proc.stdout) == (0, "active model: 1.1.0 (pack)\n")
    assert predicted(world, data)[0] == oracle.predict(records())
    assert app(world, data, "models", "rollback").stdout == "active model: 1.0.0 (bundled)\n"
    bundled = world.models["1.0.0"]
    assert predicted(world, data)[0] == bundled.predict(records())


def test_a_refused_pack_exits_6_with_one_line(world: World, tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert app(world, data, "models", "install", str(world.packs["1.2.0"])).returncode == 0
    state = (data / "models" / "state.json").read_bytes()
    for bad, reason in (
        (world.packs["1.1.0"], "not newer than the active model 1.2.0"),
        (tmp_path / "other.mlpack", "for the app 'otters'"),
        (tmp_path / "missing.mlpack", "No such file"),
    ):
        if bad.name == "other.mlpack":
            bad.write_bytes(edited(world, "1.2.0", meta={"app": "otters", "model_version": "2.0"}))
        proc = app(world, data, "models", "install", str(bad))
        assert proc.returncode == 6, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert lines[-1].startswith(f"error: {bad}") and reason in lines[-1]
        assert "Traceback" not in proc.stderr
    assert (data / "models" / "state.json").read_bytes() == state
    # nothing to roll to, no trial: the same exit code and one line
    proc = app(world, data, "models", "drop")
    assert (
        proc.returncode == 6
        and proc.stderr == "error: no model is in trial: there is nothing to drop\n"
    )


def test_an_app_without_updates_says_so_and_exit_6_is_documented(
    world: World, tmp_path: Path
) -> None:
    proc = app(world, tmp_path, "models", "list", payload=world.plain_app)
    assert proc.returncode == 6
    assert "built without [updates]" in proc.stderr and len(proc.stderr.splitlines()) == 1
    for args in (("--help",), ("models", "--help"), ("models", "install", "--help")):
        out = " ".join(app(world, tmp_path, *args).stdout.split())
        assert "6" in out and "refused" in out, args


def test_a_trial_from_the_command_line_reports_agreement(world: World, tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = app(world, data, "models", "install", "--trial", str(world.packs["1.2.0"]))
    assert proc.returncode == 0 and "in trial" in proc.stdout, proc.stderr
    labels, _ = predicted(world, data)
    assert labels == world.models["1.0.0"].predict(records())  # only the active model shows
    report = json.loads(app(world, data, "models", "trial-report", "--json").stdout)
    want = world.models["1.2.0"].predict(records())
    n = len(want)
    agreed = sum(a == b for a, b in zip(labels, want, strict=True))
    assert (report["rows"], report["agreed"], report["calls"]) == (n, agreed, 1)
    assert report["candidate"] == "1.2.0" and report["active"] == "1.0.0"
    text = app(world, data, "models", "trial-report").stdout
    assert f"label agreement {agreed:,} of {n:,}" in text
    proc = app(world, data, "models", "promote")
    assert proc.stdout == "active model: 1.2.0 (pack)\n"
    assert predicted(world, data)[0] == want


@pytest.mark.parametrize("command", ["check"])
def test_check_without_a_source_is_refused(world: World, tmp_path: Path, command: str) -> None:
    proc = app(world, tmp_path, "models", command)
    assert proc.returncode == 6 and "no update source" in proc.stderr


# -- the frozen app --------------------------------------------------------------------------
@pytest.mark.frozen
def test_the_frozen_app_installs_a_retrained_pack_and_rolls_back(
    built: Any, retrained_pack: Any, tmp_path: Path
) -> None:
    """The session's frozen onedir app (built with [updates]) takes the example retrained with
    another seed, packed by ``bundle pack``: its predictions become scikit-learn's for the new
    model, and ``models rollback`` brings back the bundled model's."""
    from tests._packs import Sklearn

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MLBUNDLE_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(built.onedir), *args], capture_output=True, text=True, env=env, timeout=300
        )

    rows = records()

    def labels() -> tuple[list[str], np.ndarray]:
        proc = run("predict", "--json", json.dumps(rows))
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        classes = ["Adelie", "Chinstrap", "Gentoo"]
        return [r["prediction"] for r in out], np.array(
            [[r["probabilities"][c] for c in classes] for r in out]
        )

    again = retrained_pack.retrained
    new = Sklearn(again.extractor, again.model)
    old = Sklearn(
        RESOURCES / "artifacts" / "extractor.joblib", RESOURCES / "artifacts" / "model.joblib"
    )
    proc = run("models", "install", str(retrained_pack.pack))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("installed model 1.1.0"), proc.stdout
    got, proba = labels()
    assert got == new.predict(rows)
    np.testing.assert_allclose(proba, new.predict_proba(rows), atol=1e-9)
    assert "model 1.1.0" in run("--version").stdout
    assert run("models", "rollback").stdout == "active model: 1.0.0 (bundled)\n"
    got, proba = labels()
    assert got == old.predict(rows)
    np.testing.assert_allclose(proba, old.predict_proba(rows), atol=1e-9)
    # the same pack, one byte flipped: exit code 6, the bundled model still served
    data = bytearray(retrained_pack.pack.read_bytes())
    data[len(data) // 3] ^= 0x01
    bad = tmp_path / "flipped.mlpack"
    bad.write_bytes(bytes(data))
    proc = run("models", "install", str(bad))
    last = proc.stderr.splitlines()[-1]
    assert proc.returncode == 6 and last.startswith(f"error: {bad}: the signature"), proc.stderr
    assert labels()[0] == old.predict(rows)
