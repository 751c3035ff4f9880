"""Freeze stage: turn the runtime app plus a payload into PyInstaller binaries.

The stage renders ``dist_templates/app.spec.j2`` into a spec under the
caller's scratch folder and runs PyInstaller in a subprocess, so that
PyInstaller's import-graph analysis, logging and global state never touch the
build tool's own process. One Analysis feeds both the onedir and the onefile
target, which halves the cost of building both.

What goes into a bundle depends on the scoring backend:

- ``aot``: the numba.pycc extension is shipped as a top-level binary (so
  ``import _mlbundle_kernels`` works) and numba, llvmlite and the build-side
  libraries are excluded. ``freeze`` re-reads the finished archives and refuses
  a bundle in which any of them slipped through.
- ``jit``: numba and llvmlite are shipped, together with ``app/mlbundle_runtime/kernels/*.py`` as
  a data file, because ``mlbundle_runtime.backend`` compiles the kernels from their source
  text at run time.

The payload (plan, arrays, record, gate files) is the package
``mlbundle_payload``; the app reads it with ``importlib.resources``. Its
``__init__`` goes into the PYZ as a hidden import, and its files are collected
as data under ``mlbundle_payload/``: PyInstaller's frozen loader answers
``importlib.resources.files("mlbundle_payload")`` with that on-disk folder,
in onedir and (after unpacking) onefile alike.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlbundle_runtime as _runtime
from bundler.backends import BACKEND_NAMES, get_backend
from bundler.backends.base import WINDOW_IMPORTERS, WINDOW_MODULE, WINDOW_TOOLKIT
from bundler.errors import FreezeError, ImportRefusedError, ToolchainError
from bundler.templates import template_dir
from mlbundle_runtime.bundle import PAYLOAD_PACKAGE
from mlbundle_runtime.packs import UPDATES_FILE

#: The runtime's import name: the application reaches the model through it.
_RUNTIME_PACKAGE = _runtime.__name__
#: Where the spec's refusal check writes what it found; PyInstaller then exits with this.
REFUSALS_FILE = "refused-imports.json"
REFUSED_EXIT = 3
MODES = ("onedir", "onefile")

#: ``dist_templates/``: the source tree's, or the installed package's (``bundler.templates``).
TEMPLATE_DIR = template_dir()
SPEC_TEMPLATE = "app.spec.j2"
LAUNCHER = TEMPLATE_DIR / "launcher.py"
#: Runtime hook of every bundle: ``MLBUNDLE_SELFTEST=1`` runs the gate, not the app.
SELFTEST_HOOK = TEMPLATE_DIR / "selftest_hook.py"

# What each backend ships, trims and forbids: ``bundler.backends`` (``freeze_files``).

#: Third-party packages the runtime does not use but numpy's or numba's
#: optional imports can reach when they are installed in the build venv.
THIRD_PARTY_EXCLUDES = (
    "pandas",
    "threadpoolctl",
    "matplotlib",
    "PIL",
    "IPython",
    "pytest",
    "hypothesis",
    "setuptools",
    "pkg_resources",
    "distutils",
    "PyInstaller",
    "bundler",
    "jinja2",
    "pydantic",
    "cloudpickle",
    "yaml",  # PyYAML (a build and test dependency): optional imports reach it
)

#: What an app that accepts model packs (the spec's ``[updates]``, so the payload's
#: ``updates.json``) needs: PyNaCl checks the signatures; its libsodium binding is a cffi
#: extension whose C-level import of ``_cffi_backend`` PyInstaller's analysis cannot see
#: (pyinstaller-hooks-contrib's hook-nacl collects only nacl's own files); platformdirs
#: finds the user's data folder and filelock guards it. An app without ``[updates]``
#: ships none of them: the runtime imports them only when the payload has updates.json.
UPDATES_MODULES = (
    "nacl",
    "nacl.signing",
    "nacl.exceptions",
    "nacl.bindings",
    "_cffi_backend",
    "platformdirs",
    "filelock",
)
#: Binaries of the pack checker stripped of their debug info (by their name in the
#: bundle): PyNaCl's wheel builds libsodium into ``nacl/_sodium`` unstripped.
UPDATES_STRIP = ("nacl/_sodium", "_cffi_backend")
#: Excluded from an app without ``[updates]`` (``cffi``: the pure-Python half, never used).
UPDATES_EXCLUDES = ("nacl", "_cffi_backend", "cffi", "platformdirs", "filelock")
#: Left out of an app with ``[updates]``: filelock's read-write and soft locks, loaded on
#: first use of their names, and the SQLite they are built on (libsqlite3 and its module:
#: 0.8 MB of the onefile). The store takes only ``filelock.FileLock``.
UPDATES_TRIMS = (
    "sqlite3",
    "_sqlite3",
    "filelock._sqlite",
    "filelock._soft",
    "filelock._async_lock",
    "filelock.asyncio",
)
#: An https ``[updates] source`` needs TLS: the ``ssl`` module (and ``_ssl``, which links
#: OpenSSL), which aot bundles otherwise trim. A folder source does not.
TLS_MODULES = ("ssl", "_ssl")

#: numpy's subpackages that ``import numpy`` does not import (``python -X importtime``) and
#: that the runtime never reaches (its predict, file scoring, self-test and window, checked
#: frozen): random 1.1 MB of the onefile, fft 0.25 MB, polynomial 0.15 MB, and the test-only
#: ``_multiarray_tests`` extension. ``numpy.ma`` stays: ``np.unique`` imports it. Only
#: the built-in application of a bundle that ships neither numba nor scikit-learn loses
#: them (both use numpy.random; a release engineer's code may reach ``np.random`` without
#: importing it by name).
NUMPY_UNUSED = (
    "numpy.random",
    "numpy.fft",
    "numpy.polynomial",
    "numpy.typing",
    "numpy.matlib",
    "numpy.ctypeslib",
    "numpy.f2py",
    "numpy.testing",
    "numpy._pyinstaller",
    "numpy._core._multiarray_tests",
)
#: The standard library's multi-byte codecs (each needs one of the ``_codecs_*`` extensions).
CJK_CODECS = (
    "big5", "big5hkscs", "cp932", "cp949", "cp950", "euc_jis_2004", "euc_jisx0213", "euc_jp",
    "euc_kr", "gb18030", "gb2312", "gbk", "hz", "iso2022_jp", "iso2022_jp_1", "iso2022_jp_2",
    "iso2022_jp_2004", "iso2022_jp_3", "iso2022_jp_ext", "iso2022_kr", "johab", "shift_jis",
    "shift_jis_2004", "shift_jisx0213",
)  # fmt: skip
#: EBCDIC, classic Mac OS and Windows-only code pages: no Linux locale names them.
RARE_CODECS = (
    "cp037", "cp1026", "cp1140", "cp273", "cp424", "cp500", "cp875", "mac_arabic",
    "mac_croatian", "mac_cyrillic", "mac_farsi", "mac_greek", "mac_iceland", "mac_latin2",
    "mac_roman", "mac_romanian", "mac_turkish", "mbcs", "oem", "palmos", "hp_roman8",
)  # fmt: skip
#: Standard-library modules PyInstaller finds in the runtime's graph that none of its
#: commands loads (strace of the frozen app): ``unicodedata`` (0.4 MB; an https pack source
#: keeps it, getaddrinfo encodes the host with the idna codec, which needs it), the CJK
#: codecs (0.45 MB; inputs are read as UTF-8), ``decimal`` (0.2 MB), and bz2/lzma with their
#: libraries, which ``zipfile`` imports when present (npz payloads and packs are deflated).
STDLIB_UNUSED = (
    "unicodedata",
    "stringprep",
    "_multibytecodec",
    "_codecs_cn",
    "_codecs_hk",
    "_codecs_iso2022",
    "_codecs_jp",
    "_codecs_kr",
    "_codecs_tw",
    "decimal",
    "_decimal",
    "_pydecimal",
    "bz2",
    "_bz2",
    "lzma",
    "_lzma",
    # the https pack download (store.py, only with an https [updates] source) and what
    # urllib.request brings: 0.35 MB of the PYZ
    "urllib.request",
    "urllib.error",
    "urllib.response",
    "http",
    "email",
    "ftplib",
    "mimetypes",
    "netrc",
    "nturl2path",
    "quopri",
    "socket",
    "_socket",
    # never imported by any command (python -X importtime of each): 0.2 MB of the PYZ
    "typing_extensions",
    "tarfile",
    "statistics",
    "_statistics",
    "fractions",
    "tracemalloc",
    "pprint",
    "concurrent.futures.process",
    # codecs of base_library.zip no Linux locale or input of the runtime uses: the CJK ones
    # (dead without the _codecs_* above), EBCDIC, Mac and Windows-only code pages
    *(f"encodings.{c}" for c in CJK_CODECS),
    *(f"encodings.{c}" for c in RARE_CODECS),
    "encodings.idna",
    "encodings.punycode",
)
#: What an app accepting packs needs of ``STDLIB_UNUSED``: filelock's settings import decimal.
UPDATES_KEEPS = ("decimal", "_decimal")
#: What an app fetching packs over https needs of ``STDLIB_UNUSED``.
TLS_KEEPS = (
    "unicodedata",
    "stringprep",
    "urllib.request",
    "urllib.error",
    "urllib.response",
    "http",
    "email",
    "ftplib",
    "mimetypes",
    "netrc",
    "nturl2path",
    "quopri",
    "socket",
    "_socket",
    "encodings.idna",
    "encodings.punycode",
)
#: X client libraries the built-in window loads from the system instead of the bundle (by
#: their name in the bundle): Tk's libX11 already needs the system's libxcb, which
#: PyInstaller never ships, and Xft draws with the system's fonts through its fontconfig
#: configuration, so a machine that can show the window has them all. 1.7 MB of the
#: onefile. libXft and libXss (less common, 60 kB) stay bundled. Without them ``import
#: tkinter`` fails and the window says in one line that Tk is not available.
X_SYSTEM_LIBRARIES = (
    "libX11.so.6",
    "libXext.so.6",
    "libXrender.so.1",
    "libXau.so.6",
    "libXdmcp.so.6",
    "libbsd.so.0",
    "libmd.so.0",
    "libfontconfig.so.1",
    "libfreetype.so.6",
    "libpng16.so.16",
    "libbrotlicommon.so.1",
    "libbrotlidec.so.1",
    "libexpat.so.1",
)
#: The C++ runtime the built-in app loads from the system instead of the bundle: numpy's
#: core needs libstdc++ (and it libgcc_s), which numpy's own wheel never carries (the
#: manylinux policy counts them as the system's), so a machine that can install numpy has
#: them; Debian's apt itself depends on them. 2.2 MB to unpack at every onefile start,
#: 0.8 MB of the onefile; a bundled libstdc++ older than the system's also breaks the
#: graphics drivers that load the newer one.
CXX_SYSTEM_LIBRARIES = ("libstdc++.so.6", "libgcc_s.so.1")
#: Tcl/Tk script folders and files the window never reads (strace of the frozen window):
#: Tcl's packages in ``tcl8/`` (PyInstaller collects them flat, where ``package require``
#: does not look; Tk falls back to its own msgcat), its and Tk's message catalogues (read
#: only through that msgcat), Tk's demo images, the C sources, and every encoding file but
#: ``TCL_ENCODINGS``: Tcl has utf-8 and iso8859-1 built in, and Tk draws with Xft in UTF-8.
#: 240 of the 333 files Tk adds, which a onefile unpacks at every start.
TK_DATA_UNUSED = (
    "_tcl_data/tcl8/",
    "_tcl_data/msgs/",
    "_tcl_data/http1.0/",
    "_tcl_data/opt0.4/",
    "_tcl_data/tzdata/",
    "_tcl_data/encoding/",
    "_tcl_data/tclAppInit.c",
    # ``clock format``'s script needs msgcat (see above); safe interpreters are never made
    "_tcl_data/clock.tcl",
    "_tcl_data/safe.tcl",
    "_tk_data/msgs/",
    "_tk_data/images/",
    "_tk_data/demos/",
    "_tk_data/tkAppInit.c",
)
#: Encoding files kept for a machine whose locale is not UTF-8 (the common single-byte ones).
TCL_ENCODINGS = ("ascii", "cp1252", "iso8859-15")

#: Environment variables passed through to PyInstaller; everything else is dropped
#: so that a build does not depend on the caller's shell (PYTHONPATH, PYTHONSTARTUP...).
_BUILD_ENV_PASSTHROUGH = (
    "PATH",
    "HOME",
    "TMPDIR",
    "SOURCE_DATE_EPOCH",
    "PYINSTALLER_CONFIG_DIR",
    "LD_LIBRARY_PATH",
    "CC",
    "SYSTEMROOT",
    "WINDIR",
    "TEMP",
    "TMP",
)


@dataclass(frozen=True)
class Application:
    """The release engineer's own application, as the spec's ``[app]`` names it: frozen in
    place of the built-in one, with the model as the same payload behind the runtime API."""

    entry: Path | str  # a script, or "package.module:function"
    sources: tuple[Path, ...] = ()
    datas: tuple[tuple[Path, str], ...] = ()
    hidden_imports: tuple[str, ...] = ()
    allow_imports: tuple[str, ...] = ()

    @property
    def roots(self) -> tuple[Path, ...]:
        """Folders holding the application's own code (its imports are refused from here)."""
        script = (self.entry.parent,) if isinstance(self.entry, Path) else ()
        return (*self.sources, *script)

    def launcher(self, work_dir: Path) -> Path:
        """The script PyInstaller freezes: the entry script, or two lines calling the entry
        function (its return value is the exit code, as a console script's is)."""
        if isinstance(self.entry, Path):
            return self.entry
        module, function = self.entry.split(":")
        path = work_dir / "entry" / f"{function}_launcher.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"from {module} import {function}\n\nraise SystemExit({function}())\n")
        return path

    @classmethod
    def from_spec(cls, spec: Any) -> Application | None:
        """The spec's application, or None for the built-in one (no ``[app] entry``)."""
        app = spec.app
        if app.entry is None:
            return None
        return cls(
            entry=app.entry,
            sources=tuple(app.sources),
            datas=tuple((d.src, d.dest) for d in app.datas),
            hidden_imports=tuple(app.hidden_imports),
            allow_imports=tuple(spec.build.allow_imports),
        )


