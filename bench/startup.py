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
app cannot win. Results go to ``bench/results/startup.json`` with a
description of the machine.

Usage::

    python bench/startup.py --ours-onedir dist/penguins/onedir/penguins \\
                            --ours-onefile dist/penguins/onefile/penguins
"""

from __future__ import annotations

import argparse
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

    by_key = {a.key: a for a in apps}
    rat = ratios(by_key)
    print_table(apps, rat, method)
    result = {
        "generated_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "method": method,
        "record": json.loads(record),
        "machine": machine(),
        "outputs": agreement,
        "apps": {a.key: a.summary() for a in apps},
        "ratios_ours_over_naive": rat,
        "naive_build": naive_info,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
