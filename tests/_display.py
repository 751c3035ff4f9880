"""A real X display for the window's tests: one Xvfb server per test session.

The window is Tk, which needs an X server; Xvfb is one that draws into memory.
``.ci/run`` installs it (Debian's ``xvfb``) through ``scripts/setup``. A missing
Xvfb fails the tests that need it rather than skipping them: a skipped window
test would hide a window that does not open.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Display:
    """A running X server: its name (``:N``) and the environment that points at it."""

    name: str

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: this process's environment) with ``DISPLAY`` set to it."""
        env = dict(os.environ if base is None else base)
        env["DISPLAY"] = self.name
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def screenshot(self, path: Path) -> Path:
        """The whole screen as a PNG at ``path`` (ImageMagick's ``import``)."""
        tool = shutil.which("import")
        if tool is None:
            pytest.fail("ImageMagick's `import` is not installed (scripts/setup installs it)")
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [tool, "-display", self.name, "-window", "root", str(path)],
            check=True,
            timeout=30,
            capture_output=True,
        )
        return path


@contextmanager
def xvfb(size: str = "1280x800x24") -> Iterator[Display]:
    """Start Xvfb on a free display number (``-displayfd``) and stop it afterwards."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.fail("Xvfb is not installed: run scripts/setup (as root it installs xvfb)")
    read, write = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write), "-screen", "0", size, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            pytest.fail(f"Xvfb did not start (exit {proc.wait(5)})")
        yield Display(f":{number}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