@dataclass(frozen=True)
class FrozenApp:
    """Where the frozen binaries of one build are, inside the caller's work folder."""

    name: str
    backend: str
    onedir: Path | None  # folder containing the onedir executable (executable = onedir / name)
    onefile: Path | None  # the onefile executable


def require_pyinstaller() -> None:
    """Fail early, with the fix, when PyInstaller is missing: freezing is the last, slow stage."""
    if importlib.util.find_spec("PyInstaller") is None:
        raise ToolchainError(
            f"PyInstaller is not installed for {sys.executable}: install it with "
            f"`{sys.executable} -m pip install 'pyinstaller>=6.20,<7'`"
        )
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        version = dist_version("pyinstaller")
    except PackageNotFoundError:  # importable but without metadata: trust it
        return
    if version.split(".")[0] != "6":
        raise ToolchainError(
            f"PyInstaller {version} is installed; mlbundle needs 6.x: "
            f"`{sys.executable} -m pip install 'pyinstaller>=6.20,<7'`"
        )


def freeze(
    *,
    name: str,
    payload_dir: Path,
    backend: str,
    aot_extension: Path | None,
    modes: Sequence[str],
    work_dir: Path,
    progress: Callable[[str], None] | None = None,
    entry: Path | None = None,
    hiddenimports: Sequence[str] = (),
    application: Application | None = None,
    console: bool = True,
) -> FrozenApp:
    """Freeze the runtime app with ``payload_dir`` as its ``mlbundle_payload`` package.

    Outputs land in ``work_dir/dist/onedir/<name>/`` and ``work_dir/dist/onefile/<name>``;
    the spec, PyInstaller's work folder and ``pyinstaller.log`` stay in ``work_dir`` for
    inspection. ``entry`` replaces ``dist_templates/launcher.py`` (tests freeze a tiny
    script with it). Raises FreezeError when PyInstaller fails or an aot bundle contains
    a module it must not ship. ``hiddenimports`` (passthrough only) are the modules the
    model's pickles name (``bundler.pickle_globals``); each must end up in the bundle.
    ``application``: the release engineer's own application, frozen instead of the
    built-in one; an import of what the backend must not ship raises ImportRefusedError
    with the chain of imports from the application's code. ``console=False``: windowed.
    """
    say = progress or (lambda _msg: None)
    _check_args(name, payload_dir, backend, aot_extension, modes)
    require_pyinstaller()
    modes = [m for m in MODES if m in modes]  # canonical order, no duplicates
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    dist_dir, build_dir = work_dir / "dist", work_dir / "build"
    # Fresh folders every time: PyInstaller's up-to-date checks compare mtimes
    # and TOCs, and a stale payload in a bundle is worse than a slower build.
    for folder in (dist_dir, build_dir):
        shutil.rmtree(folder, ignore_errors=True)

    if application is not None:
        allowed = application.allow_imports
        refused = source_imports(application, [m for m in _forbidden(backend) if m not in allowed])
        if refused:
            raise _refused_error(refused)
    say("staging the payload package")
    import_root = _stage_payload_package(Path(payload_dir).resolve(), work_dir / "payload_root")
    if aot_extension is not None:
        aot_extension = Path(aot_extension).resolve()  # stripped when compiled (backends.aot)
    spec_path = work_dir / f"{name}.spec"
    spec_path.write_text(
        render_spec(
            name=name,
            backend=backend,
            modes=modes,
            payload_dir=Path(payload_dir).resolve(),
            payload_import_root=import_root,
            aot_extension=aot_extension,
            entry=(
                application.launcher(work_dir)
                if application is not None
                else Path(entry).resolve()
                if entry is not None
                else LAUNCHER
            ),
            hiddenimports=hiddenimports,
            application=application,
            console=console,
            refusals=work_dir / REFUSALS_FILE,
            hookspath=(
                [write_runtime_hooks(work_dir / "hooks", runtime_excludes(application, backend))]
                if application is not None
                else []
            ),
        ),
        encoding="utf-8",
    )
    say(f"freezing {name} ({backend}; {', '.join(modes)}) with PyInstaller")
    log_path = work_dir / "pyinstaller.log"
    (work_dir / REFUSALS_FILE).unlink(missing_ok=True)
    try:
        _run_pyinstaller(spec_path, dist_dir, build_dir, log_path, say)
    except FreezeError:
        if (work_dir / REFUSALS_FILE).is_file():
            raise _refusal(work_dir / REFUSALS_FILE) from None
        raise

    onedir = dist_dir / "onedir" / name if "onedir" in modes else None
    onefile = dist_dir / "onefile" / name if "onefile" in modes else None
    for exe in (None if onedir is None else onedir / name, onefile):
        if exe is not None and not (exe.is_file() and os.access(exe, os.X_OK)):
            raise FreezeError(f"PyInstaller finished but {exe} is missing; see {log_path}")
    forbidden = _forbidden(backend)
    if application is not None:
        forbidden = tuple(m for m in forbidden if m not in application.allow_imports)
    for exe in (None if onedir is None else onedir / name, onefile):
        if exe is not None:
            _check_forbidden(exe, forbidden)
            _check_collected(exe, _collected(backend, hiddenimports))
            _check_updates(exe, updates_needs(Path(payload_dir)), application)
            if application is None and entry is None and _opens_window():
                _check_window(exe)
    return FrozenApp(name=name, backend=backend, onedir=onedir, onefile=onefile)


