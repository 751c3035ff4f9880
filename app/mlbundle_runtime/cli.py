"""The frozen application's command line: predict, about, selftest, window, --version.

Built on the public runtime API only (``mlbundle_runtime.api``: ``load`` and ``Model``), as
any user's application is. Kept on argparse and lazy imports: every
millisecond here is start-up time for the end user. Errors are caught in one
place and become one line on stderr and a documented exit code, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from mlbundle_runtime import __version__

if TYPE_CHECKING:
    from mlbundle_runtime.api import Model

EXIT_OK = 0
EXIT_SELFTEST_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_DAMAGED = 4
#: Some rows could not be scored: the output holds them with their reasons (``error``).
EXIT_SOME_ROWS_FAILED = 5
#: A model pack was refused (signature, another app, compatibility, version, expiry, its
#: gate inside the app, an app built without [updates]), or a models command cannot apply.
EXIT_PACK_REFUSED = 6
#: Stopped by Ctrl-C (SIGINT) or SIGTERM: 128 + the signal's number, as shells report it.
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C's KeyboardInterrupt, so temporary files go."""


def _parser(name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=name,
        description="Score inputs with the bundled model.",
        epilog=f"{name} FILE.mlpack installs a model pack (with a display: the window offers to). "
        f"Exit codes: 0 ok, 1 selftest failed, 2 usage, 3 bad input, 4 damaged app, 5 some "
        f"rows could not be scored, {EXIT_PACK_REFUSED} model pack refused, 130/143 interrupted.",
    )
    p.add_argument("--version", action="store_true", help="print versions and exit")
    sub = p.add_subparsers(dest="command")
    pr = sub.add_parser(
        "predict",
        help="score one JSON record, or a CSV or JSON Lines file",
        description="Score one JSON record (--json) or a whole file (--input). A row that "
        "cannot be scored gets its reason in the output's error column and the others are "
        f"scored (exit code {EXIT_SOME_ROWS_FAILED}); --strict stops at the first bad row.",
    )
    src = pr.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--json",
        metavar="RECORD",
        help="a JSON object (or a list of objects) keyed by input name; - for stdin",
    )
    src.add_argument(
        "--input",
        metavar="FILE",
        help="a CSV file (a header of input names) or JSON Lines (.jsonl, an object per "
        "line); - for stdin",
    )
    pr.add_argument(
        "--output", metavar="FILE", help="where to write scores: .csv or .jsonl (default: stdout)"
    )
    pr.add_argument(
        "--format",
        choices=("csv", "jsonl"),
        help="the output's format (default: by --output's extension, else the input's)",
    )
    pr.add_argument(
        "--input-format",
        choices=("csv", "jsonl"),
        help="the input's format (default: by --input's extension; stdin: by its first byte)",
    )
    pr.add_argument(
        "--keep",
        metavar="COLUMN",
        action="append",
        default=[],
        help="copy this input column (an ID, say) to the output; repeatable",
    )
    pr.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first row that cannot be scored, naming its line, and write nothing",
    )
    pr.add_argument(
        "--quiet",
        action="store_true",
        help="no progress line and no summary on stderr while scoring a file",
    )
    sub.add_parser("window", help="open the window (what a double-click does)")
    ab = sub.add_parser("about", help="show the model's metadata")
    ab.add_argument("--json", action="store_true", help="print the full record as JSON")
    sub.add_parser("selftest", help="run the release gate inside this binary")
    _models_parser(sub)
    return p


