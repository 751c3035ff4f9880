"""Startup benchmark: mlbundle's compiled app against a naive joblib bundle, side by side.

What a user of a desktop scorer feels is launch-to-first-prediction time and
download size, so that is what this measures, for four binaries in one run:

- ours, onedir and onefile (built by ``bundle build``; passed on the command line);
- the naive baseline (``bench/naive/naive_app.py``: ``joblib.load`` + scikit-learn,
  frozen with plain PyInstaller in onedir and onefile; built here, reused when
  its outputs are newer than its inputs);
- ``python -c "import numpy"`` as the floor any numpy runtime pays.

Times come from hyperfine (``--warmup 2 --runs 15``) when it is installed and
from a round-robin median-of-N loop otherwise. Before timing, every app scores
the same record once and the outputs are compared, so a broken or different
app cannot win.

For ours it also measures, in the same run, launch to the first window (no
arguments, as a double-click starts it) on an Xvfb the bench starts itself:
to the top-level's MapNotify and to its first drawn pixels, read through
libX11; and the bytes Tk adds to the onedir and the onefile (``--no-window``
skips both). Results go to ``bench/results/startup.json`` with a description
of the machine.

Usage::

    python bench/startup.py --ours-onedir dist/penguins/onedir/penguins \\
                            --ours-onefile dist/penguins/onefile/penguins
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NAIVE_APP = ROOT / "bench" / "naive" / "naive_app.py"
ARTIFACTS = (
    ROOT / "resources" / "artifacts" / "extractor.joblib",
    ROOT / "resources" / "artifacts" / "model.joblib",
)
DEFAULT_OURS = ROOT / "dist" / "penguins"
DEFAULT_RECORD = {
    "island": "Biscoe",
    "bill_length_mm": 45.2,
    "bill_depth_mm": 14.8,
    "flipper_length_mm": 212,
    "body_mass_g": 5200,
    "sex": "female",
}
NAIVE_NAME = "naive"
#: Bump when the naive build command changes, so existing outputs are rebuilt.
NAIVE_RECIPE = "2"
#: What a user's venv for the naive app would hold: these and their dependencies.
NAIVE_REQUIREMENTS = ("scikit-learn", "joblib", "pandas", "numpy")


@dataclass
class App:
    """One command to time, with what is known about it."""

    key: str  # ours_onedir, naive_onefile, floor, ...
    label: str
    argv: list[str]
    mode: str | None = None  # onedir / onefile / None for the floor
    size_bytes: int | None = None
    output: dict[str, Any] | None = None
    times: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """Figures for the results file (seconds)."""
        out: dict[str, Any] = {"label": self.label, "mode": self.mode, "command": self.argv}
        if self.size_bytes is not None:
            out["size_bytes"] = self.size_bytes
        if self.times:
            out |= {
                "median_s": statistics.median(self.times),
                "mean_s": statistics.fmean(self.times),
                "stddev_s": statistics.stdev(self.times) if len(self.times) > 1 else 0.0,
                "min_s": min(self.times),
                "max_s": max(self.times),
                "runs": len(self.times),
                "times_s": self.times,
            }
        if self.output is not None:
            out["output"] = self.output
        return out


# -- the naive baseline -------------------------------------------------------------------

_PICKLE_MODULES = """
import pickle, sys
import joblib
seen = set()
original = pickle._Unpickler.find_class
def find_class(self, module, name):
    seen.add(module)
    return original(self, module, name)
pickle._Unpickler.find_class = find_class  # joblib's NumpyUnpickler derives from it
for path in sys.argv[1:]:
    joblib.load(path)
