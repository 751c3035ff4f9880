"""Streaming benchmark: ``predict --input big.csv --output out.csv`` on a ~2 GB CSV.

What a user scoring a large file sees: end-to-end rows per second of the real
command (a subprocess: the frozen onedir app with ``--binary``, else ``python -m
app`` on a payload compiled here, with the ahead-of-time kernels the frozen app
ships) and its peak memory, against what the kernels alone do on the same rows
(``Scorer.run`` on workspaces filled beforehand, in chunks of the size the
streaming path uses, and as one 100,000-row batch). An in-process run of the
same path, stage by stage, shows where the time goes.

The input is the example model's (``specs/penguins.toml``): penguin rows with
the training data's spread, 1 % missing numbers and a few missing or unknown
categories, plus two columns the model ignores. It is generated once with numpy
(cached under ``bench/work/streaming/``, not committed).

Usage::

    python bench/streaming.py                      # 2 GiB, python -m app
    python bench/streaming.py --binary dist/penguins/onedir/penguins/penguins
    python bench/streaming.py --size-mb 8 --out /tmp/s.json   # a smoke run

Results: ``bench/results/streaming.json`` and a Markdown table line on stdout.
The machine may be shared: the JSON records the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORK = ROOT / "bench" / "work" / "streaming"
RESULTS = ROOT / "bench" / "results" / "streaming.json"
ARTIFACTS = ROOT / "resources" / "artifacts"
#: Bump when the generated rows change, so cached files are made again.
GENERATOR = "1"
BLOCK_ROWS = 65536
DISTINCT_BLOCKS = 16
COLUMNS = (
    "species", "island", "bill_length_mm", "bill_depth_mm",
    "flipper_length_mm", "body_mass_g", "sex", "year",
)  # fmt: skip


# -- input -------------------------------------------------------------------------------
def _block(rng: np.random.Generator, n: int) -> bytes:
    """``n`` CSV lines of penguin-like rows (numbers written as in the example data)."""
    island = np.array(["Biscoe", "Dream", "Torgersen", "Atlantis"])[
        rng.choice(4, n, p=[0.49, 0.36, 0.149, 0.001])
    ]
    sex = np.array(["male", "female", "NA", ""])[rng.choice(4, n, p=[0.485, 0.485, 0.02, 0.01])]
    numbers = [
        np.round(rng.normal(43.9, 5.5, n), 1).astype(str),
        np.round(rng.normal(17.2, 2.0, n), 1).astype(str),
        rng.integers(172, 232, n).astype(str),
        (rng.integers(54, 127, n) * 50).astype(str),
    ]
    for col in numbers:
        col[rng.random(n) < 0.01] = "NA"
    species = np.array(["Adelie", "Chinstrap", "Gentoo"])[rng.integers(0, 3, n)]
    year = rng.integers(2007, 2010, n).astype(str)
    line = species.astype(object)
    for col in (island, *numbers, sex, year):
        line = line + "," + col.astype(object)
    return ("\n".join(line.tolist()) + "\n").encode("ascii")


def make_input(size_mb: int, work: Path, seed: int = 0) -> tuple[Path, int]:
    """A CSV of at least ``size_mb`` MiB (cached); returns it and its number of rows."""
    path = work / f"penguins-{size_mb}mb-g{GENERATOR}-s{seed}.csv"
    stamp = path.with_suffix(".json")
    if path.exists() and stamp.exists():
        info = json.loads(stamp.read_text())
        if info.get("bytes") == path.stat().st_size:
            return path, int(info["rows"])
    work.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    blocks: list[bytes] = []  # made as needed, then repeated
    target = size_mb * 2**20
    header = (",".join(COLUMNS) + "\n").encode()
    tmp = path.with_name(path.name + ".tmp")
    rows, size, i = 0, len(header), 0
    with open(tmp, "wb") as f:
        f.write(header)
        while size < target:
            if len(blocks) < DISTINCT_BLOCKS:
                blocks.append(_block(rng, BLOCK_ROWS))
            block = blocks[i % DISTINCT_BLOCKS]
            if size + len(block) > target:  # the last block: just the lines needed
                cut = block.index(b"\n", target - size) + 1
                block = block[:cut]
            f.write(block)
            size += len(block)
            rows += block.count(b"\n")
            i += 1
    os.replace(tmp, path)
    stamp.write_text(json.dumps({"bytes": size, "rows": rows, "seed": seed}))
    return path, rows


# -- the app ------------------------------------------------------------------------------
def load_plan() -> Any:
    import joblib

    from bundler.compiler import compile_estimators

    return compile_estimators(
        joblib.load(ARTIFACTS / "model.joblib"), joblib.load(ARTIFACTS / "extractor.joblib")
    )


def make_payload(compiled: Any, work: Path) -> Path:
    """A payload folder ``python -m app`` reads (MLBUNDLE_PAYLOAD): plan and bundle.json."""
    from bundler.compiler import write_plan_files

    folder = work / "payload"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    write_plan_files(compiled, folder)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}
    info = {"name": "penguins", "version": "bench", "backend": "aot", "files": files}
    (folder / "bundle.json").write_text(json.dumps(info, indent=1, sort_keys=True))
    return folder


class PeakMemory:
    """Samples a process tree's resident memory from /proc (VmHWM: the kernel's peak)."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid = pid
        self.every = every
        self.peak_kb = 0
        self.samples: list[tuple[float, int]] = []  # (seconds, current RSS in kB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.perf_counter()
        self._thread.start()

    def _tree(self) -> list[int]:
        pids, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in task.read_text().split()]
        return pids

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = 0
            for pid in self._tree():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
                hwm = int(fields.get("VmHWM", "0 kB").split()[0])
                self.peak_kb = max(self.peak_kb, hwm)
                rss += int(fields.get("VmRSS", "0 kB").split()[0])
            if rss:
                self.samples.append((time.perf_counter() - self._start, rss))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_predict(cmd: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """Run the command, timing it and sampling its memory; the output is checked later."""
    out.unlink(missing_ok=True)
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    memory = PeakMemory(proc.pid)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - start
    memory.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"predict failed ({proc.returncode}):\n{stderr.decode()[-3000:]}")
    samples = memory.samples
    flat = [kb for t, kb in samples if t > 1.0] or [kb for _, kb in samples]
    return {
        "command": cmd,
        "seconds": round(seconds, 3),
        # CPU time of the process (all threads): less sensitive than seconds to a busy machine
        "cpu_seconds": round(cpu, 3),
        "peak_rss_mb": round(memory.peak_kb / 1024, 1),
        # resident memory over the run: flat means it does not grow with the file
        "rss_mb_quartiles_after_1s": [
            round(float(np.percentile(flat, q)) / 1024, 1) for q in (0, 25, 50, 75, 100)
        ]
        if flat
        else [],
        "stderr": stderr.decode(errors="replace").strip()[-500:],
        "stdout": stdout.decode(errors="replace").strip()[-500:],
    }