def render_spec(
    *,
    name: str,
    backend: str,
    modes: Sequence[str],
    payload_dir: Path,
    payload_import_root: Path,
    aot_extension: Path | None,
    entry: Path = LAUNCHER,
    strip_runtime: bool = True,
    hiddenimports: Sequence[str] = (),
    application: Application | None = None,
    console: bool = True,
    refusals: Path | None = None,
    hookspath: Sequence[Path] = (),
) -> str:
    """Render the spec text; separate from ``freeze`` so tests can check it without PyInstaller."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    # repr() gives valid Python literals for the strings, lists and tuples used here;
    # pylist puts one item per line so a rendered spec diffs and reads well.
    env.filters["py"] = repr
    env.filters["pylist"] = _pylist
    app_root = _app_root()
    datas = payload_datas(payload_dir)
    # what the backend ships, trims and forbids (mlbundle_runtime.passthrough, which
    # mlbundle_runtime.bundle imports lazily, is left out of the bundles that score a plan)
    files = get_backend(backend).freeze_files(
        compiled=aot_extension,
        app_root=app_root,
        model_imports=tuple(hiddenimports),
        third_party=THIRD_PARTY_EXCLUDES,
    )
    binaries = list(files.binaries)
    datas.extend(files.datas)
    hiddenimports = [PAYLOAD_PACKAGE, *files.hiddenimports]
    forbidden, trims, never = files.forbidden, files.trims, list(files.never)
    # A trim the app itself imports is kept: the app knows better than this list.
    # (app/mlbundle_runtime/passthrough.py's lazy imports are decided above, by the backend.)
    used = app_imports(app_root / "mlbundle_runtime", skip=("passthrough.py",))
    pathex = [str(app_root), str(payload_import_root)]
    refuse: dict[str, Any] | None = None
    if application is not None:
        # the application's own imports are frozen as PyInstaller finds them; what the
        # backend forbids is left for the analysis to see, and refused with its chain
        for root in application.roots:
            used |= app_imports(root)
        pathex = [*map(str, application.roots), *pathex]
        datas.extend((str(src), dest) for src, dest in application.datas)
        hiddenimports += list(application.hidden_imports)
        allowed = set(application.allow_imports)
        refuse = {
            "modules": sorted(set(forbidden) - allowed),
            "roots": [str(r) for r in application.roots],
            "runtime": [_RUNTIME_PACKAGE, PAYLOAD_PACKAGE],
            "report": str(refusals or "refused.json"),
            "exit": REFUSED_EXIT,
        }
        # Not excluded (an excluded module shows no importer), except from the runtime's
        # own lazy imports (numba in backend.py), which hooks in ``hookspath`` exclude.
        forbidden = ()
        trims = tuple(m for m in trims if m not in allowed)
    kept = [m for m in trims if not any(u == m or u.startswith(m + ".") for u in used)]
    updates = updates_needs(payload_dir)
    if updates is None:
        never += updates_excludes(application)
    else:
        hiddenimports += list(updates)
        kept = [m for m in kept if m not in updates]
        never += updates_excludes(application, UPDATES_TRIMS)
    datas_dropped: list[str] = []
    binaries_dropped: list[str] = []
    if application is None and {"numba", "sklearn"} <= set(files.forbidden):
        keeps = set() if updates is None else set(UPDATES_KEEPS)
        if updates is not None and set(TLS_MODULES) <= set(updates):
            keeps |= set(TLS_KEEPS)
        if reads_text(payload_dir):
            keeps |= set(TEXT_KEEPS)
        never += [*NUMPY_UNUSED, *(m for m in STDLIB_UNUSED if m not in keeps)]
    if application is None:
        datas_dropped = list(TK_DATA_UNUSED)
        binaries_dropped = [*X_SYSTEM_LIBRARIES, *CXX_SYSTEM_LIBRARIES]
    excludes = sorted(set(forbidden) | set(kept) | set(never))
    return env.get_template(SPEC_TEMPLATE).render(
        name=name,
        backend=backend,
        modes=list(modes),
        strip_runtime=strip_runtime,
        console=console,
        entry=str(entry),
        pathex=pathex,
        binaries=binaries,
        datas=datas,
        hiddenimports=hiddenimports,
        excludes=excludes,
        refuse=refuse,
        selftest_hook=str(SELFTEST_HOOK),
        hookspath=[str(p) for p in hookspath],
        strip_extra=list(UPDATES_STRIP) if updates is not None else [],
        datas_dropped=datas_dropped,
        binaries_dropped=binaries_dropped,
        tcl_encodings=[f"_tcl_data/encoding/{e}.enc" for e in TCL_ENCODINGS],
    )


#: What an app with a text input needs of ``STDLIB_UNUSED``: accent stripping normalises
#: with ``unicodedata`` (a model pack of the same app may strip accents where its first
#: model did not, so any text input keeps it).
TEXT_KEEPS = ("unicodedata",)


def reads_text(payload_dir: Path) -> bool:
    """Whether the payload's plan has a text input (``mlbundle_runtime.text`` runs)."""
    for path in sorted(Path(payload_dir).rglob("plan.json")):
        try:
            inputs = json.loads(path.read_text(encoding="utf-8")).get("inputs") or []
        except (ValueError, AttributeError, OSError):
            continue  # not the plan: the payload stage has validated the real one
        if any(isinstance(i, dict) and i.get("kind") == "text" for i in inputs):
            return True
    return False


