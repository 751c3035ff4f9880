"""mlbundle installed from its wheel (not editable) builds the example from outside the source tree.

The wheel is built from this checkout and installed with ``--no-deps`` into a fresh virtual
environment; its dependencies come from the development venv's site-packages through a
``.pth`` line (a folder on ``sys.path``, whose own ``.pth`` files, the editable install's
finder among them, are not run), so nothing is downloaded and ``bundler``,
``mlbundle_runtime`` and the templates are the wheel's. The example's spec and the files it
names are copied into a folder outside the repository, built onedir only with the tarball
(one freeze: about 30 s with the kernels cached), and the binary's own ``selftest`` must pass.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.conftest import EPOCH, ROOT, SPEC

pytestmark = pytest.mark.frozen


def _run(*args: str | Path, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1", SOURCE_DATE_EPOCH=EPOCH)
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout
    )
    assert proc.returncode == 0, f"{args}: exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _copy_example(dest: Path) -> Path:
    """specs/penguins.toml and every file it names, in the same relative layout, under
    ``dest``; built onedir only, with the tarball as its one installer, into ``dest/dist``."""
    text = SPEC.read_text(encoding="utf-8")
    document = tomllib.loads(text)
    paths = [
        table["path"]
        for table in (
            document["model"],
            document["extractor"],
            document["gate"]["e2e"],
            document["gate"]["confidence"],
            *document["data"].values(),
        )
        if "path" in table
    ]
    spec = dest / "specs" / SPEC.name
    spec.parent.mkdir(parents=True)
    for raw in paths:
        source = (SPEC.parent / raw).resolve()
        target = (spec.parent / raw).resolve()
        assert dest in target.parents, raw  # the copy stays inside dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    build = "\n".join(
        ["[build]", 'modes = ["onedir"]', 'installers = ["tar.gz", "deb"]', 'backend = "aot"',
         'output_dir = "../dist"'],
    )  # fmt: skip
    text = re.sub(r"(?ms)^\[build\]\n.*?(?=^\[|\Z)", build + "\n", text)
    spec.write_text(text, encoding="utf-8")
    return spec


def test_the_wheel_builds_the_example_outside_the_source_tree(tmp_path: Path) -> None:
    tmp_path = tmp_path.resolve()
    assert ROOT not in tmp_path.parents
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", wheels, ROOT, cwd=tmp_path)  # fmt: skip
    (wheel,) = wheels.glob("mlbundle-*.whl")

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
         "--no-index", wheel, cwd=tmp_path)  # fmt: skip
    site = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path
        ).stdout.strip()
    )
    # the dependencies: the development venv's packages, its .pth files not run
    (site / "zz-mlbundle-dev-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")

    where = _run(
        python,
        "-c",
        "import bundler, mlbundle_runtime; from bundler.templates import template_dir; "
        "print(bundler.__file__); print(mlbundle_runtime.__file__); print(template_dir())",
        cwd=tmp_path,
    ).stdout.split()
    assert [Path(p) for p in where] == [
        site / "bundler" / "__init__.py",
        site / "mlbundle_runtime" / "__init__.py",
        site / "bundler" / "dist_templates",
    ], where
    for template in ("app.spec.j2", "launcher.py", "selftest_hook.py", "deb/control.j2"):
        assert (site / "bundler" / "dist_templates" / template).is_file(), template

    work = tmp_path / "project"
    spec = _copy_example(work)
    build = _run(venv / "bin" / "bundle", "build", spec, "--output-dir", work / "dist", cwd=work)
    assert str(ROOT) not in build.stdout + build.stderr

    exe = work / "dist" / "penguins" / "onedir" / "penguins" / "penguins"
    selftest = _run(exe, "selftest", cwd=tmp_path, timeout=120)
    assert "pass" in selftest.stdout.lower(), selftest.stdout
    assert "recipes" in build.stdout  # rendered from the wheel's templates too
    tarball = work / "dist" / "penguins" / "installers" / "penguins-1.0.0-linux-x86_64.tar.gz"
    assert tarball.is_file()  # install.sh and the menu entry, from the wheel's templates
    assert (tarball.parent / "penguins_1.0.0_amd64.deb").is_file()  # the .deb's templates too
