"""docs/plan-format.md documents every kernel a plan may call, from the kernels' own text."""

from __future__ import annotations

from pathlib import Path

from bundler.compiler.kernel_docs import embed
from mlbundle_runtime.plan import FORMAT_VERSION, plan_kernels

DOC = Path(__file__).resolve().parents[1] / "docs" / "plan-format.md"


def test_kernel_reference_is_current() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert embed(text) == text, "run: python -m bundler.compiler.kernel_docs docs/plan-format.md"


def test_every_plan_kernel_and_the_read_version_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = [k for k in plan_kernels() if f"#### `{k}` (" not in text]
    assert not missing
    major, minor = FORMAT_VERSION
    assert text.startswith(f"# Scoring plan format, version {major}.{minor}\n")
    assert f"plans of format {major}.x" in text