def updates_needs(payload_dir: Path) -> tuple[str, ...] | None:
    """The modules an app accepting model packs must ship (TLS too when its packs come from
    an https URL), or None when its payload has no ``updates.json`` (``[updates]``)."""
    path = Path(payload_dir) / UPDATES_FILE
    if not path.is_file():
        return None
    try:
        source = json.loads(path.read_text(encoding="utf-8")).get("source")
    except (ValueError, AttributeError) as exc:
        raise FreezeError(f"{path} is not the JSON object bundle.build writes: {exc}") from None
    https = isinstance(source, str) and source.startswith("https://")
    return (*UPDATES_MODULES, *(TLS_MODULES if https else ()))


def updates_excludes(
    application: Application | None, modules: Sequence[str] = UPDATES_EXCLUDES
) -> tuple[str, ...]:
    """What an app leaves out of ``modules`` (by default what an app without ``[updates]``
    does not ship: the pack checker's), except what the release engineer's own code
    imports (it may use platformdirs or sqlite3 itself)."""
    theirs: set[str] = set()
    for root in application.roots if application is not None else ():
        theirs |= app_imports(root)
    return tuple(
        m for m in modules if not imports_any(theirs, (m,)) and not imports_any({m}, tuple(theirs))
    )


def _check_updates(
    executable: Path, needs: tuple[str, ...] | None, application: Application | None
) -> None:
    """Refuse an app that accepts packs but could not check one (PyNaCl or its cffi
    backend missing), or fetch one from its https source (no ``_ssl``); and one without
    ``[updates]`` that carries them anyway (a size it need not pay)."""
    import importlib.machinery

    tops = set()
    for entry in bundled_names(executable):
        name = entry.replace("\\", "/")
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            name = name.removesuffix(suffix)
        tops.add(name.rsplit("/", 1)[-1] if "lib-dynload/" in name else name)
        tops.add(name.replace("/", ".").split(".")[0])
    if needs is None:
        extra = sorted(tops & set(updates_excludes(application)))
        if extra:
            raise FreezeError(
                f"{executable} ships {', '.join(extra)} without [updates] in its spec; "
                "the runtime must import them only when the payload has updates.json"
            )
        return
    missing = [m for m in needs if "." not in m and m not in tops]
    if missing:
        raise FreezeError(
            f"{executable} lacks {', '.join(missing)}, which an app with [updates] needs to "
            "check model packs (and, for an https source, to download them)"
        )