def _models_parser(sub: Any) -> None:
    refused = (
        f"exit code {EXIT_PACK_REFUSED}: the pack was refused (damaged or not signed by this "
        "app's release key, for another app, inputs or kernels this app cannot serve, not "
        "newer than the active model, expired, UNAPPROVED in a release build, its e2e set or "
        "metric failing inside the app, or an app built without [updates]); the active model "
        "is unchanged"
    )
    mp = sub.add_parser(
        "models",
        help="install, list, trial and roll back model packs",
        description="Model packs: signed models installed into this app without reinstalling "
        f"it. {refused}.",
    )
    ms = mp.add_subparsers(dest="models_command", metavar="COMMAND")
    ins = ms.add_parser(
        "install",
        help="verify, gate and activate a .mlpack file",
        description="Verify the pack's signature and hashes, check it suits this app, run its "
        f"e2e set and confidence range inside the app, then make it active. {refused}.",
    )
    ins.add_argument("file", metavar="FILE", help="the .mlpack file")
    ins.add_argument(
        "--trial",
        action="store_true",
        help="install as a silent trial: it scores beside the active model and is only logged",
    )
    ins.add_argument(
        "--allow-downgrade",
        action="store_true",
        help="accept a model version not newer than the active one",
    )
    ins.add_argument(
        "--log-inputs",
        action="store_true",
        help="with --trial: also log the inputs (they are not logged otherwise)",
    )
    ls = ms.add_parser("list", help="the bundled model and installed packs")
    ls.add_argument("--json", action="store_true", help="as JSON")
    ms.add_parser("rollback", help="return to the previous model (at last, the bundled one)")
    ms.add_parser("promote", help="make the model in trial the active one")
    ms.add_parser("drop", help="end the trial and remove its pack")
    tr = ms.add_parser("trial-report", help="how the trial's model compares with the active one")
    tr.add_argument("--json", action="store_true", help="as JSON")
    ms.add_parser("check", help="look for a newer pack at the app's update source")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code.

    Built on the public runtime API only (``load`` and ``Model``), as any user's
    application is, so that what the CLI can do the API can do too."""
    import contextlib
    import signal

    argv = sys.argv[1:] if argv is None else argv
    previous = None
    with contextlib.suppress(ValueError, OSError):  # not the main thread: the caller's job
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    except Terminated:
        _say("terminated")
        return EXIT_TERMINATED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _say(what: str) -> None:
    """The one line an interrupted run ends with; whatever it was writing was left as
    it was (files are written to a temporary file and renamed only when complete)."""
    try:
        sys.stderr.write(f"\n{what}: stopped; no output file was changed\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


def _has_display() -> bool:
    """Whether a window can open: always on Windows and macOS; elsewhere, an X or
    Wayland display must be named in the environment."""
    import os

    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _main(argv: list[str]) -> int:
    from mlbundle_runtime.api import BundleError, InputError, load

    try:
        model = load()
    except BundleError as exc:
        print(f"error: this application's model is damaged or missing: {exc}", file=sys.stderr)
        return EXIT_DAMAGED
    from mlbundle_runtime.packs import PACK_SUFFIX, PackError

    pack_file = argv[0] if len(argv) == 1 and argv[0].lower().endswith(PACK_SUFFIX) else None
    if pack_file is not None and not _has_display():  # a double-click's file, or a shell's
        argv = ["models", "install", pack_file]
    args = _parser(model.name).parse_args([] if pack_file and _has_display() else argv)
    try:
        if pack_file is not None and _has_display():
            return _window_with_pack(model, pack_file)
        if not argv and _has_display() or args.command == "window":
            from mlbundle_runtime.window import run

            return run(model)
        if args.version:
            info = model.info
            status = "" if model.approved else ", UNAPPROVED development build"
            print(
                f"{info['name']} {info['version']} (model {info.get('model_version', '?')}, "
                f"mlbundle {__version__}, {_scoring(info.get('backend', 'aot'))}{status})"
            )
            return EXIT_OK
        if args.command == "predict":
            return _predict(model, args)
        if args.command == "about":
            return _about(model, args.json)
        if args.command == "selftest":
            return _selftest(model)
        if args.command == "models":
            return _models(model, args)
        _parser(model.name).print_help()
        return EXIT_USAGE
    except PackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PACK_REFUSED
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BundleError as exc:
        print(f"error: this application's model is damaged: {exc}", file=sys.stderr)
        return EXIT_DAMAGED
    except BrokenPipeError:
        return EXIT_OK


def _window_with_pack(model: Model, pack_file: str) -> int:
    """The window, offering to install the pack it was opened with (if it can)."""
    import inspect

    from mlbundle_runtime.window import run

    if "pack" in inspect.signature(run).parameters:
        return int(run(model, pack=pack_file))  # type: ignore[call-arg]
    return run(model)


def _models(model: Model, args: argparse.Namespace) -> int:
    import time

    from mlbundle_runtime.store import ModelStore

    command = args.models_command
    if command is None:
        print(
            f"usage: {model.name} models COMMAND: install FILE, list, rollback, promote, drop, "
            "trial-report or check (models --help says more)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    store = ModelStore.for_model(model)
    if command == "install":
        start = time.perf_counter()
        entry = store.install(
            args.file,
            trial=args.trial,
            allow_downgrade=args.allow_downgrade,
            log_inputs=args.log_inputs,
            progress=lambda line: print(line, file=sys.stderr),
        )
        role = "in trial beside the active model" if entry.trial else "now active"
        print(
            f"installed model {entry.version} from {args.file}: {role} "
            f"(signature, hashes and its gate checked in {time.perf_counter() - start:.2f}s)"
        )
        return EXIT_OK
    if command == "list":
        entries = store.entries()
        if args.json:
            print(json.dumps([e.to_json() for e in entries], indent=2))
            return EXIT_OK
        for e in entries:
            marks = [m for m, on in (("active", e.active), ("trial", e.trial)) if on]
            status = "approved" if e.approved else "UNAPPROVED"
            where = "bundled" if e.folder is None else str(e.folder)
            line = f"{'*' if e.active else ' '} {e.version:<12} {e.origin:<8} {status:<10} {where}"
            if marks:
                line += f"  [{', '.join(marks)}]"
            if e.problem:
                line += f"  (unusable: {e.problem})"
            print(line)
        return EXIT_OK
    if command in ("rollback", "promote", "drop"):
        entry = getattr(store, command)()
        print(f"active model: {entry.version} ({entry.origin})")
        return EXIT_OK
    if command == "trial-report":
        report = store.trial_report()
        if args.json:
            print(json.dumps(report.to_json(), indent=2))
        else:
            print("\n".join(report.lines()))
        return EXIT_OK
    result = store.check(progress=lambda line: print(line, file=sys.stderr))  # "check"
    print(result.message)
    return EXIT_OK


def _predict(model: Model, args: argparse.Namespace) -> int:
    from mlbundle_runtime.api import InputError

    if args.json is not None:
        if args.keep or args.input_format:
            raise InputError("--keep and --input-format go with --input FILE, not --json")
        text = sys.stdin.read() if args.json == "-" else args.json
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"--json: not valid JSON ({exc})") from None
        if not isinstance(data, list):
            text = json.dumps(model.predict(data).to_dict(), indent=2) + "\n"
            _emit(args.output, text)
            return EXIT_OK
        results, failed = _predict_list(model, data, args.strict)
        _emit(args.output, json.dumps(results, indent=2) + "\n")
        if failed:
            print(
                f"error: {failed} of {len(data)} records could not be scored; each has its "
                'reason under "error"',
                file=sys.stderr,
            )
            return EXIT_SOME_ROWS_FAILED
        return EXIT_OK
    return _predict_file(model, args)


def _predict_list(model: Model, data: list[Any], strict: bool) -> tuple[list[Any], int]:
    """A JSON list's results: one bad record gets its reason, the others their scores."""
    from mlbundle_runtime.api import InputError

    try:
        return model.predict_many(data).to_records(), 0
    except InputError:
        if strict:
            raise
    results: list[Any] = []
    failed = 0
    for r, record in enumerate(data):
        try:
            results.append(model.predict_many([record]).to_records()[0])
        except InputError as exc:
            failed += 1
            results.append({"error": str(exc).replace("record 1", f"record {r + 1}", 1)})
    return results, failed


