"""Stage 8: the build report, printed for the engineer and kept as JSON beside the outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bundler.gate import GateReport
from bundler.parity import ParityReport


def folder_size(folder: Path) -> int:
    """Bytes on disk of every regular file below ``folder`` (links not followed)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


@dataclass(frozen=True)
class BuildReport:
    """What was built, where it is, how big, how long each stage took, what the gate said."""

    app: str
    version: str
    backend: str
    out_dir: Path
    stages: dict[str, float]
    binaries: dict[str, dict[str, Any]]
    gate: dict[str, Any]
    gate_summary: list[str]
    parity: dict[str, Any]
    model: dict[str, Any]
    #: What the build did not refuse but the engineer should fix (e.g. no maintainer).
    warnings: tuple[str, ...] = ()
    #: The release engineer's own application: its entry and the distributions it added.
    application: dict[str, Any] | None = None

    @classmethod
    def create(
        cls,
        *,
        spec: Any,
        out_dir: Path,
        stages: dict[str, float],
        gate: GateReport,
        parity: ParityReport,
        record: dict[str, Any],
        binaries: dict[str, dict[str, Any]],
        warnings: list[str] | tuple[str, ...] = (),
        application: dict[str, Any] | None = None,
    ) -> BuildReport:
        return cls(
            app=spec.app.name,
            version=spec.app.version,
            backend=spec.build.backend,
            out_dir=out_dir,
            stages=dict(stages),
            binaries=binaries,
            gate=gate.to_json(),
            gate_summary=gate.result.summary(),
            parity=parity.to_json(),
            model={
                "algorithm": record["model"]["algorithm"],
                "version": record["model"]["version"],
                "sha256": record["model"]["sha256"],
            },
            warnings=tuple(warnings),
            application=application,
        )

    @property
    def total_seconds(self) -> float:
        return round(sum(self.stages.values()), 3)

    def executable(self, mode: str) -> Path:
        """Final path of a built binary (after publishing)."""
        return self.out_dir / self.binaries[mode]["path"]

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "version": self.version,
            "backend": self.backend,
            "output": str(self.out_dir),
            "binaries": {
                m: {k: (str(v) if isinstance(v, Path) else v) for k, v in b.items()}
                for m, b in self.binaries.items()
            },
            "stages_seconds": self.stages,
            "total_seconds": self.total_seconds,
            "gate": self.gate,
            "parity": self.parity,
            "model": self.model,
            "warnings": list(self.warnings),
            "application": self.application,
        }


#: What every bundle of the built-in application ships (numpy brings typing-extensions, the
#: bootloader pyinstaller's own modules, jit numba): not "added" by an application.
RUNTIME_DISTRIBUTIONS = frozenset(
    {"numpy", "typing-extensions", "mlbundle", "cpython", "pyinstaller", "numba", "llvmlite"}
)


def added_distributions(names: list[str], runtime: frozenset[str]) -> list[dict[str, Any]]:
    """The distributions in a bundle (``names``: its archive entries) beyond the runtime's
    own, each with its installed size: what the application's imports cost the user."""
    from importlib import metadata

    from bundler.sbom import frozen_distributions

    out = []
    for dist in frozen_distributions(names):
        if dist.name in runtime:
            continue
        try:
            files = metadata.distribution(dist.name).files or []
            size = sum(f.size or 0 for f in files)
        except metadata.PackageNotFoundError:
            size = 0
        out.append({"name": dist.name, "version": dist.version, "installed_bytes": size})
    return out