def source_imports(application: Application, forbidden: Sequence[str]) -> dict[str, list[str]]:
    """Forbidden modules the application's own code imports, each with its chain of imports
    from the entry script, read from the source in milliseconds: the common case refused
    before PyInstaller spends a minute analysing scikit-learn (imports through a
    third-party package are found by the analysis itself, in the spec)."""
    roots = application.roots
    if isinstance(application.entry, Path):
        start = [(application.entry.name, application.entry)]
    else:
        start = [(application.entry.split(":")[0], None)]

    def locate(module: str) -> Path | None:
        parts = module.split(".")
        for root in roots:
            for candidate in (
                root.joinpath(*parts, "__init__.py"),
                root.joinpath(*parts[:-1], parts[-1] + ".py"),
            ):
                if candidate.is_file():
                    return candidate
        return None

    found: dict[str, list[str]] = {}
    parents: dict[str, str | None] = {name: None for name, _ in start}
    queue = [(name, path or locate(name)) for name, path in start]
    while queue:
        name, path = queue.pop(0)
        if path is None:
            continue
        for imported in sorted(_imports_of(path, name)):
            top = imported.split(".")[0]
            if top in forbidden and top not in found:
                chain, at = [imported], name
                while at is not None:
                    chain.append(at)
                    at = parents[at]
                found[top] = chain[::-1]
            elif imported not in parents and (where := locate(imported)) is not None:
                parents[imported] = name
                queue.append((imported, where))
    return found


