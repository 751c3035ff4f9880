"""The frozen application's command line: predict, about, selftest, --version.

Kept on argparse and lazy imports: every millisecond here is start-up time
for the end user. Errors are caught in one place and become one line on
stderr and a documented exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app import __version__

EXIT_OK = 0
EXIT_SELFTEST_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_DAMAGED = 4


def _parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=name, description="Score inputs with the bundled model.")
    p.add_argument("--version", action="store_true", help="print versions and exit")
    sub = p.add_subparsers(dest="command")
    pr = sub.add_parser("predict", help="score one JSON record, or a CSV file")
    src = pr.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--json",
        metavar="RECORD",
        help="a JSON object (or a list of objects) keyed by input name; - for stdin",
    )
    src.add_argument("--input", metavar="CSV", help="a CSV file with a header of input names")
    pr.add_argument("--output", metavar="CSV", help="where to write scores (default: stdout)")
    ab = sub.add_parser("about", help="show the model's metadata")
    ab.add_argument("--json", action="store_true", help="print the full record as JSON")
    sub.add_parser("selftest", help="run the release gate inside this binary")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code."""
    from app.inputs import InputError
    from app.plan import PlanError

    argv = sys.argv[1:] if argv is None else argv
    try:
        from app.bundle import open_bundle

        bundle = open_bundle()
    except PlanError as exc:
        print(f"error: this application's model is damaged or missing: {exc}", file=sys.stderr)
        return EXIT_DAMAGED
    args = _parser(bundle.name).parse_args(argv)
    try:
        if args.version:
            info = bundle.info
            status = "" if bundle.approved else ", UNAPPROVED development build"
            print(
                f"{info['name']} {info['version']} (model {info.get('model_version', '?')}, "
                f"mlbundle {__version__}, {_scoring(info.get('backend', 'aot'))}{status})"
            )
            return EXIT_OK
        if args.command == "predict":
            return _predict(bundle, args)
        if args.command == "about":
            return _about(bundle, args.json)
        if args.command == "selftest":
            return _selftest(bundle)
        _parser(bundle.name).print_help()
        return EXIT_USAGE
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except PlanError as exc:
        print(f"error: this application's model is damaged: {exc}", file=sys.stderr)
        return EXIT_DAMAGED
    except BrokenPipeError:
        return EXIT_OK


def _predict(bundle: Any, args: argparse.Namespace) -> int:
    from app.inputs import InputError

    scorer = bundle.scorer()
    if args.json is not None:
        text = sys.stdin.read() if args.json == "-" else args.json
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"--json: not valid JSON ({exc})") from None
        records = data if isinstance(data, list) else [data]
        scores = scorer.score_records(records)
        out = [scores.record(r) for r in range(len(scores))]
        result = out if isinstance(data, list) else out[0]
        text = json.dumps(result, indent=2) + "\n"
        if args.output:
            _write_text(args.output, text)
        else:
            sys.stdout.write(text)
        return EXIT_OK
    return _predict_csv(scorer, args.input, args.output)


def _predict_csv(scorer: Any, src: str, dst: str | None) -> int:
    import csv
    from pathlib import Path

    from app.inputs import InputError

    try:
        if dst:
            n = scorer.score_csv_file(Path(src), Path(dst))
            print(f"scored {n} rows into {dst}", file=sys.stderr)
            return EXIT_OK
        with open(src, newline="", encoding="utf-8") as fin:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            first = True
            for _, scores in scorer.iter_csv(fin, src):
                if first:
                    writer.writerow(scores.header())
                    first = False
                writer.writerows(scores.rows())
            if first:
                writer.writerow(scorer.empty_header())
    except FileNotFoundError as exc:
        raise InputError(f"{exc.filename}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{src}: not a readable UTF-8 CSV file ({exc})") from None
    except IsADirectoryError as exc:
        raise InputError(f"{exc.filename}: is a folder, expected a CSV file") from None
    except PermissionError as exc:
        raise InputError(f"{exc.filename}: permission denied") from None
    return EXIT_OK


