"""Where ``dist_templates/`` is: the installed package's data, or the source tree's folder.

The folder lives at the top of the repository (``dist_templates/``) and ships in the wheel
as the data package ``bundler.dist_templates`` (``pyproject.toml``: ``package-dir`` and
``package-data``), so an installed ``bundle`` builds without the source tree. An editable
install or a checkout reads the repository's folder itself.
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from pathlib import Path

#: The data package's name inside ``bundler`` (and the repository folder's name).
FOLDER = "dist_templates"


@cache
def template_dir() -> Path:
    """The ``dist_templates`` folder this ``bundler`` was installed with."""
    package = Path(str(importlib.resources.files("bundler")))
    for candidate in (package / FOLDER, package.parent / FOLDER):
        if (candidate / "app.spec.j2").is_file():
            return candidate
    raise FileNotFoundError(
        f"{FOLDER}/ not found beside {package} (an installation of mlbundle without its "
        "templates: reinstall it from its wheel or source tree)"
    )