print("\\n".join(sorted(seen)))
"""


def pickle_modules(paths: tuple[Path, ...]) -> list[str]:
    """Modules the pickles name, as hidden imports.

    ``naive_app.py`` never imports scikit-learn itself (joblib does, while
    unpickling), so PyInstaller cannot see those imports; without them the
    frozen app dies with ``ModuleNotFoundError: sklearn...`` at ``joblib.load``.
    Asking the pickles is the exact, model-independent answer.
    """
    proc = subprocess.run(
        [sys.executable, "-c", _PICKLE_MODULES, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"cannot load the example artifacts:\n{proc.stderr[-2000:]}")
    stdlib = sys.stdlib_module_names
    mods = [m for m in proc.stdout.split() if m.split(".")[0] not in stdlib]
    return sorted(set(mods))


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def foreign_modules(
    roots: tuple[str, ...] = NAIVE_REQUIREMENTS,
) -> tuple[list[str], dict[str, str]]:
    """Top-level modules installed here that the naive app's own venv would not have,
    and the versions of the packages it would have.

    The bench runs in mlbundle's build venv, which also holds numba, llvmlite,
    PyInstaller, jinja2 and so on. PyInstaller follows lazy imports (pandas
    reaches numba through its optional engines), so a naive build here would
    ship ~180 MB of llvmlite that a real scikit-learn user's bundle would not.
    Excluding everything outside the dependency closure of ``roots`` freezes
    the naive app as if from a venv with only those packages: a fair baseline.
    """
    from importlib.metadata import PackageNotFoundError, packages_distributions, requires, version

    from packaging.requirements import Requirement

    closure: dict[str, str] = {}
    stack = list(roots)
    while stack:
        name = _canonical(stack.pop())
        if name in closure:
            continue
        try:
            closure[name] = version(name)
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in reqs:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                stack.append(req.name)
    foreign = sorted(
        module
        for module, dists in packages_distributions().items()
        if module.isidentifier() and not any(_canonical(d) in closure for d in dists)
    )
    return foreign, dict(sorted(closure.items()))


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def _clean_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "TMPDIR", "SOURCE_DATE_EPOCH", "LD_LIBRARY_PATH")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env |= {"PYTHONHASHSEED": "0", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    return env


def build_naive(work: Path, *, force: bool) -> tuple[Path, Path, dict[str, Any]]:
    """Freeze the naive app in onedir and onefile; reuse outputs that are up to date."""
    missing = [str(p) for p in ARTIFACTS if not p.is_file()]
    if missing:
        raise SystemExit(f"missing example artifacts {missing}: run `python resources/train.py`")
    import PyInstaller

    base = work / "naive"
    onedir_exe = base / "dist" / "onedir" / NAIVE_NAME / NAIVE_NAME
    onefile_exe = base / "dist" / "onefile" / NAIVE_NAME
    stamp_file = base / "stamp.json"
    inputs = [NAIVE_APP, *ARTIFACTS]
    hidden = pickle_modules(ARTIFACTS)
    excluded, closure = foreign_modules()
    # The recipe: what would change the build besides the input files. The
    # exclusion list is left out on purpose: installing an unrelated package in
    # the build venv adds a name to it without changing what gets frozen.
    recipe = {
        "naive_recipe": NAIVE_RECIPE,
        "pyinstaller": PyInstaller.__version__,
        "python": sys.version,
        "machine": platform.machine(),
        "hidden_imports": hidden,
        "packages": closure,
    }
    digest = _digest(inputs)
    if not force and stamp_file.is_file() and onedir_exe.is_file() and onefile_exe.is_file():
        old = json.loads(stamp_file.read_text())
        built = min(onedir_exe.stat().st_mtime, onefile_exe.stat().st_mtime)
        # "Newer than its inputs", judged by content as well as by mtime, so a
        # retrain that rewrites byte-identical artifacts does not cost minutes.
        fresh = old.get("inputs_sha256") == digest or all(p.stat().st_mtime < built for p in inputs)
        if old.get("recipe") == recipe and fresh:
            return onedir_exe, onefile_exe, {**old, "reused": True}

    base.mkdir(parents=True, exist_ok=True)
    log_path = base / "pyinstaller.log"
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        for mode in ("onedir", "onefile"):
            cmd = [
                sys.executable,
                "-m",
                "PyInstaller",
                "--noconfirm",
                f"--{mode}",
                "--name",
                NAIVE_NAME,
                "--distpath",
                str(base / "dist" / mode),
                # one workpath and spec name: the second mode reuses the first's Analysis
                "--workpath",
                str(base / "build"),
                "--specpath",
                str(base),
                *[f"--add-data={p}{os.pathsep}." for p in ARTIFACTS],
                *[f"--hidden-import={m}" for m in hidden],
                *[f"--exclude-module={m}" for m in excluded],
                str(NAIVE_APP),
            ]
            print(f"building the naive baseline ({mode}); this takes minutes", file=sys.stderr)
            log.write("$ " + shlex.join(cmd) + "\n")
            log.flush()
            proc = subprocess.run(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=_clean_env(), cwd=base, check=False
            )
            if proc.returncode != 0:
                tail = log_path.read_text(encoding="utf-8").splitlines()[-20:]
                raise SystemExit(f"naive {mode} build failed; see {log_path}:\n" + "\n".join(tail))
    info = {
        "recipe": recipe,
        "inputs_sha256": digest,
        "seconds": round(time.perf_counter() - started, 1),
        "excluded_modules": excluded,
        "log": str(log_path),
    }
    stamp_file.write_text(json.dumps(info, indent=1) + "\n")
    return onedir_exe, onefile_exe, {**info, "reused": False}


# -- measuring -----------------------------------------------------------------------------


def tree_size(path: Path) -> int:
    """Bytes on disk as a user downloads them: the folder's files, or the single file."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def resolve_onedir(path: Path) -> tuple[Path, Path]:
    """(folder, executable) for a onedir argument given as the folder or the executable."""
    path = path.resolve()
    if path.is_file():
        return path.parent, path
    if not path.is_dir():
        raise SystemExit(f"{path} does not exist: build it first (`bundle build specs/...`)")
    named = path / path.name
    if named.is_file() and os.access(named, os.X_OK):
        return path, named
    exes = [p for p in path.iterdir() if p.is_file() and os.access(p, os.X_OK)]
    if len(exes) != 1:
        raise SystemExit(f"cannot tell which file in {path} is the executable: {exes}")
    return path, exes[0]


