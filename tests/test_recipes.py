"""Recipes for Windows and macOS: the Inno Setup script names every file of the onedir
tree, Info.plist parses and carries the app's and the model's versions, the CI workflow
parses as YAML and builds on the three systems.

Rendered from a fake onedir tree and the example's real model record (``bundle prepare``).
"""

from __future__ import annotations

import json
import os
import plistlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bundler.recipes import app_id, bundle_identifier, bundle_version, render_recipes
from bundler.spec import Spec, load_spec
from tests.conftest import SPEC, run_bundle


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Spec, dict[str, Any]]:
    out = tmp_path_factory.mktemp("payload") / "payload"
    proc = run_bundle("prepare", str(SPEC), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return load_spec(SPEC), json.loads((out / "record.json").read_text())


def fake_onedir(root: Path) -> Path:
    onedir = root / "penguins"
    (onedir / "_internal" / "numpy" / "core").mkdir(parents=True)
    (onedir / "penguins").write_text("#!/bin/sh\n")
    (onedir / "penguins").chmod(0o755)
    for rel in ("base_library.zip", "libpython3.11.so.1.0", "numpy/core/_multiarray.so"):
        (onedir / "_internal" / rel).write_text(rel)
    (onedir / "_internal" / "a file {with} braces.txt").write_text("x")
    os.symlink("libpython3.11.so.1.0", onedir / "_internal" / "libpython3.so")
    return onedir


def icon(path: Path) -> Path:
    from PIL import Image

    Image.new("RGBA", (300, 300), (30, 90, 160, 255)).save(path)
    return path


def test_recipes_render(tmp_path: Path, prepared: tuple[Spec, dict[str, Any]]) -> None:
    spec, record = prepared
    onedir = fake_onedir(tmp_path)
    made = render_recipes(
        onedir,
        tmp_path / "dist" / "penguins",
        spec=spec,
        record=record,
        icon=icon(tmp_path / "i.png"),
    )
    recipes = tmp_path / "dist" / "penguins" / "recipes"
    assert sorted(p.relative_to(recipes).as_posix() for p in made) == [
        "README.md",
        "ci-workflow.yml",
        "macos/Info.plist",
        "macos/make-app.sh",
        "macos/penguins.icns",
        "windows/penguins.ico",
        "windows/penguins.iss",
    ]

    # Inno Setup: every file of the tree, Windows separators, the app's identity
    iss = (recipes / "windows" / "penguins.iss").read_text()
    sources = re.findall(r'^Source: "\{#SourceDir\}\\([^"]+)"; DestDir: "([^"]+)"', iss, re.M)
    tree = sorted(
        p.relative_to(onedir).as_posix() for p in onedir.rglob("*") if p.is_symlink() or p.is_file()
    )
    named = sorted(src.replace("{{", "{").replace("\\", "/") for src, _dest in sources)
    assert named == tree and len(tree) == 6
    for src, dest in sources:
        folder = src.rpartition("\\")[0]
        assert dest == "{app}" + (f"\\{folder}" if folder else "")
    assert f"AppId={{{{{app_id('penguins')}}}" in iss
    assert app_id("penguins") == app_id("penguins") != app_id("other")
    assert "AppName=Penguin species classifier\n" in iss
    assert "AppVersion=1.0.0\n" in iss and "AppPublisher=Example Release Manager\n" in iss
    assert "DefaultDirName={autopf}\\Penguin species classifier\n" in iss
    start = '[Icons]\nName: "{autoprograms}\\Penguin species classifier"; '
    assert start + 'Filename: "{app}\\penguins.exe"; Parameters: "window"' in iss
    assert "SetupIconFile=penguins.ico" in iss
    from PIL import Image

    with Image.open(recipes / "windows" / "penguins.ico") as ico:
        assert ico.format == "ICO" and (256, 256) in ico.info["sizes"]

    # macOS: a plist that parses, with both versions
    info = plistlib.loads((recipes / "macos" / "Info.plist").read_bytes())
    assert info["CFBundleShortVersionString"] == "1.0.0" == info["CFBundleVersion"]
    assert info["MLBundleModelVersion"] == record["model"]["version"]
    assert info["MLBundleModelSha256"] == record["model"]["sha256"]
    assert info["CFBundleIdentifier"] == "org.example.penguins"
    assert info["CFBundleExecutable"] == "penguins" and info["CFBundleIconFile"] == "penguins.icns"
    assert info["NSHighResolutionCapable"] is True and info["LSMinimumSystemVersion"]
    assert len(info["CFBundleName"]) <= 15
    shellcheck = shutil.which("shellcheck")
    if shellcheck:
        proc = subprocess.run(
            [shellcheck, str(recipes / "macos" / "make-app.sh")], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout

    # CI: YAML, three systems, the record's Python, the spec built, iscc on Windows
    flow = yaml.safe_load((recipes / "ci-workflow.yml").read_text())
    job = flow["jobs"]["build"]
    assert job["strategy"]["matrix"]["os"] == ["ubuntu-latest", "windows-latest", "macos-latest"]
    steps = job["steps"]
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert python["with"]["python-version"] == ".".join(record["build"]["python"].split(".")[:2])
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "bundle build specs/penguins.toml" in runs
    assert 'iscc "dist\\penguins\\recipes\\windows\\penguins.iss"' in runs
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "dist/penguins/"

    readme = (recipes / "README.md").read_text()
    for needle in ("iscc", "make-app.sh", "ci-workflow.yml", "Info.plist"):
        assert needle in readme


def test_recipes_without_icon_into_the_recipes_folder(
    tmp_path: Path, prepared: tuple[Spec, dict[str, Any]]
) -> None:
    spec, record = prepared
    made = render_recipes(
        fake_onedir(tmp_path), tmp_path / "recipes", spec=spec, record=record, icon=None
    )
    assert {p.parent for p in made} <= {
        tmp_path / "recipes",
        tmp_path / "recipes" / "windows",
        tmp_path / "recipes" / "macos",
    }
    assert not any(p.suffix in (".ico", ".icns") for p in made)
    info = plistlib.loads((tmp_path / "recipes" / "macos" / "Info.plist").read_bytes())
    assert "CFBundleIconFile" not in info
    assert "SetupIconFile" not in (tmp_path / "recipes" / "windows" / "penguins.iss").read_text()


def test_identifiers() -> None:
    assert bundle_identifier("penguins", "https://www.example.org/x") == "org.example.penguins"
    assert bundle_identifier("penguins", None) == "org.mlbundle.penguins"
    assert bundle_identifier("penguins", "http://localhost:8000/") == "org.mlbundle.penguins"
    assert bundle_version("2.1.0rc1") == "2.1.0" and bundle_version("1") == "1"
    assert bundle_version("1.2.3.4") == "1.2.3"