def check_output(out: Path, rows: int) -> dict[str, Any]:
    """Row count, header, and that every line has the header's number of cells."""
    with open(out, "rb") as f:
        header = f.readline().decode().strip()
        lines = 0
        bad = 0
        width = header.count(",")
        while chunk := f.read(1 << 24):
            lines += chunk.count(b"\n")
        f.seek(0)
        f.readline()
        head = [line.decode() for _, line in zip(range(1000), f, strict=False)]
        for cells in csv.reader(head):  # spot check of the first lines
            bad += len(cells) != width + 1
    if lines != rows or bad:
        raise SystemExit(f"{out}: {lines} rows (expected {rows}), {bad} malformed lines")
    return {"rows": lines, "header": header}


# -- in process: kernels alone, and where the time goes ----------------------------------
class InProcess:
    """The streaming path's pieces in this process, on the input's first (up to) 1M rows."""

    def __init__(self, compiled: Any, src: Path, rows: int) -> None:
        from bundler.backends import compile_aot
        from mlbundle_runtime.backend import load_kernels
        from mlbundle_runtime.scorer import CHUNK_ROWS, Scorer

        self.plan = compiled.load()
        self.kernels = load_kernels("aot", compile_aot())
        self.scorer = Scorer(self.plan, self.kernels)
        self.src = src
        self.limit = min(rows, 1_000_000)
        self.chunk_rows = CHUNK_ROWS
        self.inputs = np.concatenate([ws[:, : len(self.plan.inputs)] for ws, _ in self._read()])

    def _read(self) -> Any:
        from mlbundle_runtime.inputs import CsvReader

        n = 0
        with open(self.src, "rb") as fin:
            reader = CsvReader(
                self.scorer.encoder, fin, str(self.src), self.plan.width, self.chunk_rows
            )
            for ws, where in reader:
                yield ws, where
                n += len(ws)
                if n >= self.limit:
                    return

    def kernel_rates(self) -> dict[str, float]:
        """``Scorer.run`` alone on workspaces filled beforehand: in chunks as streamed
        (all threads, then one), and in 100,000-row batches; and the CPU time (all
        threads) the chunks take per row."""
        from mlbundle_runtime.scorer import Scorer

        k = len(self.plan.inputs)
        cpu_per_row = []

        def rate(scorer: Scorer, batch: int, repeat: int = 3) -> int:
            best = 0.0  # best of a few passes: the least disturbed on a shared machine
            for _ in range(repeat):
                spent = cpu = 0.0
                for start in range(0, len(self.inputs), batch):
                    part = self.inputs[start : start + batch]
                    ws = np.empty((len(part), self.plan.width))
                    ws[:, :k] = part
                    t, c = time.perf_counter(), time.process_time()
                    scorer.run(ws, str)
                    spent += time.perf_counter() - t
                    cpu += time.process_time() - c
                best = max(best, len(self.inputs) / spent)
                if batch == self.chunk_rows:
                    cpu_per_row.append(cpu / len(self.inputs) * 1e9)
            return round(best)

        one = Scorer(self.plan, self.kernels, threads=1)
        rates: dict[str, float] = {
            "chunked": rate(self.scorer, self.chunk_rows),
            "batch_100k": rate(self.scorer, 100_000),
            "chunked_1_thread": rate(one, self.chunk_rows, repeat=2),
        }
        rates["chunked_cpu_ns_per_row"] = round(min(cpu_per_row))
        return rates

    def stages(self) -> dict[str, Any]:
        """The path one chunk at a time (no overlap), timed stage by stage: wall time, and
        this thread's CPU time for the Python stages (kernels run on worker threads)."""
        wall = {"read_and_encode": 0.0, "kernels": 0.0, "format": 0.0, "write": 0.0}
        cpu = dict.fromkeys(wall, 0.0)
        n = 0
        with tempfile.TemporaryFile("w+", newline="") as fout:
            reader = iter(self._read())
            while True:
                marks = [(time.perf_counter(), time.thread_time())]
                item = next(reader, None)
                marks.append((time.perf_counter(), time.thread_time()))
                if item is None:
                    break
                scores = self.scorer.run(*item)
                marks.append((time.perf_counter(), time.thread_time()))
                text = scores.to_csv()
                marks.append((time.perf_counter(), time.thread_time()))
                fout.write(text)
                marks.append((time.perf_counter(), time.thread_time()))
                for i, key in enumerate(wall):
                    wall[key] += marks[i + 1][0] - marks[i][0]
                    cpu[key] += marks[i + 1][1] - marks[i][1]
                n += len(scores)
        total = sum(wall.values())
        return {
            "rows": n,
            "chunk_rows": self.chunk_rows,
            "threads": self.scorer.threads,
            "wall_seconds": {key: round(v, 3) for key, v in wall.items()},
            "wall_share": {key: round(v / total, 3) for key, v in wall.items()},
            "main_thread_cpu_ns_per_row": {key: round(v / n * 1e9) for key, v in cpu.items()},
            "sequential_rows_per_s": round(n / total),
        }


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_model": platform.processor() or platform.machine(),
        "logical_cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "os": platform.platform(),
        "numpy_version": np.__version__,
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024**2, 1)
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size-mb", type=int, default=2048, help="input size in MiB (default 2048)")
    p.add_argument("--binary", type=Path, help="a onedir app executable (default: python -m app)")
    p.add_argument("--work", type=Path, default=WORK, help="cache folder for the input")
    p.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep-output", action="store_true", help="keep the scored CSV")
    args = p.parse_args(argv)

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t = time.perf_counter()
    src, rows = make_input(args.size_mb, args.work, args.seed)
    print(f"input: {src} ({src.stat().st_size / 1e6:,.1f} MB, {rows:,} rows; "
          f"{time.perf_counter() - t:.1f}s)", file=sys.stderr)  # fmt: skip
    compiled = load_plan()
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="mlbundle-stream-") as tmp:
        out = args.work / "scored.csv"
        if args.binary:
            cmd = [str(args.binary.resolve())]
            mode = "frozen onedir"
        else:
            from bundler.backends import compile_aot

            payload = make_payload(compiled, Path(tmp))
            env["MLBUNDLE_PAYLOAD"] = str(payload)
            env["PYTHONPATH"] = os.pathsep.join([str(compile_aot().parent), str(ROOT)])
            cmd = [sys.executable, "-m", "mlbundle_runtime"]
            mode = "python -m app (aot kernels)"
        cmd += ["predict", "--input", str(src), "--output", str(out)]
        print(f"running: {' '.join(cmd)}", file=sys.stderr)
        local = InProcess(compiled, src, rows)
        before = local.kernel_rates()
        run = run_predict(cmd, env, out)
        run.update(check_output(out, rows))
        if not args.keep_output:
            out.unlink(missing_ok=True)
        after = local.kernel_rates()
    run["rows_per_s"] = round(rows / run["seconds"])
    run["mb_per_s"] = round(src.stat().st_size / 1e6 / run["seconds"], 1)
    print(f"end to end: {run['seconds']:.1f}s, {run['rows_per_s']:,} rows/s, "
          f"peak RSS {run['peak_rss_mb']} MB", file=sys.stderr)  # fmt: skip
    kernel = {key: max(before[key], after[key]) for key in before}
    kernel["chunked_cpu_ns_per_row"] = min(
        before["chunked_cpu_ns_per_row"], after["chunked_cpu_ns_per_row"]
    )
    run["cpu_ns_per_row"] = round(run["cpu_seconds"] / rows * 1e9)
    stages = local.stages()
    local.scorer.close()
    result = {
        "benchmark": "streaming",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_1m": {
            "before": load_before,
            "after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "input": {
            "file": src.name,
            "bytes": src.stat().st_size,
            "rows": rows,
            "model": "penguins example (RandomForest 100 trees behind imputer + one-hot + scaler)",
        },
        "mode": mode,
        "end_to_end": run,
        # kernels alone on the same rows, measured just before and just after the run
        "kernel_rows_per_s": {"best": kernel, "before": before, "after": after},
        "ratio_end_to_end_vs_kernel_chunked": round(run["rows_per_s"] / kernel["chunked"], 3),
        "ratio_end_to_end_vs_kernel_batch": round(run["rows_per_s"] / kernel["batch_100k"], 3),
        # the same comparison in CPU time per row, which a busy machine disturbs less
        "ratio_cpu_kernel_vs_end_to_end": round(
            kernel["chunked_cpu_ns_per_row"] / run["cpu_ns_per_row"], 3
        ),
        "stages": stages,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    size = f"{src.stat().st_size / 1e9:.2f} GB"
    print("| input | mode | rows | end to end rows/s | kernels alone rows/s (8192-row chunks"
          " / 100k batch) | ratio | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {size} | {mode} | {rows:,} | {run['rows_per_s']:,} "
        f"| {kernel['chunked']:,} / {kernel['batch_100k']:,} "
        f"| {result['ratio_end_to_end_vs_kernel_chunked']:.2f} | {run['peak_rss_mb']} MB |"
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
