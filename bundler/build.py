"""``bundle build``: the pipeline, stage by stage, as the product describes it.

spec -> artifacts (hash-verified, then unpickled) -> plan (compiled, parity
checked) -> gate -> record -> frozen app (self-tested) -> report, published
atomically. Each stage is a module taking the previous stage's value; this
file only wires them and keeps time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bundler import freeze as freeze_stage
from bundler.artifacts import Artifacts, load_artifacts
from bundler.backends import get_backend
from bundler.compiler import compile_estimators
from bundler.data import DataCheck, check_data, check_release, check_versions
from bundler.errors import FreezeError, InputError, SpecError
from bundler.gate import GateReport, read_gate_sets, run_gate_stage
from bundler.installers import check_maintainer, make_installers
from bundler.manifest import (
    load_private_key,
    sign_manifest,
    write_onedir_manifest,
    write_onefile_manifest,
)
from bundler.parity import ParityReport, check_parity
from bundler.passthrough import PassthroughModel, describe_passthrough
from bundler.payload import dump_json, plan_digest, write_payload
from bundler.record import build_record, requirements_text
from bundler.report import RUNTIME_DISTRIBUTIONS, BuildReport, added_distributions, folder_size
from bundler.sbom import build_sbom, frozen_distributions
from bundler.spec import Spec, load_spec
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
) -> Prepared:
    """Verify, compile, check and record the model; write the payload under ``work_dir``."""
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
        }
        payload = write_payload(
            work_dir / "payload",
            info=info,
            plan=compiled,
            record=record,
            gate=gate,
            requirements=requirements_text(),
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
    """Run every stage; publish into the output folder only if all of them pass."""
    clock = _Clock()
    spec = load_spec(spec_path)
    # A bad key must fail now, not after freezing; it is never written anywhere.
    key = load_private_key(signing_key) if (sign or signing_key) else None
    out_root = (output_dir or spec.build.output_dir).resolve()
    freeze_stage.require_pyinstaller()
    # nothing under the output folder until the model passed every check
    with tempfile.TemporaryDirectory(prefix="mlbundle-prepare-") as work:
        prepared = prepare(spec, Path(work), release=release, progress=progress, clock=clock)
        out_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{spec.app.name}.staging-", dir=out_root))
        try:
            return package(
                prepared,
                staging,
                out_root / spec.app.name,
                targets=(*spec.build.modes, *spec.build.installers),
                key=key,
                progress=progress,
                clock=clock,
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)


#: What ``package`` can make: PyInstaller layouts, then installers of the onedir one.
TARGETS = (*freeze_stage.MODES, "tar.gz", "deb")


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
    if installers:
        with clock.stage("installers", progress):
            for inst in make_installers(
                staging / "out" / "onedir" / spec.app.name,
                staging / "out" / "installers",
                kinds=tuple(installers),
                name=spec.app.name,
                version=spec.app.version,
                title=spec.app.title,
                description=spec.app.description,
                record=record,
                work=staging / "work" / "installers",
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
    """Replace ``dst`` with ``src`` by renames only: readers never see a half-written tree."""
    old = None
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
        os.replace(dst, old)
    os.replace(src, dst)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
