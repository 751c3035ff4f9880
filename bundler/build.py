"""``bundle build``: the pipeline, stage by stage, as the product describes it.

spec -> artifacts (hash-verified, then unpickled) -> plan (compiled, parity
checked) -> gate -> record -> frozen app (self-tested) -> report, published
atomically. Each stage is a module taking the previous stage's value; this
file only wires them and keeps time.

An interrupted build (SIGINT, SIGTERM) loses nothing: the child processes it
started (PyInstaller, the frozen self-tests) are stopped, its staging and
temporary folders are removed, and the published folder is left as it was; the
renames that publish and the clean-up itself are never cut in half. A folder
left by a build that was killed outright (SIGKILL, power loss) is named after
its owner (``<pid>@<host>``) and removed by the next build once that process is
gone (``clear_stale``). Builds take no lock, so a concurrent build of the same
app keeps its own staging folder: its owner is running.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler import freeze as freeze_stage
from bundler.artifacts import Artifacts, load_artifacts
from bundler.backends import get_backend
from bundler.compiler import compile_estimators
from bundler.data import DataCheck, check_data, check_release, check_versions
from bundler.errors import FreezeError, InputError, Interrupted, SpecError, ToolchainError
from bundler.gate import GateReport, read_gate_sets, run_gate_stage
from bundler.icon import app_icon
from bundler.installers import check_maintainer, make_installers
from bundler.manifest import (
    load_private_key,
    sign_manifest,
    write_onedir_manifest,
    write_onefile_manifest,
)
from bundler.parity import ParityReport, check_parity
from bundler.passthrough import PassthroughModel, describe_passthrough
from bundler.payload import dump_json, plan_digest, updates_info, write_payload
from bundler.recipes import render_recipes
from bundler.record import build_record, requirements_text
from bundler.report import RUNTIME_DISTRIBUTIONS, BuildReport, added_distributions, folder_size
from bundler.sbom import build_sbom, frozen_distributions
from bundler.spec import INSTALLERS, Spec, load_spec
from mlbundle_runtime.inputs import InputError as RowError
from mlbundle_runtime.scorer import Scorer, output_columns

Progress = Callable[[str], None]


@dataclass
class _Clock:
    """Seconds spent per stage, for the build report."""

    stages: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str, progress: Progress) -> Iterator[None]:
        progress(name)
        start = time.perf_counter()
        yield
        self.stages[name] = round(time.perf_counter() - start, 3)


@dataclass(frozen=True)
class Prepared:
    """Everything up to the payload: what ``bundle prepare``, ``bundle run`` and ``bundle
    build`` share, so the app run from source reads exactly the payload a build freezes."""

    spec: Spec
    release: bool
    compiled: Any  # CompiledPlan, or PassthroughModel
    scorer: Any
    parity: ParityReport
    gate: GateReport
    record: dict[str, Any]
    payload: Path  # the payload folder (bundle.json, plan, record, gate files)
    aot_path: Path | None  # the compiled kernels, for the aot backend
    warnings: list[str]


def prepare(
    spec: Spec,
    work_dir: Path,
    *,
    release: bool = False,
    progress: Progress = lambda _msg: None,
    clock: _Clock | None = None,
    with_updates: bool = True,
) -> Prepared:
    """Verify, compile, check and record the model; write the payload under ``work_dir``.

    ``with_updates=False``: no ``updates.json`` even when the spec has ``[updates]`` (a
    model pack's payload: the key belongs to the app, not to the model it carries)."""
    clock = clock or _Clock()
    with clock.stage("validate spec", progress):
        if release:
            check_release(spec)
        warnings = check_maintainer(spec)
        check_versions(spec)
        get_backend(spec.build.backend).check_toolchain()
    with clock.stage("verify and load artifacts", progress):
        artifacts = load_artifacts(spec)
    # passthrough: no kernels and no plan; the model itself ships, with scikit-learn
    backend = get_backend(spec.build.backend)
    passthrough = not backend.compiles_plan
    aot_path, kernels = None, None
    if not passthrough:
        with clock.stage("compile kernels", progress):
            aot_path = backend.compile()
            kernels = backend.kernels(aot_path)
    stage = "describe model (passthrough)" if passthrough else "compile plan"
    with clock.stage(stage, progress):
        compiled: Any
        if passthrough:  # parity: the payload's bytes, unpickled again, vs the loaded model
            compiled = describe_passthrough(spec, artifacts)
            scorer: Any = compiled.scorer()
        else:
            compiled = compile_estimators(
                artifacts.model.estimator,
                artifacts.extractor.estimator if artifacts.extractor else None,
                target_names=spec.outputs.targets,
            )
            scorer = Scorer(compiled.load(), kernels)
    with clock.stage("parity, release gate and data", progress):
        parity, gate, data = check_model(spec, artifacts, scorer, compiled.header["inputs"])
    with clock.stage("model record", progress):
        digest = plan_digest(compiled, work_dir / "plan-digest")
        record = build_record(
            spec,
            artifacts,
            compiled.header,
            gate.to_json(),
            parity.to_json(),
            digest,
            data,
            release,
            output_columns(scorer.plan.output),
        )
        info = {
            "name": spec.app.name,
            "version": spec.app.version,
            "title": spec.app.title,
            "model_version": spec.model.version,
            "backend": backend.runtime,
            "approval": record["audit"]["status"],
            "release": release,
        }
        updates = spec.updates if with_updates else None
        payload = write_payload(
            work_dir / "payload",
            info=info,
            plan=compiled,
            record=record,
            gate=gate,
            requirements=requirements_text(),
            updates=None if updates is None else updates_info(updates.raw_key, updates.source),
        )
    return Prepared(
        spec, release, compiled, scorer, parity, gate, record, payload, aot_path, warnings
    )


def build(
    spec_path: Path,
    *,
    output_dir: Path | None = None,
    release: bool = False,
    signing_key: Path | None = None,
    sign: bool = False,
    progress: Progress = lambda _msg: None,
) -> BuildReport:
    """Run every stage; publish into the output folder only if all of them pass.

    Interrupted (SIGINT, SIGTERM), it raises ``Interrupted`` saying the output folder was
    left as it was, once its children are stopped and its folders removed."""
    clock = _Clock()
    spec = load_spec(spec_path)
    # A bad key must fail now, not after freezing; it is never written anywhere.
    key = load_private_key(signing_key) if (sign or signing_key) else None
    out_root = (output_dir or spec.build.output_dir).resolve()
    target = out_root / spec.app.name
    freeze_stage.require_pyinstaller()
    check_installer_tools(spec)
    untouched = (
        f"{shown(target)} was left as it was"
        if target.exists()
        else f"nothing was published to {shown(target)}"
    )
    try:
        with interruptible() as folders:
            clear_stale(out_root, f".{spec.app.name}.staging-")
            clear_stale(out_root, f".{spec.app.name}.old-", restore=target)
            clear_stale(Path(tempfile.gettempdir()), f"mlbundle-prepare-{spec.app.name}.")
            # nothing under the output folder until the model passed every check
            work = folders.mkdtemp(f"mlbundle-prepare-{spec.app.name}.")
            prepared = prepare(spec, work, release=release, progress=progress, clock=clock)
            if not out_root.exists():
                out_root.mkdir(parents=True)
                folders.created(out_root)  # removed again if the build stops here, empty
            staging = folders.mkdtemp(f".{spec.app.name}.staging-", out_root)
            return package(
                prepared,
                staging,
                target,
                targets=(*spec.build.modes, *spec.build.installers),
                key=key,
                progress=progress,
                clock=clock,
            )
    except (Interrupted, KeyboardInterrupt) as exc:
        if isinstance(exc, Interrupted) and exc.detail:  # interrupted as it published
            raise
        raise Interrupted.of(exc, untouched) from None


# -- interruptions and stale folders ----------------------------------------------------

#: The signals that stop a build: Ctrl-C, and a CI runner's or service manager's stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def owner_tag() -> str:
    """``<pid>@<host>``: which process on which machine a temporary folder belongs to."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "localhost"
    return f"{os.getpid()}@{host}"


_OWNED = re.compile(r"(\d+)@([A-Za-z0-9._]+)(?:-[A-Za-z0-9_]*)?")


def clear_stale(folder: Path, prefix: str, *, restore: Path | None = None) -> list[Path]:
    """Remove the folders ``folder/<prefix><pid>@<host>[-<random>]`` whose owning process
    is gone (killed outright, so it could not clean up); return them.

    A folder whose owner still runs (a concurrent build), that belongs to another host
    (a shared output folder) or is not named after an owner at all is left alone.
    ``restore``: a stale folder is the previous published output, set aside by a build
    killed between its two renames; it is renamed back into ``restore`` when that is
    missing (and removed otherwise).
    """
    _pid, host = owner_tag().split("@")
    cleared: list[Path] = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return cleared
    for path in entries:
        if not path.name.startswith(prefix):
            continue
        owner = _OWNED.fullmatch(path.name[len(prefix) :])
        if owner is None or owner[2] != host or _running(int(owner[1])):
            continue
        if not path.is_dir() or path.is_symlink():
            continue
        with deferred_signals():
            if restore is not None and not os.path.lexists(restore):
                os.replace(path, restore)
            else:
                shutil.rmtree(path, ignore_errors=True)
        cleared.append(path)
    return cleared


def _running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie does not; when unsure: yes)."""
    if pid == os.getpid():
        return True
    if pid <= 0 or os.name == "nt":  # os.kill(pid, 0) would terminate it on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: someone else's process
        return True
    state = _process_table().get(pid)
    return state is None or state[1] not in "ZX"


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then act on the first one as it
    would have been: a pair of renames or a clean-up is never cut in half.

    Only the main thread can set handlers (and only it runs them): elsewhere, a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda n, _f: caught.append(n)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            else:  # the default action (SIGINT's is a Python handler, so: terminate) or none
                signal.raise_signal(caught[0])


class _Folders:
    """The temporary folders of one command: made owned (``owner_tag``), removed at its end."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.roots: list[Path] = []

    def mkdtemp(self, prefix: str, parent: Path | None = None) -> Path:
        with deferred_signals():  # made and recorded together
            path = Path(tempfile.mkdtemp(prefix=f"{prefix}{owner_tag()}-", dir=parent))
            self.paths.append(path)
        return path

    def created(self, root: Path) -> None:
        self.roots.append(root)

    def remove(self, *, roots: bool) -> None:
        for path in reversed(self.paths):
            shutil.rmtree(path, ignore_errors=True)
        for root in reversed(self.roots if roots else []):
            with suppress(OSError):  # only if empty: nothing else of anyone's is lost
                root.rmdir()


@contextmanager
def interruptible() -> Iterator[_Folders]:
    """Temporary folders removed whatever happens; on an interruption, the child processes
    started inside the block stopped first (they would write into them meanwhile)."""
    before = _children(os.getpid(), _process_table())
    folders = _Folders()
    interrupted = False
    try:
        yield folders
    except (Interrupted, KeyboardInterrupt):
        interrupted = True
        with deferred_signals():
            stop_children(exclude=before)
        raise
    finally:
        with deferred_signals():
            folders.remove(roots=interrupted)


def stop_children(*, exclude: frozenset[int] = frozenset(), grace: float = 5.0) -> list[int]:
    """Stop every descendant of this process except the trees under ``exclude`` (children
    it had before): SIGTERM, then SIGKILL after ``grace`` seconds. Returns their pids.

    Reads ``/proc``; where there is none (macOS, Windows), stops nothing: the child
    processes then get the terminal's Ctrl-C themselves, but not a SIGTERM sent to us.
    """
    table = _process_table()
    children = _children(os.getpid(), table) - exclude
    victims = [
        pid for child in children for pid in _tree(child, table) if table[pid][1] not in "ZX"
    ]
    for pid in victims:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    alive = victims
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        table = _process_table()
        alive = [pid for pid in alive if pid in table and table[pid][1] not in "ZX"]
    for pid in alive:
        _kill(pid, signal.SIGKILL)
    for pid in children:  # reaped: no zombie outlives us (their Popen then reads ECHILD)
        with suppress(OSError):
            os.waitpid(pid, 0 if pid in alive else os.WNOHANG)
    return victims


def adopt_orphans() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux), so that
    ``stop_children`` still finds a grandchild whose parent died first, e.g. the app a
    onefile binary unpacked and started when that binary was killed. For a command's
    own process (``bundler.cli``): a library caller keeps its own rules."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _kill(pid: int, sig: int) -> None:
    with suppress(OSError):  # already gone
        os.kill(pid, sig)


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every process, from ``/proc`` (empty without)."""
    table: dict[int, tuple[int, str]] = {}
    try:
        entries = list(os.scandir("/proc"))
    except OSError:
        return table
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat"), encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            table[int(entry.name)] = (int(fields[1]), fields[0])
        except (OSError, IndexError, ValueError):
            continue
    return table


def _children(pid: int, table: dict[int, tuple[int, str]]) -> frozenset[int]:
    return frozenset(p for p, (parent, _state) in table.items() if parent == pid)


def _tree(pid: int, table: dict[int, tuple[int, str]]) -> list[int]:
    """``pid`` and all its descendants, parents first."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        found.append(current)
        queue.extend(sorted(_children(current, table) - set(found)))
    return found


def shown(path: Path) -> str:
    """``path`` as the user would write it: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


#: What ``package`` can make: PyInstaller layouts, then installers of the onedir one.
TARGETS = (*freeze_stage.MODES, *INSTALLERS)

#: The program each installer kind is built with, and the Debian package that has it.
INSTALLER_TOOLS = {"deb": ("dpkg-deb", "dpkg"), "rpm": ("rpmbuild", "rpm")}


def check_installer_tools(spec: Spec) -> None:
    """Refuse at the start a build whose installers need a program this machine lacks."""
    for kind in spec.build.installers:
        if kind not in INSTALLER_TOOLS:
            continue
        program, package = INSTALLER_TOOLS[kind]
        if shutil.which(program) is None:
            raise ToolchainError(
                f"{spec.path}: build.installers: {program} is needed to build the {kind!r} "
                f"installer and is not on PATH: install it (`apt-get install {package}`) or "
                f'drop "{kind}" from build.installers'
            )


def package(
    prepared: Prepared,
    staging: Path,
    target: Path,
    *,
    targets: Sequence[str],
    key: Any = None,
    progress: Progress = lambda _msg: None,
    clock: _Clock | None = None,
) -> BuildReport:
    """Freeze, self-test, seal and make installers for ``targets``; publish into ``target``
    by renames only, once every target is made."""
    clock = clock or _Clock()
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise SpecError(f"unknown target(s) {', '.join(unknown)}; valid: {', '.join(TARGETS)}")
    spec, record, compiled = prepared.spec, prepared.record, prepared.compiled
    modes = [t for t in targets if t in freeze_stage.MODES]
    installers = [t for t in targets if t not in freeze_stage.MODES]
    if installers and "onedir" not in modes:
        raise SpecError("installers are made from the onedir build: add the onedir target")
    with clock.stage("freeze with PyInstaller", progress):
        frozen = freeze_stage.freeze(
            name=spec.app.name,
            payload_dir=prepared.payload,
            backend=spec.build.backend,
            aot_extension=prepared.aot_path,
            hiddenimports=(
                compiled.hiddenimports if isinstance(compiled, PassthroughModel) else ()
            ),
            modes=modes,
            work_dir=staging / "work" / "pyinstaller",
            progress=progress,
            application=freeze_stage.Application.from_spec(spec),
            console=spec.app.console,
        )
    with clock.stage("self-test frozen binaries", progress):
        result = _assemble(staging, spec, frozen, prepared.payload, record)
    with clock.stage("manifest, SBOM and signature", progress):
        _seal(staging / "out", spec, record, result, key)
    onedir = staging / "out" / "onedir" / spec.app.name
    icon = app_icon(spec, staging / "work" / "icon") if "onedir" in modes else None
    if "onedir" in modes:  # Windows and macOS recipes list the onedir tree's files
        with clock.stage("recipes", progress):
            render_recipes(onedir, staging / "out" / "recipes", spec=spec, record=record, icon=icon)
    if installers:
        with clock.stage("installers", progress):
            for inst in make_installers(
                onedir,
                staging / "out" / "installers",
                kinds=tuple(installers),
                name=spec.app.name,
                version=spec.app.version,
                title=spec.app.title,
                description=spec.app.description,
                record=record,
                work=staging / "work" / "installers",
                icon=icon,
            ):
                result[inst.kind] = {
                    "path": inst.path.relative_to(staging / "out").as_posix(),
                    "size": inst.size,
                }
    application = None
    if spec.app.entry is not None:
        exe = staging / "out" / next(iter(result.values()))["path"]
        runtime = RUNTIME_DISTRIBUTIONS | set(getattr(compiled, "distributions", ()))
        application = {
            "entry": str(spec.app.entry),
            "distributions": added_distributions(freeze_stage.bundled_names(exe), runtime),
        }
    report = BuildReport.create(
        spec=spec,
        out_dir=target,
        stages=clock.stages,
        gate=prepared.gate,
        parity=prepared.parity,
        record=record,
        binaries=result,
        warnings=prepared.warnings,
        application=application,
    )
    dump_json(staging / "out" / "build-report.json", report.to_json())
    _publish(staging / "out", target)
    return report


def check_model(
    spec: Spec, artifacts: Artifacts, scorer: Scorer, inputs: list[dict[str, Any]]
) -> tuple[ParityReport, GateReport, DataCheck]:
    """Every check on the model before anything is written: the spec's inputs exist,
    the gate files read strictly (once, for parity and the gate), the plan scores as
    scikit-learn does, the gate passes, and the data files match their hashes."""
    _check_spec_inputs(spec, scorer)
    model = artifacts.model.estimator
    extractor = artifacts.extractor.estimator if artifacts.extractor else None
    # the runtime's InputError (a bad row, cell or header, named by the user's file and
    # line) becomes the build's, with its exit code: once, for every check below
    try:
        sets = read_gate_sets(spec, scorer)
        parity = check_parity(scorer, model, extractor, [sets.e2e, sets.confidence])
        gate = run_gate_stage(spec, scorer, sets)
        return parity, gate, check_data(spec, inputs)
    except RowError as exc:
        raise InputError(str(exc)) from None


def _check_spec_inputs(spec: Spec, scorer: Scorer) -> None:
    unknown = sorted(set(spec.inputs) - set(scorer.plan.input_names))
    if unknown:
        raise SpecError(
            f"{spec.path}: inputs.{unknown[0]}: the model has no input named {unknown[0]!r}; "
            f"valid: {', '.join(scorer.plan.input_names)}"
        )


def _assemble(
    staging: Path, spec: Spec, frozen: freeze_stage.FrozenApp, payload: Path, record: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Move binaries into the output layout and run each one's own selftest."""
    out = staging / "out"
    out.mkdir()
    binaries: dict[str, dict[str, Any]] = {}
    if frozen.onedir is not None:
        target = out / "onedir" / spec.app.name
        target.parent.mkdir()
        shutil.move(str(frozen.onedir), target)
        binaries["onedir"] = {
            "path": f"onedir/{spec.app.name}/{spec.app.name}",
            "size": folder_size(target),
        }
    if frozen.onefile is not None:
        target = out / "onefile" / spec.app.name
        target.parent.mkdir()
        shutil.move(str(frozen.onefile), target)
        binaries["onefile"] = {"path": f"onefile/{spec.app.name}", "size": target.stat().st_size}
    for mode, entry in binaries.items():
        start = time.perf_counter()
        # the runtime hook every bundle carries: the gate, whatever the app's command line
        proc = freeze_stage.run_frozen(out / entry["path"], env={"MLBUNDLE_SELFTEST": "1"})
        entry["selftest_seconds"] = round(time.perf_counter() - start, 3)
        if proc.returncode != 0:
            raise FreezeError(
                f"the {mode} binary failed its own selftest (exit {proc.returncode}):\n"
                + (proc.stdout + proc.stderr)[-3000:]
            )
        entry["selftest"] = proc.stdout.strip().splitlines()
    shutil.copytree(payload, out / "payload", ignore=shutil.ignore_patterns("__init__.py"))
    return binaries


def _seal(
    out: Path, spec: Spec, record: dict[str, Any], binaries: dict[str, dict[str, Any]], key: Any
) -> None:
    """Write each binary's manifest (every file's sha256) and SBOM, and sign the manifests.

    Runs after the self-tests (which leave nothing behind) and before the
    installers, so the installers carry the manifest and signature too.
    """
    for mode, entry in binaries.items():
        exe = out / entry["path"]
        sbom = build_sbom(
            frozen_distributions(freeze_stage.bundled_names(exe)),
            app_name=spec.app.name,
            app_version=spec.app.version,
            timestamp=record["build"]["time"],
        )
        write = write_onedir_manifest if mode == "onedir" else write_onefile_manifest
        target = exe.parent if mode == "onedir" else exe
        manifest = write(target, sbom, app_name=spec.app.name, app_version=spec.app.version)
        entry["manifest"] = manifest.relative_to(out).as_posix()
        if key is not None:
            entry["signature"] = sign_manifest(manifest, key).relative_to(out).as_posix()


def _publish(src: Path, dst: Path) -> None:
    """Replace ``dst`` with ``src`` by renames only: readers never see a half-written tree.

    SIGINT and SIGTERM wait until both renames are done (``deferred_signals``); one that
    came meanwhile then stops the command, saying the new output was published."""
    try:
        with deferred_signals():
            old = None
            if dst.exists():
                old = dst.with_name(f".{dst.name}.old-{owner_tag()}")
                os.replace(dst, old)
            os.replace(src, dst)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    except (Interrupted, KeyboardInterrupt) as exc:
        raise Interrupted.of(
            exc, f"{shown(dst)} was published already: the build had just finished"
        ) from None
