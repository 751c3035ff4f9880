"""The ``frozen`` marker is on every test that builds or runs a frozen binary.

``pytest -m "not frozen"`` is the quick loop; the session refuses to start if a test
reaches the session build (``built``, ``built_jit``) or a module's own frozen build
without the marker, so the loop cannot silently start building binaries again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.conftest import unmarked_frozen_tests


@dataclass
class FakeItem:
    nodeid: str
    fixturenames: list[str]
    markers: dict[str, object] = field(default_factory=dict)

    def get_closest_marker(self, name: str) -> object | None:
        return self.markers.get(name)


def test_unmarked_users_of_a_frozen_build_are_named() -> None:
    items = [
        FakeItem("t.py::quick", ["tmp_path"]),
        FakeItem("t.py::marked", ["built", "tmp_path"], {"frozen": pytest.mark.frozen}),
        FakeItem("t.py::through_a_fixture", ["onedir", "built"]),
        FakeItem("t.py::jit", ["built_jit"]),
    ]
    assert unmarked_frozen_tests(items) == ["t.py::through_a_fixture", "t.py::jit"]  # type: ignore[arg-type]
