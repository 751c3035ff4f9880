"""The README's claims that code can check."""

from __future__ import annotations

from bundler.compiler.table import embed
from tests.conftest import ROOT


def test_supported_estimators_table_is_current() -> None:
    text = (ROOT / "README.md").read_text()
    assert embed(text) == text, "run: python -m bundler.compiler.table README.md"


def test_readme_starts_with_the_two_commands() -> None:
    lines = [ln for ln in (ROOT / "README.md").read_text().splitlines() if ln.strip()]
    assert lines[1] == "```bash"
    assert lines[2].startswith("bash scripts/demo")
    assert lines[3].startswith("bash scripts/test")
    assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text()