def run_env(home: Path) -> dict[str, str]:
    """What a user's shell would give a launched app, minus anything pointing at our tree."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def check_outputs(apps: list[App], scratch: Path) -> dict[str, Any]:
    """Run each app once; all must succeed and agree, or the timing means nothing."""
    env = run_env(scratch)
    for app in apps:
        proc = subprocess.run(
            app.argv, capture_output=True, text=True, env=env, cwd=scratch, timeout=300, check=False
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise SystemExit(f"{app.label} failed (exit {proc.returncode}):\n{tail}")
        if app.mode is not None:
            app.output = json.loads(proc.stdout)
    scored = [a for a in apps if a.output is not None]
    ref = scored[0].output or {}
    diffs = []
    same = True
    for app in scored[1:]:
        out = app.output or {}
        same &= out.get("prediction") == ref.get("prediction")
        probs, ref_probs = out.get("probabilities", {}), ref.get("probabilities", {})
        same &= set(probs) == set(ref_probs)
        diffs += [abs(float(probs[k]) - float(ref_probs[k])) for k in probs if k in ref_probs]
    return {"agree": bool(same), "max_probability_diff": max(diffs, default=0.0)}


def time_hyperfine(
    apps: list[App], hyperfine: str, warmup: int, runs: int, export: Path, scratch: Path
) -> str:
    """Time every app with hyperfine in one invocation (no intermediate shell: ``-N``)."""
    cmd = [hyperfine, "-N", "--warmup", str(warmup), "--runs", str(runs)]
    cmd += ["--export-json", str(export)]
    for app in apps:
        cmd += ["--command-name", app.label, shlex.join(app.argv)]
    subprocess.run(cmd, env=run_env(scratch), cwd=scratch, check=True)
    results = json.loads(export.read_text())["results"]
    for app, res in zip(apps, results, strict=True):
        app.times = [float(t) for t in res["times"]]
    version = subprocess.run([hyperfine, "--version"], capture_output=True, text=True).stdout
    return f"{version.strip()} -N --warmup {warmup} --runs {runs}"


def time_fallback(apps: list[App], warmup: int, runs: int, scratch: Path) -> str:
    """Round-robin wall-clock timing: each round runs every app once, so drift hits all alike."""
    env = run_env(scratch)

    def once(app: App) -> float:
        start = time.perf_counter()
        subprocess.run(
            app.argv,
            env=env,
            cwd=scratch,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        return time.perf_counter() - start

    for _ in range(warmup):
        for app in apps:
            once(app)
    for i in range(runs):
        print(f"round {i + 1}/{runs}", file=sys.stderr, end="\r")
        for app in apps:
            app.times.append(once(app))
    print(file=sys.stderr)
    return f"python round-robin, warmup {warmup}, runs {runs}, median reported"


def machine() -> dict[str, Any]:
    """Enough about the machine to judge whether figures from elsewhere are comparable."""
    info: dict[str, Any] = {
        "cpu_model": platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_build": platform.python_implementation() + " " + " ".join(platform.python_build()),
        "os": platform.platform(),
    }
    if hasattr(os, "getloadavg"):  # a busy machine makes every figure slower
        info["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cores = set()
        phys = core = ""
        for line in cpuinfo.read_text().splitlines():
            key, _, value = (s.strip() for s in line.partition(":"))
            if key == "model name":
                info["cpu_model"] = value
            elif key == "physical id":
                phys = value
            elif key == "core id":
                core = value
                cores.add((phys, core))
        if cores:
            info["physical_cores"] = len(cores)
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                info["os_release"] = line.split("=", 1)[1].strip('"')
    for dist in ("numpy", "scikit-learn", "pyinstaller", "joblib", "pandas"):
        try:
            from importlib.metadata import version

            info[f"{dist}_version"] = version(dist)
        except Exception:  # noqa: BLE001 - optional information
            pass
    return info


# -- the window: launch to first paint, and what Tk weighs ----------------------------------

#: Files of a bundle that are Tk's whatever else it holds (onedir paths under ``_internal``,
#: onefile archive names: the same): Tcl/Tk's scripts, the libraries and the extension.
TK_PREFIXES = ("_tcl_data/", "_tk_data/", "tcl8/")
TK_LIBRARIES = ("libtk", "libtcl")
#: Where the window appears: the Xvfb the bench starts (no window manager, so a mapped
#: top-level is at once visible).
SCREEN = "1280x800x24"


def is_tk_file(name: str) -> bool:
    """Whether a bundle's file is Tk's own (its X libraries are found by ``tk_only_libraries``)."""
    base = name.rsplit("/", 1)[-1]
    return (
        name.startswith(TK_PREFIXES)
        or base.startswith("_tkinter.")
        or (base.startswith(TK_LIBRARIES) and ".so" in base)
    )


def elf_needed(path: Path, readelf: str) -> list[str]:
    """The shared libraries ``path`` names as DT_NEEDED (``readelf -d``)."""
    out = subprocess.run(
        [readelf, "-d", str(path)], capture_output=True, text=True, check=False
    ).stdout
    return [
        line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines() if "(NEEDED)" in line
    ]


def system_libraries() -> dict[str, Path]:
    """The dynamic linker's cache: library name -> file (``ldconfig -p``), this machine's
    architecture first; empty when there is no ldconfig."""
    tool = shutil.which("ldconfig") or (
        "/sbin/ldconfig" if Path("/sbin/ldconfig").exists() else None
    )
    if tool is None:
        return {}
    out = subprocess.run([tool, "-p"], capture_output=True, text=True, check=False).stdout
    arch = "x86-64" if platform.machine() == "x86_64" else platform.machine()
    found: dict[str, Path] = {}
    for line in sorted(out.splitlines()[1:], key=lambda line: arch not in line):
        if " => " in line:
            name, path = line.strip().split(" (", 1)[0], line.rsplit(" => ", 1)[1]
            found.setdefault(name, Path(path))
    return found


def tk_only_libraries(libraries: dict[str, list[str]]) -> set[str]:
    """The shared libraries only Tk needs: reachable from ``_tkinter`` and from no other
    extension module nor libpython. ``libraries``: file name -> the names it needs (the
    bundle's, and the system's it leads to)."""

    def closure(roots: list[str]) -> set[str]:
        seen: set[str] = set()
        stack = list(roots)
        while stack:
            name = stack.pop()
            if name in seen or name not in libraries:
                continue
            seen.add(name)
            stack += libraries[name]
        return seen

    tk_roots = [n for n in libraries if n.startswith("_tkinter.")]
    others = [
        n
        for n in libraries
        if not n.startswith("_tkinter.") and (n.startswith("libpython") or not n.startswith("lib"))
    ]
    return closure(tk_roots) - closure(others) - set(tk_roots)


def tk_size(onedir: Path, onefile: Path) -> dict[str, Any]:
    """Bytes Tk adds: in the onedir, the files on disk (Tcl/Tk scripts, libtk/libtcl,
    ``_tkinter`` and the X libraries only they need) and tkinter's modules in the archive;
    in the onefile, the same entries as stored (compressed) in its archive."""
    from PyInstaller.archive.readers import CArchiveReader

    internal = onedir / "_internal"
    files = {
        p.relative_to(internal).as_posix(): p
        for p in sorted(internal.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
    readelf = shutil.which("readelf")
    extra: set[str] = set()
    if readelf:
        shared = {rel.rsplit("/", 1)[-1]: path for rel, path in files.items() if ".so" in rel}
        needs = {name: elf_needed(path, readelf) for name, path in shared.items()}
        # through the system's libraries PyInstaller leaves out (libxcb), to those it ships
        system = system_libraries()
        missing = [n for deps in needs.values() for n in deps if n not in needs]
        while missing:
            name = missing.pop()
            if name not in needs and name in system:
                needs[name] = elf_needed(system[name], readelf)
                missing += needs[name]
        extra = tk_only_libraries(needs) & set(shared)
    tk = sorted(rel for rel in files if is_tk_file(rel) or rel.rsplit("/", 1)[-1] in extra)

    def modules(exe: Path) -> int:
        archive = CArchiveReader(str(exe))
        pyz = next(n for n, e in archive.toc.items() if e[4] == "z")
        toc = archive.open_embedded_archive(pyz).toc
        return sum(
            length for name, (_, _, length) in toc.items() if name.split(".")[0] == "tkinter"
        )

    onedir_files = sum(files[rel].stat().st_size for rel in tk)
    archive = CArchiveReader(str(onefile))
    names = set(tk)
    onefile_entries = {n: e for n, e in archive.toc.items() if n in names}
    return {
        "onedir_bytes": onedir_files + modules(onedir / onedir.name),
        "onefile_bytes": sum(e[1] for e in onefile_entries.values()) + modules(onefile),
        "onedir_files": len(tk),
        "onefile_entries": len(onefile_entries),
        "shared_libraries": sorted(extra),
        "by_part_onedir": {
            part: sum(files[r].stat().st_size for r in tk if r.startswith(part))
            for part in ("_tcl_data/", "_tk_data/", "libtk", "libtcl")
        },
        "method": (
            "onedir: sizes on disk of _tcl_data/, _tk_data/, libtk/libtcl, _tkinter and the "
            "shared libraries only they need (readelf DT_NEEDED closure), plus tkinter's "
            "modules in the PYZ; onefile: the same entries' stored (compressed) sizes in its "
            "archive"
        ),
    }


def unpack_profile(onefile: Path, top: int = 12) -> dict[str, Any]:
    """What a onefile start spends before Python runs: every archive entry but the PYZ
    (read in place) is inflated and written to a temporary folder, and removed at exit.

    Counts the entries, their stored and unpacked bytes, and times inflating them all in
    this process (zlib, as the bootloader's), best of three, so the gap between the
    onefile and onedir figures can be read as bytes to inflate and files to create."""
    import zlib

    from PyInstaller.archive.readers import CArchiveReader

    archive = CArchiveReader(str(onefile))
    entries = {n: e for n, e in archive.toc.items() if e[4] not in ("z", "s", "m", "M", "o")}
    blobs = []
    with open(onefile, "rb") as fh:
        for offset, stored, _unpacked, compressed, _kind in entries.values():
            fh.seek(archive._start_offset + offset)
            blobs.append((fh.read(stored), compressed))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for blob, compressed in blobs:
            if compressed:
                zlib.decompress(blob)
        best = min(best, time.perf_counter() - started)
    largest = sorted(entries.items(), key=lambda kv: -kv[1][2])[:top]
    return {
        "entries": len(entries),
        "stored_bytes": sum(e[1] for e in entries.values()),
        "unpacked_bytes": sum(e[2] for e in entries.values()),
        "inflate_s": best,
        "largest_unpacked": {name: e[2] for name, e in largest},
        "method": (
            "entries of the onefile's archive that the bootloader extracts (all but the PYZ "
            "and the scripts); inflate_s: zlib.decompress of all of them in the bench's "
            "process, best of 3"
        ),
    }


class _XImage(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("xoffset", ctypes.c_int),
        ("format", ctypes.c_int),
        ("data", ctypes.c_void_p),
        ("byte_order", ctypes.c_int),
        ("bitmap_unit", ctypes.c_int),
        ("bitmap_bit_order", ctypes.c_int),
        ("bitmap_pad", ctypes.c_int),
        ("depth", ctypes.c_int),
        ("bytes_per_line", ctypes.c_int),
        ("bits_per_pixel", ctypes.c_int),
    ]


class _XMapEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("serial", ctypes.c_ulong),
        ("send_event", ctypes.c_int),
        ("display", ctypes.c_void_p),
        ("event", ctypes.c_ulong),
        ("window", ctypes.c_ulong),
        ("override_redirect", ctypes.c_int),
    ]


_MAP_NOTIFY = 19
_SUBSTRUCTURE_NOTIFY_MASK = 1 << 19
_Z_PIXMAP = 2
_ALL_PLANES = 2**64 - 1
_X_ERROR_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)


def uniform(data: bytes, bytes_per_pixel: int) -> bool:
    """Whether an image's pixels are all alike (a mapped window not yet drawn into)."""
    first = data[:bytes_per_pixel]
    return data == first * (len(data) // bytes_per_pixel)


class XWatch:
    """The X server's own account of a window appearing, read through libX11 (ctypes):
    the bench listens for MapNotify on the root window (the moment the top-level is
    mapped: visible, with no window manager) and then reads the window's pixels until
    they are not all the background colour (the first paint). The map is an event, read
    as it arrives (select on the X connection); the paint is looked for every 2 ms."""

    def __init__(self, display: str) -> None:
        import ctypes.util

        name = ctypes.util.find_library("X11")
        if name is None:
            raise OSError("libX11 not found")
        x = ctypes.CDLL(name)
        x.XOpenDisplay.restype = ctypes.c_void_p
        x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x.XDefaultRootWindow.restype = ctypes.c_ulong
        x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x.XSelectInput.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_long]
        x.XPending.argtypes = [ctypes.c_void_p]
        x.XConnectionNumber.argtypes = [ctypes.c_void_p]
        x.XNextEvent.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        x.XFlush.argtypes = [ctypes.c_void_p]
        x.XSync.argtypes = [ctypes.c_void_p, ctypes.c_int]
        x.XFetchName.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_char_p)]
        x.XFree.argtypes = [ctypes.c_void_p]
        x.XGetGeometry.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(ctypes.c_ulong),
            *[ctypes.POINTER(ctypes.c_int)] * 2,
            *[ctypes.POINTER(ctypes.c_uint)] * 4,
        ]
        x.XGetImage.restype = ctypes.POINTER(_XImage)
        x.XGetImage.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_ulong,
            ctypes.c_int,
        ]
        x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        # a window gone between two requests is an X error: ignore it, do not exit
        self._handler = _X_ERROR_HANDLER(lambda _d, _e: 0)
        x.XSetErrorHandler(self._handler)
        self.x = x
        self.dpy = x.XOpenDisplay(display.encode())
        if not self.dpy:
            raise OSError(f"cannot open display {display}")
        self.root = x.XDefaultRootWindow(self.dpy)
        x.XSelectInput(self.dpy, self.root, _SUBSTRUCTURE_NOTIFY_MASK)
        x.XSync(self.dpy, 0)
        self.fd = x.XConnectionNumber(self.dpy)
        self._event = ctypes.create_string_buffer(192)  # sizeof(XEvent)

    def close(self) -> None:
        self.x.XCloseDisplay(self.dpy)

    def drain(self) -> None:
        """Forget the events so far (the previous run's window going away)."""
        self.x.XSync(self.dpy, 0)
        while self.x.XPending(self.dpy):
            self.x.XNextEvent(self.dpy, self._event)

    def name(self, window: int) -> bytes:
        out = ctypes.c_char_p()
        if not self.x.XFetchName(self.dpy, window, ctypes.byref(out)) or not out.value:
            return b""
        value = out.value
        self.x.XFree(out)
        return value

    def wait_mapped(self, name: str, deadline: float, alive: Any) -> int | None:
        """The top-level window whose name holds ``name``, when the server maps it; None
        when ``alive()`` turns false or the deadline passes first."""
        import select

        event = _XMapEvent.from_buffer(self._event)
        while time.perf_counter() < deadline and alive():
            while self.x.XPending(self.dpy):
                self.x.XNextEvent(self.dpy, self._event)
                if (
                    event.type == _MAP_NOTIFY
                    and not event.override_redirect
                    and name.encode() in self.name(event.window)
                ):
                    return int(event.window)
            select.select([self.fd], [], [], 0.05)
        return None

    def wait_painted(self, window: int, deadline: float) -> bool:
        """Read the window's pixels until they are not all alike (something was drawn)."""
        root, pos = ctypes.c_ulong(), [ctypes.c_int() for _ in range(2)]
        dims = [ctypes.c_uint() for _ in range(4)]
        if not self.x.XGetGeometry(
            self.dpy, window, ctypes.byref(root), *map(ctypes.byref, pos), *map(ctypes.byref, dims)
        ):
            return False
        width, height = dims[0].value, dims[1].value
        while time.perf_counter() < deadline:
            image = self.x.XGetImage(self.dpy, window, 0, 0, width, height, _ALL_PLANES, _Z_PIXMAP)
            if image:
                img = image.contents
                data = ctypes.string_at(img.data, img.bytes_per_line * img.height)
                self.x.XFree(img.data)
                self.x.XFree(image)
                if not uniform(data, max(1, img.bits_per_pixel // 8)):
                    return True
            time.sleep(0.002)
        return False


@contextlib.contextmanager
def xvfb() -> Any:
    """An Xvfb server of the bench's own (``-displayfd`` picks a free number); its name."""
    exe = shutil.which("Xvfb")
    if exe is None:
        raise OSError("Xvfb is not installed (apt-get install -y xvfb)")
    read, write = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write), "-screen", "0", SCREEN, "-nolisten", "tcp", "-noreset"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            raise OSError(f"Xvfb did not start (exit {proc.wait(5)})")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class WindowTimes:
    """Launch to the window mapped, and to its first paint, for one binary."""

    key: str
    label: str
    argv: list[str]
    name: str  # part of the window's title: the app's name
    mapped: list[float] = field(default_factory=list)
    painted: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "command": self.argv}
        for what, times in (("mapped", self.mapped), ("painted", self.painted)):
            if times:
                out[what] = {
                    "median_s": statistics.median(times),
                    "min_s": min(times),
                    "max_s": max(times),
                    "runs": len(times),
                    "times_s": times,
                }
        return out


