"""What a silent trial costs a prediction, side by side in one run.

The example app (``aot`` kernels, ``[updates]`` with a fresh key) is prepared as
``bundle prepare`` would, the example retrained with another seed is packed and
installed, and single-row ``Model.predict`` calls (dict records cycling over the
e2e rows) are timed in turns for:

- ``bundled``: the app's own model, no trial (the baseline);
- ``candidate``: the retrained pack loaded alone (its own scoring time);
- ``trial``: the bundled model with the pack in trial beside it (both scored, the
  comparison logged by the background writer).

The issue's bar: ``trial - bundled`` no more than ``candidate``. Also times
``models install`` (verify, checks, the in-app gate, activation) in process.

Usage::

    .venv/bin/python bench/trial.py [--calls 20000] [--out bench/results/trial.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20000, help="predictions per variant")
    parser.add_argument("--rounds", type=int, default=40, help="turns the variants take")
    parser.add_argument("--file-rows", type=int, default=100_000, help="rows of the file")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "trial.json")
    args = parser.parse_args()

    import pandas as pd
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from bundler.build import prepare
    from bundler.pack import pack
    from bundler.spec import load_spec
    from tests._packs import retrain, spec_text

    work = Path(tempfile.mkdtemp(prefix="mlbundle-bench-trial."))
    os.environ["MLBUNDLE_DATA_DIR"] = str(work / "data")
    key = Ed25519PrivateKey.generate()
    private, public = work / "release.pem", work / "release.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (work / "app.toml").write_text(spec_text(public), encoding="utf-8")
    payload = prepare(load_spec(work / "app.toml"), work / "app").payload
    retrained = retrain(work / "retrained", seed=1, version="1.1.0", public_key=public)
    pack_file = work / "penguins-1.1.0.mlpack"
    pack(retrained.spec, pack_file, signing_key=private)

    import mlbundle_runtime
    from mlbundle_runtime.store import ModelStore

    bundled = mlbundle_runtime.load(payload)
    store = ModelStore.for_model(bundled)
    start = time.perf_counter()
    store.install(pack_file, trial=True)
    install_s = time.perf_counter() - start
    trial = mlbundle_runtime.load(payload)
    assert trial.trial == "1.1.0" and trial.origin == "bundled", trial.source
    candidate_folder = next(
        e.folder for e in store.entries() if e.version == "1.1.0" and e.folder is not None
    )
    candidate = mlbundle_runtime.load(Path(candidate_folder) / "payload")

    frame = pd.read_csv(ROOT / "resources" / "gate" / "e2e.csv")
    names = [i.name for i in bundled.inputs]
    records = [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in frame[names].to_dict("records")
    ]
    variants = {"bundled": bundled, "candidate": candidate, "trial": trial}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    per_round = max(1, args.calls // args.rounds)
    for model in variants.values():  # warm up
        for record in records:
            model.predict(record)
    for _ in range(args.rounds):
        for name, model in variants.items():
            predict = model.predict
            n = len(records)
            t0 = time.perf_counter()
            for i in range(per_round):
                predict(records[i % n])
            samples[name].append(1e6 * (time.perf_counter() - t0) / per_round)
    # a file: the e2e rows tiled to --file-rows, scored by predict_file
    src = work / "rows.csv"
    tiled = pd.concat([frame[names]] * (args.file_rows // len(frame) + 1), ignore_index=True)
    tiled.iloc[: args.file_rows].to_csv(src, index=False)
    file_s: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(3):
        for name, model in variants.items():
            t0 = time.perf_counter()
            model.predict_file(src, work / f"out-{name}.csv")
            if model.trial is not None:
                model._trial.log.flush()  # the log's writing counts too
            file_s[name].append(time.perf_counter() - t0)
    file_us = {name: 1e6 * min(v) / args.file_rows for name, v in file_s.items()}
    medians = {name: statistics.median(v) for name, v in samples.items()}
    # the quickest round of each: what a prediction costs when nothing else runs
    # (the rounds interleave, so a noisy machine slows each variant alike)
    fastest = {name: min(v) for name, v in samples.items()}
    added = medians["trial"] - medians["bundled"]
    added_fastest = fastest["trial"] - fastest["bundled"]
    result = {
        "calls_per_variant": per_round * args.rounds,
        "rounds": args.rounds,
        "us_per_prediction": medians,
        "us_per_prediction_fastest_round": fastest,
        "trial_added_us_fastest_round": added_fastest,
        "added_over_candidate_fastest_round": added_fastest / fastest["candidate"],
        "trial_added_us": added,
        "candidate_us": medians["candidate"],
        "added_over_candidate": added / medians["candidate"],
        "file_rows": args.file_rows,
        "file_us_per_row_fastest_of_3": file_us,
        "file_trial_added_us_per_row": file_us["trial"] - file_us["bundled"],
        "install_seconds_in_process": install_s,
        "load_average": os.getloadavg()[0],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    for name, value in medians.items():
        print(f"{name:>10}: {value:8.2f} µs per prediction (fastest round {fastest[name]:.2f})")
    print(
        f"trial adds {added:.2f} µs; the candidate alone takes {medians['candidate']:.2f} µs "
        f"(ratio {added / medians['candidate']:.2f}; fastest rounds: adds {added_fastest:.2f}, "
        f"ratio {added_fastest / fastest['candidate']:.2f}); install {install_s * 1000:.0f} ms"
    )
    print(
        f"file of {args.file_rows:,} rows, µs per row: bundled {file_us['bundled']:.2f}, "
        f"candidate {file_us['candidate']:.2f}, trial {file_us['trial']:.2f} (adds "
        f"{file_us['trial'] - file_us['bundled']:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