def _write_text(path: str, text: str) -> None:
    import os

    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _about(bundle: Any, as_json: bool) -> int:
    record = bundle.record()
    if as_json:
        print(json.dumps(record, indent=2, sort_keys=True))
        return EXIT_OK
    info = bundle.info
    model = record.get("model", {})
    audit = record.get("audit", {})
    lines = []
    if not bundle.approved:
        lines.append("UNAPPROVED: a development build, not approved for release")
    lines += [
        f"{info.get('title', info['name'])} — {info['name']} {info['version']}",
        f"  model        {model.get('algorithm', '?')} v{model.get('version', '?')} "
        f"(sha256 {str(model.get('sha256', ''))[:16]}…)",
    ]
    if record.get("extractor"):
        ex = record["extractor"]
        lines.append(
            f"  extractor    {ex.get('algorithm', '?')} v{ex.get('version', '?')} "
            f"(sha256 {str(ex.get('sha256', ''))[:16]}…)"
        )
    training = record.get("training", {})
    libs = ", ".join(f"{k} {v}" for k, v in sorted(training.get("libraries", {}).items()))
    lines.append(f"  trained with {libs or 'unknown'}")
    lines.append(
        "  inputs       "
        + ", ".join(f"{i['name']} ({i['kind']})" for i in record.get("inputs", []))
    )
    out = record.get("outputs", {})
    lines.append(
        f"  outputs      {out.get('task', '?')}"
        + (f": {', '.join(map(str, out.get('classes', [])))}" if out.get("classes") else "")
    )
    gate = record.get("gate", {})
    if gate:
        conf = gate.get("confidence", {})
        lines.append(
            f"  gate         e2e {gate.get('e2e', {}).get('rows', '?')} rows; "
            f"{conf.get('metric')} = {conf.get('value')} in {conf.get('range')}"
        )
    data = record.get("data") or {}
    for role in ("training", "validation"):
        ref = data.get(role)
        if ref:
            checked = "hash verified" if ref.get("verified") else "hash not checked"
            lines.append(f"  {role:<13}{ref['version']} at {ref['location']} ({checked})")
    if bundle.approved:
        lines.append(
            f"  approved     by {audit.get('approved_by')} on {audit.get('approved_date')}:"
            f" {audit.get('approval_grounds')}"
        )
        lines.append(
            f"  reviewed     privacy: {audit.get('privacy_reviewer')} "
            f"({audit.get('privacy_review_date')}); security: "
            f"{audit.get('security_reviewer')} ({audit.get('security_review_date')})"
        )
    if audit.get("model_author"):
        lines.append(f"  author       {audit['model_author']} ({audit.get('model_date')})")
    build = record.get("build", {})
    lines.append(
        f"  built        {build.get('time', '?')} with mlbundle {build.get('tool_version')}"
        f" ({_scoring(build.get('backend', '?'))})"
    )
    print("\n".join(lines))
    return EXIT_OK


def _scoring(backend: str) -> str:
    """What scores in this app, for --version and about."""
    return "scikit-learn (passthrough)" if backend == "passthrough" else f"{backend} kernels"


def _selftest(bundle: Any) -> int:
    from app.gate import GateConfig, open_text, run_gate
    from app.scorer import Scorer

    config = GateConfig.from_json(bundle.read_json("gate.json"))
    scorer: Scorer = bundle.scorer()
    result = run_gate(
        scorer,
        config,
        open_text(bundle.read_bytes(config.e2e_file)),
        open_text(bundle.read_bytes(config.confidence_file)),
    )
    for line in result.summary():
        print(line)
    print("selftest: PASSED" if result.passed else "selftest: FAILED")
    return EXIT_OK if result.passed else EXIT_SELFTEST_FAILED