def stop_group(proc: subprocess.Popen[Any], grace: float = 5) -> None:
    """SIGTERM to the binary's process group (a onefile's parent and child), then SIGKILL
    after ``grace`` seconds: the figure is taken, how the window quits is not measured."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            # the group may outlive its leader (a onefile's child): make sure it is gone
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def time_windows(
    targets: list[WindowTimes], warmup: int, runs: int, scratch: Path, timeout: float = 60
) -> str:
    """Start each binary with no arguments on a fresh Xvfb, round-robin, and time launch to
    MapNotify and to the first pixels drawn; each run's window is closed (SIGTERM) and
    its process gone before the next starts."""
    with xvfb() as display:
        watch = XWatch(display)
        env = {**run_env(scratch), "DISPLAY": display}
        try:
            for i in range(warmup + runs):
                print(f"window round {i + 1}/{warmup + runs}", file=sys.stderr, end="\r")
                for target in targets:
                    watch.drain()
                    start = time.perf_counter()
                    log = scratch / "window-stderr.txt"
                    with open(log, "wb") as err_file:
                        # a session of its own: a onefile binary's child goes with it
                        proc = subprocess.Popen(
                            target.argv,
                            env=env,
                            cwd=scratch,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=err_file,
                            start_new_session=True,
                        )
                    try:
                        deadline = start + timeout
                        window = watch.wait_mapped(
                            target.name, deadline, lambda p=proc: p.poll() is None
                        )
                        mapped = time.perf_counter()
                        painted = window is not None and watch.wait_painted(window, deadline)
                        drawn = time.perf_counter()
                    finally:
                        stop_group(proc)
                    if window is None or not painted:
                        err = log.read_text(errors="replace")[-2000:]
                        raise SystemExit(
                            f"{target.label}: no window within {timeout:g} s of launch "
                            f"(exit {proc.returncode}):\n{err}"
                        )
                    if i >= warmup:
                        target.mapped.append(mapped - start)
                        target.painted.append(drawn - start)
        finally:
            watch.close()
            print(file=sys.stderr)
    return (
        f"no arguments on Xvfb {SCREEN} (no window manager); launch to MapNotify of the "
        "top-level (libX11 event on the root window) and to its first non-uniform pixels "
        f"(XGetImage); round-robin, warmup {warmup}, runs {runs}, median reported"
    )


# -- report --------------------------------------------------------------------------------


def ratios(by_key: dict[str, App]) -> dict[str, dict[str, float]]:
    """ours/naive per mode, for size and median time (below 1: ours is smaller/faster)."""
    out: dict[str, dict[str, float]] = {}
    for mode in ("onedir", "onefile"):
        ours, naive = by_key[f"ours_{mode}"], by_key[f"naive_{mode}"]
        out[mode] = {
            "size": (ours.size_bytes or 0) / (naive.size_bytes or 1),
            "median_time": statistics.median(ours.times) / statistics.median(naive.times),
        }
    return out


def print_table(apps: list[App], rat: dict[str, dict[str, float]], method: str) -> None:
    """One table, medians first, ratios where they apply."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"launch to first prediction ({method})")
    for col, justify in (
        ("app", "left"),
        ("size", "right"),
        ("median", "right"),
        ("min / max", "right"),
        ("ours / naive", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for app in apps:
        med = statistics.median(app.times)
        size = "-" if app.size_bytes is None else f"{app.size_bytes / 1e6:.1f} MB"
        ratio = ""
        if app.key.startswith("naive_") and app.mode in rat:
            r = rat[app.mode]
            ratio = f"size {r['size']:.2f}x, time {r['median_time']:.2f}x"
        table.add_row(
            app.label,
            size,
            f"{med * 1000:.0f} ms",
            f"{min(app.times) * 1000:.0f} / {max(app.times) * 1000:.0f} ms",
            ratio,
        )
    Console().print(table)


def print_window_table(
    by_key: dict[str, App], windows: list[WindowTimes], tk: dict[str, Any]
) -> None:
    """Ours side by side: first prediction, window mapped, window painted; size with Tk's share."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="launch to first window (no arguments, on Xvfb; medians)")
    for col in ("app", "first prediction", "window mapped", "first paint", "size", "of it Tk"):
        table.add_column(col, justify="left" if col == "app" else "right")
    for w in windows:
        app = by_key[w.key]
        mode = app.mode or ""
        table.add_row(
            w.label,
            f"{statistics.median(app.times) * 1000:.0f} ms",
            f"{statistics.median(w.mapped) * 1000:.0f} ms",
            f"{statistics.median(w.painted) * 1000:.0f} ms",
            "-" if app.size_bytes is None else f"{app.size_bytes / 1e6:.1f} MB",
            f"{tk[f'{mode}_bytes'] / 1e6:.1f} MB",
        )
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    """Build the naive baseline if needed, check all outputs agree, time, report."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--ours-onedir",
        type=Path,
        default=DEFAULT_OURS / "onedir" / "penguins",
        help="our onedir folder (or its executable)",
    )
    p.add_argument(
        "--ours-onefile",
        type=Path,
        default=DEFAULT_OURS / "onefile" / "penguins",
        help="our onefile executable",
    )
    p.add_argument("--record", default=json.dumps(DEFAULT_RECORD), help="the JSON record to score")
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--no-hyperfine", action="store_true", help="use the Python fallback timer")
    p.add_argument("--rebuild-naive", action="store_true", help="rebuild even if up to date")
    p.add_argument(
        "--no-window",
        action="store_true",
        help="skip launch-to-first-window (needs Xvfb and libX11) and Tk's size",
    )
    p.add_argument(
        "--window-runs",
        type=int,
        default=None,
        help="runs per binary for the window (default --runs)",
    )
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "work")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = p.parse_args(argv)

    ours_dir, ours_dir_exe = resolve_onedir(args.ours_onedir)
    ours_file = args.ours_onefile.resolve()
    if not ours_file.is_file():
        raise SystemExit(f"{ours_file} does not exist: build it first (`bundle build specs/...`)")
    args.work.mkdir(parents=True, exist_ok=True)
    naive_dir_exe, naive_file, naive_info = build_naive(args.work, force=args.rebuild_naive)
    record = args.record
    json.loads(record)  # fail early on a malformed record

    predict = ["predict", "--json", record]
    apps = [
        App("floor", 'python -c "import numpy"', [sys.executable, "-c", "import numpy"]),
        App(
            "ours_onedir",
            "ours onedir",
            [str(ours_dir_exe), *predict],
            "onedir",
            tree_size(ours_dir),
        ),
        App(
            "naive_onedir",
            "naive onedir",
            [str(naive_dir_exe), *predict],
            "onedir",
            tree_size(naive_dir_exe.parent),
        ),
        App(
            "ours_onefile",
            "ours onefile",
            [str(ours_file), *predict],
            "onefile",
            tree_size(ours_file),
        ),
        App(
            "naive_onefile",
            "naive onefile",
            [str(naive_file), *predict],
            "onefile",
            tree_size(naive_file),
        ),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5 * (os.cpu_count() or 1):
        print(
            f"warning: the machine is busy (load {load:.1f} on {os.cpu_count()} cores); "
            "absolute times will be inflated, ratios less so",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="mlbundle-bench-") as tmp:
        scratch = Path(tmp)
        agreement = check_outputs(apps, scratch)
        if not agreement["agree"]:
            print(f"warning: the apps disagree on the record: {agreement}", file=sys.stderr)
        hyperfine = None if args.no_hyperfine else shutil.which("hyperfine")
        if hyperfine:
            method = time_hyperfine(
                apps, hyperfine, args.warmup, args.runs, args.work / "hyperfine.json", scratch
            )
        else:
            if not args.no_hyperfine:
                print(
                    "hyperfine not found (apt-get install -y hyperfine); using the fallback",
                    file=sys.stderr,
                )
            method = time_fallback(apps, args.warmup, args.runs, scratch)

        windows: list[WindowTimes] = []
        window_method = None
        if not args.no_window:
            name = json.loads(
                subprocess.run(
                    [str(ours_dir_exe), "about", "--json"],
                    capture_output=True,
                    text=True,
                    env=run_env(scratch),
                    cwd=scratch,
                    check=True,
                ).stdout
            )["app"]["name"]
            windows = [
                WindowTimes("ours_onedir", "ours onedir", [str(ours_dir_exe)], name),
                WindowTimes("ours_onefile", "ours onefile", [str(ours_file)], name),
            ]
            window_method = time_windows(
                windows,
                args.warmup,
                args.runs if args.window_runs is None else args.window_runs,
                scratch,
            )

    by_key = {a.key: a for a in apps}
    rat = ratios(by_key)
    print_table(apps, rat, method)
    tk = None
    if windows:
        tk = tk_size(ours_dir, ours_file)
        print_window_table(by_key, windows, tk)
    unpack = unpack_profile(ours_file)
    print(
        f"ours onefile unpacks {unpack['entries']} files, {unpack['unpacked_bytes'] / 1e6:.1f} MB "
        f"(stored {unpack['stored_bytes'] / 1e6:.1f} MB), inflated in "
        f"{unpack['inflate_s'] * 1000:.0f} ms",
        file=sys.stderr,
    )
    result = {
        "generated_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "method": method,
        "record": json.loads(record),
        "machine": machine(),
        "outputs": agreement,
        "apps": {a.key: a.summary() for a in apps},
        "ratios_ours_over_naive": rat,
        "window": None
        if not windows
        else {
            "method": window_method,
            "apps": {w.key: w.summary() for w in windows},
            "tk_size": tk,
        },
        "onefile_unpack": unpack,
        "naive_build": naive_info,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