def _emit(dst: str | None, text: str) -> None:
    if dst and dst != "-":
        _write_text(dst, text)
    else:
        sys.stdout.write(text)


def _predict_file(model: Model, args: argparse.Namespace) -> int:
    from mlbundle_runtime.api import InputError

    src, dst = args.input, args.output or "-"
    err = sys.stderr
    # A live line only on a terminal, and not when the scores go to that terminal too.
    live = _isatty(err) and (dst != "-" or not _isatty(sys.stdout))
    size = None if src == "-" else _file_size(src)
    progress = None if args.quiet or err is None else Progress(err, size, live)
    try:
        result = model.predict_file(
            src,
            dst,
            keep=args.keep,
            strict=args.strict,
            input_format=args.input_format,
            output_format=args.format,
            progress=progress.update if progress else None,
        )
        if progress is not None:
            progress.close()
            if dst != "-" or live or result.failed:
                progress.summary(result)
    except OSError as exc:
        raise InputError(f"{exc.filename or dst}: {exc.strerror or exc}") from None
    finally:
        if progress is not None:
            progress.close()
    return EXIT_SOME_ROWS_FAILED if result.failed else EXIT_OK


def _isatty(stream: Any) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


def _file_size(path: str) -> int | None:
    import os
    import stat

    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


