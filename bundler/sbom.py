"""The bundle's SBOM: the Python distributions shipped inside it, their versions and licences.

``frozen_distributions`` works from what actually shipped (the names
``bundler.freeze.bundled_names`` reads back from the finished archives), not
from the spec or the build venv: a package PyInstaller left out is not
listed, and one it pulled in unexpectedly is. ``build_sbom`` renders the list
as CycloneDX 1.6 JSON with cyclonedx-python-lib, deterministically (serial
number derived from the content, fixed timestamp, sorted components), so two
builds from the same inputs give byte-identical SBOMs.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from mlbundle_runtime import __version__ as APP_VERSION
from mlbundle_runtime.backend import AOT_MODULE
from mlbundle_runtime.bundle import PAYLOAD_PACKAGE

#: The distribution that owns the runtime (``mlbundle_runtime``, launcher, payload, kernels).
SELF = "mlbundle"
#: The interpreter frozen into every bundle (libpython, the standard library, base_library.zip).
CPYTHON = "cpython"
CPYTHON_LICENSE = "PSF-2.0"
#: Top-level names that are the app's own code or data, though no installed metadata says so.
_OWN_NAMES = frozenset({"mlbundle_runtime", "launcher", AOT_MODULE, PAYLOAD_PACKAGE})
#: PyInstaller's bootloader-side modules; its runtime hooks are matched by file name.
_PYINSTALLER_PREFIXES = ("pyimod", "pyiboot")
#: Used when neither an explicit time nor SOURCE_DATE_EPOCH is given: obviously not a real
#: build time (the zip epoch), and the same for every build.
FIXED_TIMESTAMP = dt.datetime(1980, 1, 1, tzinfo=dt.UTC)
#: Namespace of the SBOM serial number (uuid5 over the content).
_SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:mlbundle:sbom")

#: Trove licence classifiers mapped to SPDX ids, for distributions that give nothing better.
_CLASSIFIER_SPDX = {
    "MIT License": "MIT",
    "BSD License": "BSD-3-Clause",
    "Apache Software License": "Apache-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "ISC License (ISCL)": "ISC",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
}


@dataclass(frozen=True, order=True)
class FrozenDistribution:
    """One component of the bundle: a Python distribution (or CPython itself) that shipped."""

    name: str  # canonical distribution name, e.g. "numpy"; "cpython" for the interpreter
    version: str
    licenses: tuple[str, ...]  # one SPDX expression, or SPDX ids / free-text names; () if unknown
    purl: str  # pkg:pypi/numpy@2.4.6, pkg:generic/cpython@3.11.7
    modules: tuple[str, ...] = ()  # top-level names seen in the bundle, as evidence

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "licenses": list(self.licenses),
            "purl": self.purl,
        }


def canonical_name(name: str) -> str:
    """PEP 503 normalisation, which is also how purls spell PyPI names."""
    return re.sub(r"[-_.]+", "-", name).lower()


def frozen_distributions(names: Iterable[str]) -> list[FrozenDistribution]:
    """The distributions the shipped ``names`` come from, plus mlbundle and CPython (always there).

    ``names`` are archive entries and ``_internal`` paths as ``bundled_names`` gives them:
    dotted module names (``numpy._core.multiarray``), file paths (``numpy.libs/libx.so``,
    ``python3.11/lib-dynload/_bz2...so``) and dist-info folders. System shared libraries
    (libffi, libz...) are not Python distributions and are left out.
    """
    owners = packages_owners()
    seen: dict[str, set[str]] = {}
    for name in names:
        top = _top_level(name)
        if not top:
            continue
        dist = _owner(top, owners)
        if dist is not None:
            seen.setdefault(dist, set()).add(top)
    seen.setdefault(SELF, set())
    seen.setdefault(CPYTHON, set())
    found = []
    for dist, modules in seen.items():
        info = _cpython(modules) if dist == CPYTHON else _distribution(dist, modules)
        if info is not None:
            found.append(info)
    return sorted(found)


def build_sbom(
    dists: Iterable[FrozenDistribution],
    *,
    app_name: str,
    app_version: str,
    timestamp: str | dt.datetime | None = None,
) -> str:
    """CycloneDX 1.6 JSON for the app ``app_name`` made of ``dists``; same input, same bytes.

    ``timestamp`` (an ISO string such as the record's ``build.time``, or a datetime) wins;
    otherwise SOURCE_DATE_EPOCH, otherwise a fixed date. The serial number is a uuid5 of
    the app and its components, so it changes exactly when the content does.
    """
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    dists = sorted(set(dists))
    licenses = LicenseFactory()
    root = Component(
        type=ComponentType.APPLICATION,
        name=app_name,
        version=app_version,
        bom_ref=f"app:{app_name}@{app_version}",
    )
    components = [
        Component(
            type=ComponentType.LIBRARY,
            name=d.name,
            version=d.version,
            bom_ref=d.purl,
            purl=PackageURL.from_string(d.purl),
            licenses=[licenses.make_from_string(text) for text in d.licenses],
        )
        for d in dists
    ]
    identity = json.dumps(
        {"app": [app_name, app_version], "components": [d.to_json() for d in dists]},
        sort_keys=True,
    )
    bom = Bom(
        serial_number=uuid.uuid5(_SERIAL_NAMESPACE, identity),
        metadata=BomMetaData(component=root, timestamp=_timestamp(timestamp)),
        components=components,
    )
    bom.register_dependency(root, components)
    return JsonV1Dot6(bom).output_as_string(indent=2) + "\n"


# -- internals -------------------------------------------------------------------------


@cache
def packages_owners() -> dict[str, tuple[str, ...]]:
    """Top-level import name -> distributions, from installed metadata (read once: it is slow)."""
    return {k: tuple(dict.fromkeys(v)) for k, v in metadata.packages_distributions().items()}


def _top_level(name: str) -> str:
    """``numpy/_core/x.so`` -> ``numpy``; ``numpy.libs/...`` -> ``numpy.libs``; ``a.b`` -> ``a``."""
    first = name.replace("\\", "/").split("/")[0]
    if first.endswith((".libs", ".dist-info")) or first.startswith("python3."):
        return first
    return first.split(".")[0]


def _owner(top: str, owners: dict[str, tuple[str, ...]]) -> str | None:
    """The distribution a top-level name belongs to, or None (stdlib is CPython's)."""
    if top in _OWN_NAMES:
        return SELF
    if top.startswith(_PYINSTALLER_PREFIXES):
        return "pyinstaller"
    if top.startswith("pyi_rth_"):
        return _runtime_hook_owner(top)
    if top.endswith(".dist-info"):
        return canonical_name(top[: -len(".dist-info")].rsplit("-", 1)[0])
    if top.endswith(".libs"):  # auditwheel-vendored libraries: numpy.libs belongs to numpy
        top = top[: -len(".libs")]
    if top in owners:
        return canonical_name(owners[top][0])
    if (
        top in sys.stdlib_module_names
        or top.startswith(("python3.", "libpython3", "base_library"))
        or top.startswith("_sysconfigdata")
    ):
        return CPYTHON
    return None


@cache
def _runtime_hook_owner(top: str) -> str:
    """PyInstaller runtime hooks come from PyInstaller or pyinstaller-hooks-contrib."""
    for dist in ("pyinstaller", "pyinstaller-hooks-contrib"):
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError:
            continue
        if any(f.name == f"{top}.py" for f in files):
            return dist
    return "pyinstaller"


def _distribution(name: str, modules: set[str]) -> FrozenDistribution | None:
    try:
        meta = metadata.distribution(name).metadata
    except metadata.PackageNotFoundError:
        return None
    canonical = canonical_name(meta["Name"] or name)
    version = meta["Version"] or (APP_VERSION if canonical == SELF else "")
    return FrozenDistribution(
        name=canonical,
        version=version,
        licenses=_licenses(meta),
        purl=f"pkg:pypi/{canonical}@{version}",
        modules=tuple(sorted(modules)),
    )


def _cpython(modules: set[str]) -> FrozenDistribution:
    version = ".".join(str(part) for part in sys.version_info[:3])
    return FrozenDistribution(
        name=CPYTHON,
        version=version,
        licenses=(CPYTHON_LICENSE,),
        purl=f"pkg:generic/{CPYTHON}@{version}",
        modules=tuple(sorted(modules)),
    )


def _licenses(meta: metadata.PackageMetadata) -> tuple[str, ...]:
    """License-Expression, else a one-line License field, else the licence classifiers."""
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return (expression,)
    text = (meta.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 200 and text.upper() != "UNKNOWN":
        return (text,)
    found: list[str] = []
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License ::"):
            label = classifier.split(" :: ")[-1]
            found.append(_CLASSIFIER_SPDX.get(label, label))
    return tuple(dict.fromkeys(found))


def _timestamp(value: str | dt.datetime | None) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    elif value:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    elif os.environ.get("SOURCE_DATE_EPOCH"):
        when = dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]), dt.UTC)
    else:
        when = FIXED_TIMESTAMP
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).replace(microsecond=0)