def _imports_of(path: Path, module: str) -> set[str]:
    """The modules one file imports (relative imports resolved against ``module``)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, OSError) as exc:
        raise FreezeError(f"cannot read the application's {path}: {exc}") from None
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            if base:
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def runtime_excludes(application: Application, backend: str) -> tuple[str, ...]:
    """What the runtime's own imports must not pull into ``application``'s bundle: what the
    backend forbids and, unless the application's code imports the built-in window (or the
    CLI that opens it), Tk: the self-test hook imports the CLI, and the CLI the window."""
    theirs: set[str] = set()
    for root in application.roots:
        theirs |= app_imports(root)
    window = imports_any(theirs, WINDOW_IMPORTERS)
    return (*_forbidden(backend), *(() if window else WINDOW_TOOLKIT))


def write_runtime_hooks(folder: Path, excluded: Sequence[str]) -> Path:
    """PyInstaller hooks (data only) keeping the runtime's own lazy imports of ``excluded``
    (numba in the kernel loader, scikit-learn in the passthrough scorer) out of a bundle
    whose application's imports are analysed without excluding them."""
    folder.mkdir(parents=True, exist_ok=True)
    package = _app_root() / _RUNTIME_PACKAGE
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        text = f"# generated by bundler.freeze\nexcludedimports = {sorted(excluded)!r}\n"
        (folder / f"hook-{module}.py").write_text(text, encoding="utf-8")
    return folder


def _refused_error(found: dict[str, list[str]]) -> ImportRefusedError:
    chains = "; ".join(" -> ".join(chain) for chain in found.values())
    names = ", ".join(sorted(found))
    return ImportRefusedError(
        f"the application imports {names}, which this bundle does not ship (the build "
        f"side: the bundle would be several times larger and slower to start): {chains}. "
        f"Remove the import, or list {', '.join(map(repr, sorted(found)))} in "
        "[build] allow_imports"
    )


