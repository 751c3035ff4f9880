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
from collections.abc import Sequence
from pathlib import Path

import mlbundle_runtime as _runtime
from bundler.build import (
    Prepared,
    Progress,
    clear_stale,
    deferred_signals,
    interruptible,
    owner_tag,
    prepare,
    shown,
)
from bundler.errors import Interrupted, UsageError
from bundler.spec import Spec, load_spec

#: The variable the runtime reads the payload folder from (``mlbundle_runtime.load()``).
PAYLOAD_ENV = "MLBUNDLE_PAYLOAD"


def prepare_folder(
    spec_path: Path, out: Path, *, progress: Progress = lambda _msg: None
) -> Prepared:
    """Write the spec's payload into ``out`` (replaced by a rename, never half-written),
    with the compiled kernels beside it so that ``load(out)`` needs no numba.

    Interrupted (SIGINT, SIGTERM), it leaves ``out`` as it was and no work folder behind;
    a work folder of a ``prepare`` killed outright is removed by the next one."""
    spec = load_spec(spec_path)
    out = out.resolve()
    if out.exists() and not (out / "bundle.json").is_file():
        raise UsageError(
            f"--out {out}: exists and is not a prepared payload (no bundle.json); "
            "choose a new folder or a payload written by `bundle prepare`"
        )
    untouched = (
        f"{shown(out)} was left as it was" if out.exists() else f"{shown(out)} was not written"
    )
    try:
        with interruptible() as folders:
            clear_stale(out.parent, f".{out.name}.prepare-")
            clear_stale(out.parent, f".{out.name}.old-", restore=out)
            if not out.parent.exists():
                out.parent.mkdir(parents=True)
                folders.created(out.parent)
            work = folders.mkdtemp(f".{out.name}.prepare-", out.parent)
            prepared = prepare(spec, work, progress=progress)
            if prepared.aot_path is not None:
                shutil.copy2(prepared.aot_path, prepared.payload / prepared.aot_path.name)
            with deferred_signals():  # both renames, or neither
                old = out.with_name(f".{out.name}.old-{owner_tag()}")
                if out.exists():
                    os.replace(out, old)
                os.replace(prepared.payload, out)
                shutil.rmtree(old, ignore_errors=True)
                untouched = f"{shown(out)} was written already: the payload was complete"
    except (Interrupted, KeyboardInterrupt) as exc:
        raise Interrupted.of(exc, untouched) from None
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
