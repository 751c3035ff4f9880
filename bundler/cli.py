"""The ``bundle`` command: build, compile, score.

Library code raises typed errors (``bundler.errors``); ``main`` is the one
place that turns them into a message and an exit code, so no user ever sees
a traceback for a mistake they can fix. Output sent to a pipe or a CI log is
never hard-wrapped or truncated: a log line must hold a whole message and a
whole path, whatever the reader's screen.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bundler.backends import PLAN_BACKEND_NAMES
from bundler.errors import BundleError, Interrupted, UnsupportedEstimatorError, UsageError
from mlbundle_runtime import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Compile, gate and freeze a scikit-learn model into an offline application.",
)
#: Width given to rich when the output is not a terminal: wide enough that no line of ours
#: (an error message, a table row holding a path) is ever wrapped or cut.
LOG_WIDTH = 10_000
#: Exit code of an unexpected exception (a bug in mlbundle), as BSD's EX_SOFTWARE.
INTERNAL_ERROR = 70
#: Set to show the traceback of an internal error.
DEBUG_ENV = "MLBUNDLE_DEBUG"


def _console(stderr: bool = False) -> Console:
    """A terminal keeps rich's layout; a pipe or log gets whole lines (soft wrap, no width cap)."""
    console = Console(stderr=stderr)
    if console.is_terminal:
        return console
    return Console(stderr=stderr, soft_wrap=True, width=LOG_WIDTH)


out = _console()
err = _console(stderr=True)


def _existing(path: Path, label: str) -> Path:
    """A path the user named on the command line must exist: a usage error (2) otherwise."""
    if not path.exists():
        where = "" if path.is_absolute() else f" (resolved to {path.resolve()})"
        raise UsageError(f"{label}: {path} does not exist{where}")
    return path