class Progress:
    """Progress of a CSV file being scored, written to ``stream`` (stderr).

    On a terminal (``live``) one line is rewritten in place at most every
    ``LIVE_EVERY`` seconds: rows scored, MB read of the file's size, rows per
    second and the time left. Elsewhere (a log, a pipe) a plain line is
    written every ``LOG_EVERY`` seconds, so short runs only show the summary.
    """

    LIVE_EVERY = 0.2
    LOG_EVERY = 30.0

    def __init__(self, stream: Any, total_bytes: int | None, live: bool, clock: Any = None) -> None:
        import time

        self.stream = stream
        self.total = total_bytes
        self.live = live
        self.clock = clock or time.monotonic
        self.start = self.clock()
        self._next = self.start + (self.LIVE_EVERY if live else self.LOG_EVERY)
        self._shown = 0  # width of the live line on screen (0: none)

    def update(self, rows: int, bytes_read: int) -> None:
        now = self.clock()
        if now < self._next:
            return
        self._next = now + (self.LIVE_EVERY if self.live else self.LOG_EVERY)
        text = self.describe(rows, bytes_read, now - self.start)
        if self.live:
            self._write("\r" + text.ljust(self._shown))
            self._shown = len(text)
        else:
            self._write(f"progress: {text}\n")

    def describe(self, rows: int, bytes_read: int, elapsed: float) -> str:
        """``1,234,567 rows, 56.1 of 2,048.0 MB (2.7%), 310,000 rows/s, 6m12s left``"""
        parts = [f"{rows:,} rows"]
        mb = bytes_read / 1e6
        if self.total:
            done = min(bytes_read / self.total, 1.0)
            parts.append(f"{mb:,.1f} of {self.total / 1e6:,.1f} MB ({100 * done:.1f}%)")
        else:
            parts.append(f"{mb:,.1f} MB")
        if elapsed > 0:
            parts.append(f"{rows / elapsed:,.0f} rows/s")
        if self.total and elapsed > 0 and 0 < bytes_read < self.total:
            parts.append(f"{_duration(elapsed * (self.total - bytes_read) / bytes_read)} left")
        return ", ".join(parts)

    def finish(self, rows: int, dst: str) -> None:
        """The summary line (replacing the live line)."""
        elapsed = self.clock() - self.start
        rate = f", {rows / elapsed:,.0f} rows/s" if elapsed > 0 and rows else ""
        self._clear()
        self._write(f"scored {rows} rows into {dst} in {_duration(elapsed)}{rate}\n")

    def summary(self, result: Any) -> None:
        """What a file's scoring did, counting the rows that failed and why the first did."""
        if not result.failed:
            self.finish(result.scored, result.output)
        else:
            elapsed = self.clock() - self.start
            self._clear()
            self._write(
                f"scored {result.scored:,} of {result.rows:,} rows into {result.output} in "
                f"{_duration(elapsed)}; {result.failed:,} could not be scored (their reasons "
                f"are in the error column), the first: {result.first_error}\n"
            )
        if result.ignored:
            self._write(
                f"note: ignored column(s) the model does not use: {', '.join(result.ignored)}\n"
            )

    def close(self) -> None:
        """Take the live line away (before an error message, say)."""
        self._clear()

    def _clear(self) -> None:
        if self._shown:
            self._write("\r" + " " * self._shown + "\r")
            self._shown = 0

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not stop the scoring
            pass


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _write_text(path: str, text: str) -> None:
    import os

    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _about(loaded: Model, as_json: bool) -> int:
    record = loaded.record
    if as_json:
        print(json.dumps(record, indent=2, sort_keys=True))
        return EXIT_OK
    info = loaded.info
    model = record.get("model", {})
    audit = record.get("audit", {})
    lines = []
    if not loaded.approved:
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
        + (f", {len(out['targets'])} targets" if out.get("targets") else "")
    )
    for target in out.get("targets") or ():  # a multi-output model: each target's columns
        classes = ", ".join(map(str, target.get("classes") or []))
        lines.append(
            f"    {target.get('name')}: {target.get('task')}"
            + (f" ({classes})" if classes else "")
            + f"; columns {', '.join(target.get('columns') or [])}"
        )
    gate = record.get("gate", {})
    if gate:
        conf = gate.get("confidence", {})
        e2e = gate.get("e2e", {})
        lines.append(
            f"  gate         e2e {e2e.get('rows', '?')} rows compared on "
            f"{', '.join(e2e.get('columns', [])) or '?'}; "
            f"{conf.get('metric')} = {conf.get('value')} on {conf.get('rows', '?')} rows "
            f"in {conf.get('range')}"
        )
    data = record.get("data") or {}
    for role in ("training", "validation"):
        ref = data.get(role)
        if ref:
            checked = "hash verified" if ref.get("verified") else "hash not checked"
            lines.append(f"  {role:<13}{ref['version']} at {ref['location']} ({checked})")
    if loaded.approved:
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


def _selftest(model: Model) -> int:
    result = model.selftest()
    for line in result.summary():
        print(line)
    print("selftest: PASSED" if result.passed else "selftest: FAILED")
    return EXIT_OK if result.passed else EXIT_SELFTEST_FAILED