def _refusal(report: Path) -> ImportRefusedError:
    """The error for the forbidden modules the analysis found, each with its import chain."""
    return _refused_error(json.loads(report.read_text(encoding="utf-8")))


def payload_datas(payload_dir: Path) -> list[tuple[str, str]]:
    """Every payload file as a PyInstaller (source, dest-folder) pair, in a stable order.

    ``__init__.py`` is collected too: PyInstaller's resource reader lists only
    files on disk, so without it ``files(PAYLOAD_PACKAGE).iterdir()`` would
    differ between the source tree and the bundle.
    """
    out = []
    for path in sorted(payload_dir.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        rel_parent = path.relative_to(payload_dir).parent
        out.append((str(path), str(Path(PAYLOAD_PACKAGE) / rel_parent)))
    return out


def app_imports(app_dir: Path, skip: Sequence[str] = ()) -> set[str]:
    """Every module name ``import``-ed anywhere in the app package (lazy imports included),
    except in the files named in ``skip``."""
    names: set[str] = set()
    for path in sorted(app_dir.rglob("*.py")):
        if path.name in skip:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            raise FreezeError(f"cannot parse {path}: {exc}") from exc
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def imports_any(imported: set[str], modules: Sequence[str]) -> bool:
    """Whether ``imported`` names one of ``modules`` or a submodule of one."""
    return any(u == m or u.startswith(m + ".") for u in imported for m in modules)


def bundled_names(executable: Path) -> list[str]:
    """Names inside a frozen executable's archive (PYZ modules, binaries, data) and,
    for onedir, the files under ``_internal``: what actually ships, for audits and tests."""
    from PyInstaller.archive.readers import pkg_archive_contents

    names = list(pkg_archive_contents(str(executable), recursive=True))
    internal = executable.parent / "_internal"
    if internal.is_dir():
        names += [p.relative_to(internal).as_posix() for p in sorted(internal.rglob("*"))]
    return names


def run_frozen(
    executable: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run a frozen binary as a user would, with the source tree out of reach.

    The environment holds only PATH=/usr/bin:/bin, a throwaway HOME and TMPDIR
    (onefile unpacks there) and a UTF-8 locale; no PYTHONPATH, no venv; the
    working directory is an empty temp folder. A passing self-test therefore
    shows the bundle is self-contained. Output is captured as text. Raises
    FreezeError when the binary does not finish within ``timeout`` seconds.
    """
    executable = Path(executable).resolve()
    with tempfile.TemporaryDirectory(prefix="mlbundle-run-") as tmp:
        home, tmpdir, cwd = Path(tmp, "home"), Path(tmp, "tmp"), Path(tmp, "cwd")
        for folder in (home, tmpdir, cwd):
            folder.mkdir()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "TMPDIR": str(tmpdir),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            **(env or {}),
        }
        try:
            return subprocess.run(
                [str(executable), *args],
                env=env,
                cwd=cwd,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise FreezeError(
                f"{executable.name} {' '.join(args)} did not finish within {timeout:g} s"
            ) from exc
        except OSError as exc:
            raise FreezeError(f"cannot run {executable}: {exc}") from exc


# -- internals -------------------------------------------------------------------------


def _check_args(
    name: str,
    payload_dir: Path,
    backend: str,
    aot_extension: Path | None,
    modes: Sequence[str],
) -> None:
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise FreezeError(f"invalid app name {name!r}: use a plain file name such as 'penguins'")
    if backend not in BACKEND_NAMES:
        raise FreezeError(f"unknown backend {backend!r}; valid: {', '.join(BACKEND_NAMES)}")
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise FreezeError(f"invalid modes {list(modes)!r}; choose one or more of {MODES}")
    if not Path(payload_dir).is_dir():
        raise FreezeError(f"payload folder {payload_dir} does not exist")
    get_backend(backend).check_compiled(aot_extension)


def _forbidden(backend: str) -> tuple[str, ...]:
    """What a bundle of ``backend`` must never ship."""
    return get_backend(backend).forbidden


def _collected(backend: str, model_imports: Sequence[str]) -> tuple[str, ...]:
    """The modules a bundle of ``backend`` must be found to contain (passthrough: the
    modules the model's pickles name)."""
    return (
        get_backend(backend)
        .freeze_files(
            compiled=None, app_root=_app_root(), model_imports=tuple(model_imports), third_party=()
        )
        .collected
    )


def _app_root() -> Path:
    """Folder holding the ``mlbundle_runtime`` package (app/ in the repo, or site-packages)."""
    spec = importlib.util.find_spec("mlbundle_runtime")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve().parent
    # the package imported above, wherever it was installed from
    return Path(_runtime.__file__).resolve().parents[1]


def _pylist(items: Sequence[object], indent: int = 8) -> str:
    if not items:
        return "[]"
    pad = " " * indent
    return "[\n" + "".join(f"{pad}{item!r},\n" for item in items) + pad[:-4] + "]"


def _stage_payload_package(payload_dir: Path, root: Path) -> Path:
    """Give PyInstaller an importable ``mlbundle_payload`` whatever the payload folder is called.

    Only the package's ``__init__.py`` is staged (an empty one if the payload has
    none); the data files are collected straight from ``payload_dir``.
    """
    shutil.rmtree(root, ignore_errors=True)
    package = root / PAYLOAD_PACKAGE
    package.mkdir(parents=True)
    init = payload_dir / "__init__.py"
    if init.is_file():
        shutil.copy2(init, package / "__init__.py")
    else:
        (package / "__init__.py").write_text('"""mlbundle payload (data only)."""\n')
    return root


def _build_env() -> dict[str, str]:
    """A small, explicit environment: same inputs, same bundle, whatever the caller's shell."""
    env = {k: os.environ[k] for k in _BUILD_ENV_PASSTHROUGH if k in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(
        {
            "PYTHONHASHSEED": "0",
            "PYTHONUTF8": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            # the PYZ's modules at zlib's best (PyInstaller's default for them is 6; the
            # archive's other entries are already 9): 30 kB, inflated no slower
            "PYINSTALLER_ZLIB_COMPRESSION_LEVEL": "9",
        }
    )
    return env


_MILESTONES = ("Analyzing ", "Building PYZ", "Building PKG", "Building EXE", "Building COLLECT")


def _run_pyinstaller(
    spec: Path, dist_dir: Path, build_dir: Path, log_path: Path, say: Callable[[str], None]
) -> None:
    cmd = [
        sys.executable,
        "-m",
        "PyInstaller",
        "--noconfirm",
        "--log-level",
        "INFO",
        "--distpath",
        str(dist_dir),
        "--workpath",
        str(build_dir),
        str(spec),
    ]
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.Popen(
                cmd,
                cwd=spec.parent,
                env=_build_env(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                encoding="utf-8",
                errors="replace",
            )
        except OSError as exc:
            raise ToolchainError(f"cannot start PyInstaller ({sys.executable}): {exc}") from exc
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            msg = line.split("INFO: ", 1)[-1].strip()
            if msg.startswith(_MILESTONES) and "completed" not in msg:
                say(msg)
        code = proc.wait()
    if code != 0:
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
        raise FreezeError(
            f"PyInstaller failed (exit {code}); full log: {log_path}\n" + "\n".join(tail)
        )


def _check_forbidden(executable: Path, forbidden: Sequence[str]) -> None:
    """Refuse a bundle shipping the build side (or, for aot, numba): large and slow for nothing."""
    found = sorted(
        {
            top
            for entry in bundled_names(executable)
            for top in [entry.replace("\\", "/").split("/")[0].split(".")[0]]
            if top in forbidden
        }
    )
    if found:
        raise FreezeError(
            f"{executable} ships {', '.join(found)}, which this runtime must not carry; "
            "check what app/ imports (PyInstaller follows lazy imports too)"
        )


def _opens_window() -> bool:
    """Whether the built-in application (the runtime's CLI) opens the window."""
    return WINDOW_MODULE in app_imports(_app_root() / _RUNTIME_PACKAGE, skip=("window.py",))


def _check_window(executable: Path) -> None:
    """Refuse a built-in application without Tk: its window would not open on a double-click.

    PyInstaller collects tkinter, ``_tkinter`` and Tcl/Tk's scripts only when the building
    Python can import tkinter; otherwise it notes tkinter as missing and builds anyway."""
    names = [n.replace("\\", "/") for n in bundled_names(executable)]
    have = {
        "tkinter": "tkinter" in names,
        "_tkinter": any(n.rsplit("/", 1)[-1].startswith("_tkinter.") for n in names),
        "Tcl/Tk's scripts": any(n.startswith(("_tcl_data/", "_tk_data/")) for n in names),
    }
    missing = [what for what, found in have.items() if not found]
    if missing:
        raise FreezeError(
            f"{executable} lacks {', '.join(missing)}: the application's window could not "
            f"open. Build with a Python whose `import tkinter` works ({sys.executable}: on "
            "Debian, apt-get install tk8.6 python3-tk, as scripts/setup does; a Python built "
            "from source needs tk-dev when it is compiled)"
        )


def _check_collected(executable: Path, modules: Sequence[str]) -> None:
    """Refuse a passthrough bundle that lacks a module its model's pickles name.

    Unpickling would fail with ``ModuleNotFoundError`` on the user's machine, so
    every hidden import outside the standard library must be in the archive (as a
    module, a package, or an extension module's file).
    """
    import importlib.machinery

    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
    present: set[str] = set()
    for entry in bundled_names(executable):
        name = entry.replace("\\", "/")
        for suffix in suffixes:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        present.add(name.replace("/", "."))
    present |= {p.rsplit(".", i)[0] for p in present for i in range(1, p.count(".") + 1)}
    missing = [
        m for m in modules if m.split(".")[0] not in sys.stdlib_module_names and m not in present
    ]
    if missing:
        raise FreezeError(
            f"{executable} lacks module(s) the model's pickle needs: {', '.join(missing)}; "
            "the app would fail with ModuleNotFoundError (see build/warn-*.txt in the "
            "PyInstaller work folder for why they were not collected)"
        )