def _version(value: bool) -> None:
    if value:
        out.print(f"mlbundle {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """mlbundle: ship a model inside an offline desktop application."""


@app.command()
def build(
    spec: Annotated[Path, typer.Argument(help="The bundle spec, e.g. specs/penguins.toml.")],
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir", "-o", help="Where to publish (default: the spec's build.output_dir)."
        ),
    ] = None,
    release: Annotated[
        bool,
        typer.Option(
            "--release", help="A release build: refuse to run unless every audit field is filled."
        ),
    ] = False,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="ed25519 private key (PEM) to sign the manifests with (see `bundle keygen`).",
        ),
    ] = None,
    sign: Annotated[
        bool,
        typer.Option(
            "--sign", help="Sign with the key in the MLBUNDLE_SIGNING_KEY environment variable."
        ),
    ] = False,
) -> None:
    """Build the app: verify, compile, gate, record, freeze and self-test."""
    from bundler.build import adopt_orphans
    from bundler.build import build as run_build

    adopt_orphans()  # an interrupted build stops every process it started
    if signing_key is not None:
        _existing(signing_key, "--signing-key")
    with err.status("starting") as status:
        report = run_build(
            spec,
            output_dir=output_dir,
            release=release,
            signing_key=signing_key,
            sign=sign,
            progress=lambda msg: status.update(f"[bold]{msg}[/]…"),
        )
    if not release:
        out.print(
            "[yellow]development build: the bundle is marked UNAPPROVED "
            "(build with --release to approve it)[/]"
        )
    for warning in report.warnings:
        err.print(Text(f"warning: {warning}", style="yellow"), highlight=False)
    table = Table(title=f"{report.app} {report.version} — built in {report.total_seconds:.1f} s")
    table.add_column("output")
    table.add_column("size", justify="right")
    table.add_column("selftest", justify="right")
    for mode in report.binaries:
        b = report.binaries[mode]
        table.add_row(
            str(report.executable(mode)),
            f"{b['size'] / 1e6:.1f} MB",
            f"passed in {b['selftest_seconds']:.2f} s" if "selftest_seconds" in b else "-",
        )
    out.print(table)
    stages = Table(title="stages")
    stages.add_column("stage")
    stages.add_column("seconds", justify="right")
    for name, secs in report.stages.items():
        stages.add_row(name, f"{secs:.2f}")
    out.print(stages)
    for line in report.gate_summary:
        out.print(f"gate {line}")
    out.print(
        f"parity with scikit-learn: {report.parity['rows']} rows, largest difference "
        f"{report.parity['max_abs_diff']:.3g}"
    )
    if report.application is not None:
        added = report.application["distributions"]
        out.print(
            f"application {report.application['entry']}: "
            + (
                ", ".join(
                    f"{d['name']} {d['version']} ({d['installed_bytes'] / 1e6:.1f} MB installed)"
                    for d in added
                )
                or "no distribution beyond the runtime's"
            )
        )
    out.print(f"report: {report.out_dir / 'build-report.json'}")


@app.command()
def pack(
    spec: Annotated[Path, typer.Argument(help="The bundle spec, e.g. specs/penguins.toml.")],
    out_file: Annotated[
        Path, typer.Option("--out", help="The pack to write, e.g. penguins-1.1.0.mlpack.")
    ],
    signing_key: Annotated[
        Path | None,
        typer.Option(
            "--signing-key",
            help="The release key's private half (PEM; default: MLBUNDLE_SIGNING_KEY's text).",
        ),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="Apps refuse the pack from this date or UTC time (ISO 8601)."),
    ] = None,
    release: Annotated[
        bool,
        typer.Option(
            "--release", help="An APPROVED pack: refuse to run unless every audit field is filled."
        ),
    ] = False,
) -> None:
    """Pack the model (plan, record, gate sets) into one signed file an installed app can
    update to: the build's checks, no freezing (docs/model-packs.md)."""
    from bundler.build import adopt_orphans
    from bundler.pack import pack as run_pack

    adopt_orphans()
    if signing_key is not None:
        _existing(signing_key, "--signing-key")
    with err.status("starting") as status:
        report = run_pack(
            spec,
            out_file,
            signing_key=signing_key,
            expires=expires,
            release=release,
            progress=lambda msg: status.update(f"[bold]{msg}[/]…"),
        )
    for warning in report.warnings:
        err.print(Text(f"warning: {warning}", style="yellow"), highlight=False)
    meta = report.meta
    if meta["approval"] != "APPROVED":
        out.print(
            "[yellow]development pack: UNAPPROVED (a release build of the app refuses it; "
            "pack with --release to approve it)[/]"
        )
    out.print(
        Text(
            f"{report.path}: {meta['app']} model {meta['model_version']}, {report.files} files, "
            f"{report.size / 1e3:.1f} kB, key {meta['key_id']}, expires "
            f"{meta['expires'] or 'never'}; packed in {report.seconds:.1f} s"
        ),
        highlight=False,
    )


@app.command()
def prepare(
    spec: Annotated[Path, typer.Argument(help="The bundle spec, e.g. specs/fieldreport.toml.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the payload into.")],
) -> None:
    """Write the payload (plan, record, gate files) without freezing: for
    `mlbundle_runtime.load(DIR)` or `MLBUNDLE_PAYLOAD=DIR` while developing an app."""
    from bundler.build import adopt_orphans
    from bundler.develop import prepare_folder

    adopt_orphans()
    with err.status("starting") as status:
        prepared = prepare_folder(
            spec, out_dir, progress=lambda msg: status.update(f"[bold]{msg}[/]…")
        )
    for line in prepared.gate.result.summary():
        out.print(f"gate {line}")
    out.print(f"payload: {prepared.payload}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="The bundle spec, e.g. specs/fieldreport.toml.")],
    payload: Annotated[
        Path | None,
        typer.Option(help="A payload from `bundle prepare` (default: prepare one now)."),
    ] = None,
) -> None:
    """Run the spec's application from source against its payload: `bundle run SPEC --
    ARGS` passes ARGS to the application; its exit code is bundle's."""
    import tempfile

    from bundler.develop import prepare_folder, run_from_source

    with tempfile.TemporaryDirectory(prefix="mlbundle-run-") as tmp:
        if payload is None:
            with err.status("preparing the payload") as status:  # gone before the app runs
                payload = prepare_folder(
                    spec,
                    Path(tmp) / "payload",
                    progress=lambda msg: status.update(f"[bold]{msg}[/]…"),
                ).payload
        code = run_from_source(spec, list(ctx.args), payload=payload)
    raise typer.Exit(code)


@app.command()
def compile(  # noqa: A001 - the subcommand's name is the user's word for it
    model: Annotated[Path, typer.Option(help="The model (joblib file).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the plan into.")],
    extractor: Annotated[Path | None, typer.Option(help="The feature extractor (joblib).")] = None,
    sha256: Annotated[
        list[str] | None,
        typer.Option(
            help="Expected sha256 of the model, then of the extractor; refuses a mismatch."
        ),
    ] = None,
) -> None:
    """Compile a model (and extractor) into a scoring plan, without freezing."""
    from bundler.artifacts import check_joblib_file, check_roles, load_artifact, sha256_file
    from bundler.compiler import compile_estimators

    _existing(model, "--model")
    if extractor is not None:
        _existing(extractor, "--extractor")
    hashes = list(sha256 or [])
    if len(hashes) > (2 if extractor else 1):
        raise UsageError("--sha256: give at most one hash per artifact (model, then extractor)")
    unpinned = [(model, "--sha256")] if not hashes else []
    if extractor is not None and len(hashes) < 2:
        unpinned.append((extractor, "a second --sha256 (after the model's)"))
    for path, how in unpinned:  # unpickling runs code: say so when nothing pins the file
        check_joblib_file(path, "model" if path == model else "extractor")
        digest = sha256_file(path)
        err.print(
            Text(
                f"warning: unpickling {path} without checking its hash (a pickle can run any "
                f"code); pin the file you trust with {how} {digest}"
            ),
            highlight=False,
        )
    m = load_artifact("model", model, hashes[0] if hashes else None)
    e = (
        load_artifact("extractor", extractor, hashes[1] if len(hashes) > 1 else None)
        if extractor
        else None
    )
    check_roles(m, e, keys={"model": "--model", "extractor": "--extractor"})
    plan = compile_estimators(
        m.estimator,
        e.estimator if e else None,
        meta={"model_sha256": m.sha256, "extractor_sha256": e.sha256 if e else None},
    )
    plan.write(out_dir)
    inputs = ", ".join(f"{i['name']} ({i['kind']})" for i in plan.header["inputs"])
    out.print(f"wrote plan to {out_dir}: {len(plan.header['ops'])} kernel calls; inputs: {inputs}")


@app.command()
def score(
    plan_dir: Annotated[Path, typer.Argument(help="A plan folder written by `bundle compile`.")],
    input_csv: Annotated[Path, typer.Option("--input", help="CSV with a header of input names.")],
    output_csv: Annotated[Path, typer.Option("--output", help="Where to write the scores.")],
    backend: Annotated[
        str,
        typer.Option(
            help=f"Kernels to use, one of {', '.join(PLAN_BACKEND_NAMES)} "
            "(aot: as frozen apps; cached, it imports no numba)."
        ),
    ] = PLAN_BACKEND_NAMES[0],
) -> None:
    """Score a CSV with a plan, using exactly the kernels the frozen app uses."""
    from bundler.backends import get_backend
    from bundler.errors import InputError, SpecError
    from mlbundle_runtime.backend import BackendError
    from mlbundle_runtime.inputs import InputError as AppInputError
    from mlbundle_runtime.plan import PlanError, load_plan
    from mlbundle_runtime.scorer import Scorer

    _existing(plan_dir, "bundle score")
    _existing(input_csv, "--input")
    try:
        plan = load_plan(plan_dir)
    except PlanError as exc:
        raise SpecError(str(exc)) from None
    if backend not in PLAN_BACKEND_NAMES:
        valid = ", ".join(PLAN_BACKEND_NAMES)
        raise SpecError(f"--backend: unknown scoring backend {backend!r}; valid: {valid}")
    chosen = get_backend(backend)
    try:
        kernels = chosen.kernels(chosen.compile())
    except BackendError as exc:
        raise SpecError(f"--backend: {exc}") from None
    if not input_csv.is_file():
        raise UsageError(f"--input: {input_csv} is a folder; expected a CSV file")
    try:
        n = Scorer(plan, kernels).score_csv_file(input_csv, output_csv)
    except AppInputError as exc:
        raise InputError(str(exc)) from None
    except (UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{input_csv}: cannot be read as a UTF-8 CSV ({exc})") from None
    out.print(f"scored {n} rows into {output_csv}")


@app.command()
def keygen(
    private_key: Annotated[Path, typer.Argument(help="Where to write the private key (PEM).")],
    public_key: Annotated[Path, typer.Argument(help="Where to write the public key (PEM).")],
) -> None:
    """Make an ed25519 key pair for signing bundle manifests (never overwrites a key)."""
    from bundler.manifest import keygen as make_keys

    make_keys(private_key, public_key)
    out.print(f"private key: {private_key} (keep it secret; mode 0600)\npublic key:  {public_key}")


@app.command()
def verify(
    path: Annotated[
        Path, typer.Argument(help="A onedir folder, onefile binary, installer or .mlpack.")
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            "--public-key",
            help="Public key: also check the signature (a pack: required, the release key).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every file against the bundle's manifest, its record's schema and signature;
    a model pack, as an app holding the release key checks it."""
    import json

    from bundler.pack import is_pack
    from bundler.verify import verify_bundle

    _existing(path, "bundle verify")
    if key is not None:
        _existing(key, "--key")
    if path.is_file() and is_pack(path):
        _verify_pack(path, key, as_json)
        return
    report = verify_bundle(path, key)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for line in report.lines():
            out.print(Text(line))
    if not report.ok:
        raise typer.Exit(VERIFY_FAILED)


#: Exit code of `bundle verify` when the bundle does not match its manifest or signature.
VERIFY_FAILED = 11


def _verify_pack(path: Path, key: Path | None, as_json: bool) -> None:
    """A pack has no unsigned part to check alone: without the release key, nothing."""
    import json

    from bundler.pack import pack_lines, verify_pack
    from mlbundle_runtime.packs import PackError

    if key is None:
        raise UsageError(
            f"bundle verify {path}: a model pack is checked against the release key; "
            "give --public-key PUBLIC.pem (the app's [updates] public_key)"
        )
    try:
        checked = verify_pack(path, key)
    except PackError as exc:
        if as_json:
            print(json.dumps({"ok": False, "path": str(path), "problem": str(exc)}, indent=2))
        else:
            out.print(Text(f"FAILED {exc}"), highlight=False)
        raise typer.Exit(VERIFY_FAILED) from None
    expired = checked.expired()
    if as_json:
        report = {"ok": not expired, "path": str(path), "expired": expired, "meta": checked.meta}
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        out.print(
            Text(
                f"ok {path}: signature by key {checked.meta.get('key_id')} and all "
                f"{len(checked.files)} files' sha256 match"
            ),
            highlight=False,
        )
        for line in pack_lines(checked.meta, None):
            out.print(Text(f"  {line}"), highlight=False)
        if expired:
            out.print(Text(f"FAILED {path}: expired at {checked.meta['expires']}"))
    if expired:
        raise typer.Exit(VERIFY_FAILED)


@app.command()
def inspect(
    path: Annotated[
        Path, typer.Argument(help="A onedir folder, onefile binary, installer or .mlpack.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Show the model record inside a bundle, without running it; for a model pack, its
    manifest and a summary of its record (unverified: `bundle verify` checks it)."""
    import json

    from bundler.inspect import read_record, record_table
    from bundler.pack import is_pack, pack_lines, peek

    _existing(path, "bundle inspect")
    if path.is_file() and is_pack(path):
        meta, pack_record = peek(path)
        if as_json:
            print(json.dumps({"pack": meta, "record": pack_record}, indent=2, sort_keys=True))
            return
        out.print(Text(f"{path} (signature not checked: bundle verify --public-key does)"))
        for line in pack_lines(meta, pack_record):
            out.print(Text(f"  {line}"), highlight=False)
        return
    record = read_record(path)
    if as_json:
        print(json.dumps(record, indent=2, sort_keys=True))
    else:
        out.print(record_table(record))


#: Added to every compiler refusal: the model can still ship, uncompiled.
PASSTHROUGH_HINT = (
    'To ship this model without compiling it, set backend = "passthrough" in the spec\'s '
    "[build] table: the app then carries scikit-learn and the joblib file(s), still gated "
    "and recorded (a larger bundle that starts more slowly)."
)


def _internal_error(exc: Exception) -> int:
    """An exception no stage expected is a bug: one line to report, the traceback on request."""
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(exc, file=sys.stderr)
    hint = "" if os.environ.get(DEBUG_ENV) else f"; set {DEBUG_ENV}=1 to see the traceback"
    err.print(
        Text("internal error: ", style="bold red")
        + Text(
            f"{type(exc).__name__}: {exc} (a bug in mlbundle, not in your files: please report "
            f"it with the command you ran{hint})"
        ),
        highlight=False,
    )
    return INTERNAL_ERROR


def _message(exc: BundleError) -> str:
    text = str(exc)
    if isinstance(exc, UnsupportedEstimatorError) and "passthrough" not in text:
        text += "\n" + PASSTHROUGH_HINT
    return text


def _stop(signum: int, _frame: object) -> None:
    """SIGINT and SIGTERM end the command through ``Interrupted``, so that every stage's
    clean-up runs (``bundler.build``) and ``main`` says, in one line, what was kept."""
    raise Interrupted(signum)


def _interrupted(exc: BaseException) -> int:
    """One line, no traceback: which signal, and what became of the output."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # a second one must not cut this line short
        signal.signal(sig, signal.SIG_IGN)
    stopped = exc if isinstance(exc, Interrupted) else Interrupted()
    detail = f"; {stopped.detail}" if stopped.detail else ""
    err.print(Text(f"bundle: interrupted by {stopped.signal_name}{detail}"), highlight=False)
    return stopped.exit_code


def main() -> None:
    """Entry point: run the app, mapping every expected failure to a message and exit code."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop)
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(code) is returned, not raised, here
            sys.exit(code)
    except BundleError as exc:
        err.print(Text("error: ", style="bold red") + Text(_message(exc)), highlight=False)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (Interrupted, KeyboardInterrupt) as exc:
        sys.exit(_interrupted(exc))
    except typer.Abort as exc:  # click's word for a KeyboardInterrupt it caught itself
        if isinstance(exc.__cause__, (Interrupted, KeyboardInterrupt)):
            sys.exit(_interrupted(exc.__cause__))
        err.print("aborted")
        sys.exit(130)
    except _CLICK_ERROR as exc:  # usage errors: typer shows them as click would
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code != 1 else UsageError.exit_code)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        sys.exit(_internal_error(exc))


#: typer's usage-error base class (it vendors click, so take it from a public subclass).
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")
