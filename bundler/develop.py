"""``bundle prepare`` and ``bundle run``: the application from source, without freezing.

Both go through ``bundler.build.prepare``, the stages a build runs up to the
payload, so the application a release engineer iterates on reads exactly the
payload (plan, record, gate files) a build would freeze, through the same
runtime API; only PyInstaller is left out, which is what makes it take seconds.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import mlbundle_runtime as _runtime
from bundler.build import Prepared, Progress, prepare
from bundler.errors import UsageError
from bundler.spec import Spec, load_spec

#: The variable the runtime reads the payload folder from (``mlbundle_runtime.load()``).
PAYLOAD_ENV = "MLBUNDLE_PAYLOAD"


def prepare_folder(
    spec_path: Path, out: Path, *, progress: Progress = lambda _msg: None
) -> Prepared:
    """Write the spec's payload into ``out`` (replaced by a rename, never half-written),
    with the compiled kernels beside it so that ``load(out)`` needs no numba."""
    spec = load_spec(spec_path)
    out = out.resolve()
    if out.exists() and not (out / "bundle.json").is_file():
        raise UsageError(
            f"--out {out}: exists and is not a prepared payload (no bundle.json); "
            "choose a new folder or a payload written by `bundle prepare`"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.prepare-", dir=out.parent))
    try:
        prepared = prepare(spec, work, progress=progress)
        if prepared.aot_path is not None:
            shutil.copy2(prepared.aot_path, prepared.payload / prepared.aot_path.name)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(prepared.payload, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dataclasses.replace(prepared, payload=out)


def command(spec: Spec, args: Sequence[str]) -> list[str]:
    """How to start the spec's application from source: its script, its entry function,
    or the built-in application."""
    entry = spec.app.entry
    if entry is None:
        return [sys.executable, "-m", _runtime.__name__, *args]
    if isinstance(entry, Path):
        return [sys.executable, str(entry), *args]
    module, function = entry.split(":")
    code = f"from {module} import {function}; raise SystemExit({function}())"
    return [sys.executable, "-c", code, *args]


def run_from_source(spec_path: Path, args: Sequence[str], *, payload: Path) -> int:
    """Run the application from source against ``payload`` (from ``prepare_folder``); its
    exit code is ours. Its own import roots go first on PYTHONPATH."""
    spec = load_spec(spec_path)
    if not (payload / "bundle.json").is_file():
        raise UsageError(f"--payload {payload}: not a payload written by `bundle prepare`")
    roots = [str(r) for r in spec.app.sources]
    if isinstance(spec.app.entry, Path):
        roots.append(str(spec.app.entry.parent))
    env = dict(os.environ, **{PAYLOAD_ENV: str(Path(payload).resolve())})
    env["PYTHONPATH"] = os.pathsep.join([*roots, *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(command(spec, args), env=env).returncode
