"""``bundle pack``: a model that travels without its application (``.mlpack``).

The pack is made by the build's own stages up to the payload (verified artifacts, plan,
parity, gate, data checks, model record: ``bundler.build.prepare``), so a pack is never
a model a build would have refused. Its payload is the payload a build freezes, without
``updates.json`` (the release key belongs to the app, not to the model) and the package's
``__init__.py``; ``mlbundle_runtime.packs.write_pack`` signs it with the release key, twice
(the whole file, and its manifest, which an installed pack keeps).

The manifest also says what the model needs of the app that installs it (plan format,
kernels, inputs, task, classes), so the app can refuse a pack it cannot serve before it
unpacks anything. Format: docs/model-packs.md.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bundler.backends import get_backend
from bundler.build import _Clock, clear_stale, interruptible, owner_tag, prepare
from bundler.errors import PackRefusedError, SpecError, UsageError
from bundler.manifest import IntegrityError, load_private_key
from bundler.spec import Spec, load_spec, raw_public_key
from mlbundle_runtime.backend import kernel_source_hash
from mlbundle_runtime.bundle import RECORD_FILE
from mlbundle_runtime.packs import (
    MAGIC,
    META_FILE,
    PACK_SUFFIX,
    PAYLOAD_DIR,
    UPDATES_FILE,
    Pack,
    PackError,
    key_id,
    parse_model_version,
    read_pack,
    write_pack,
)

Progress = Callable[[str], None]

#: Payload files a pack never carries: the app's release key, and the package marker.
NOT_PACKED = ("__init__.py", UPDATES_FILE)


@dataclass(frozen=True)
class PackReport:
    """What ``bundle pack`` made: the file, its size, its manifest and how long it took."""

    path: Path
    size: int
    meta: dict[str, Any]
    files: int
    seconds: float
    stages: dict[str, float]
    warnings: list[str]


def pack(
    spec_path: Path,
    out: Path,
    *,
    signing_key: Path | None,
    expires: str | None = None,
    release: bool = False,
    progress: Progress = lambda _msg: None,
) -> PackReport:
    """Check the spec's model as a build does, then write its signed pack to ``out``.

    Everything the user can get wrong (the output name, the key, the expiry date, a
    model that cannot be packed) is refused before the model is loaded."""
    start = time.perf_counter()
    spec = load_spec(spec_path)
    out = Path(out)
    _check_out(out)
    key = load_private_key(signing_key)  # IntegrityError (exit 10) names the key file
    raw = key.public_key().public_bytes_raw()
    warnings = _check_packable(spec, raw, signing_key)
    expiry = parse_expires(expires)
    clock = _Clock()
    with interruptible() as folders:
        clear_stale(Path(tempfile.gettempdir()), f"mlbundle-pack-{spec.app.name}.")
        work = folders.mkdtemp(f"mlbundle-pack-{spec.app.name}.")
        prepared = prepare(
            spec, work, release=release, progress=progress, clock=clock, with_updates=False
        )
        with clock.stage("sign and write the pack", progress):
            files = payload_files(prepared.payload)
            meta = pack_meta(spec, prepared.compiled.header, prepared.record, raw, expiry)
            data = write_pack(meta, files, key.sign)
            write_atomically(out, data)
    return PackReport(
        path=out,
        size=len(data),
        meta={**meta, "files": len(files)},
        files=len(files),
        seconds=round(time.perf_counter() - start, 3),
        stages=clock.stages,
        warnings=[*prepared.warnings, *warnings],
    )


def pack_meta(
    spec: Spec,
    header: dict[str, Any],
    record: dict[str, Any],
    raw_key: bytes,
    expires: str | None,
) -> dict[str, Any]:
    """The pack's manifest (``write_pack`` adds ``files`` and ``pack_format``): which app and
    model version, its approval, and what the app must be able to serve."""
    targets = header.get("outputs")
    output = targets[0] if targets else header["output"]
    requires_output: dict[str, Any] = {
        "task": output["task"],
        "classes": [] if targets else list(output["classes"]),
    }
    if targets:  # a multi-output model: what each target answers, in order
        requires_output["targets"] = [
            {"name": t["name"], "task": t["task"], "classes": list(t["classes"])} for t in targets
        ]
    return {
        "app": spec.app.name,
        "model_version": spec.model.version,
        "approval": record["audit"]["status"],
        "built_at": record["build"]["time"],
        "expires": expires,
        "key_id": key_id(raw_key),
        "title": spec.app.title,
        "requires": {
            "plan_format": header["format_version"],
            "kernels": sorted({op["kernel"] for op in header["ops"]}),
            "kernel_source": kernel_source_hash(),
            "inputs": [{"name": i["name"], "kind": i["kind"]} for i in header["inputs"]],
            **requires_output,
        },
    }


def payload_files(folder: Path) -> dict[str, bytes]:
    """Every payload file a pack carries, by its posix name inside the payload folder."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.relative_to(folder).as_posix() not in NOT_PACKED
    }


def parse_expires(text: str | None) -> str | None:
    """``--expires``: a date (the pack expires at 00:00 UTC that day) or an ISO 8601 time,
    normalised to UTC (``2027-06-30T00:00:00Z``); one already past is refused."""
    if text is None:
        return None
    expected = "valid: an ISO 8601 date or UTC time, such as 2027-06-30 or 2027-06-30T12:00:00Z"
    try:
        moment = (
            datetime.combine(date.fromisoformat(text), datetime.min.time())
            if len(text.strip()) == 10
            else datetime.fromisoformat(text.strip())
        )
    except ValueError:
        raise UsageError(f"--expires: {text!r} is not a date; {expected}") from None
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    if moment <= datetime.now(UTC):
        raise UsageError(
            f"--expires: {text} is already past: every app would refuse the pack; {expected} "
            "in the future"
        )
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write_atomically(path: Path, data: bytes) -> None:
    """Temp file beside ``path``, flushed, then renamed: a reader (a web server, the app's
    ``models check`` on a shared folder) sees the old pack or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp-{owner_tag()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- reading, for `bundle inspect` and `bundle verify` ---------------------------------


def is_pack(path: Path) -> bool:
    """Whether ``path`` is meant as a pack: its name, or its first bytes."""
    if path.suffix == PACK_SUFFIX:
        return True
    try:
        with open(path, "rb") as f:
            return f.read(7) == MAGIC[:7]
    except OSError:
        return False


def peek(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A pack's manifest and model record, read WITHOUT checking its signature (``bundle
    inspect`` shows what a pack claims; ``bundle verify --public-key`` checks it)."""
    data = _read(path)
    if not data.startswith(MAGIC):
        raise IntegrityError(
            f"{path} is not a model pack (it does not start with {MAGIC!r}); expected a "
            f"{PACK_SUFFIX} file written by `bundle pack`"
        )
    body = data[len(MAGIC) :].split(b"\n", 1)[-1]
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            meta = json.loads(archive.read(META_FILE))
            names = set(archive.namelist())
            record_name = PAYLOAD_DIR + RECORD_FILE
            record = json.loads(archive.read(record_name)) if record_name in names else None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise IntegrityError(f"{path}: the pack is damaged ({exc})") from None
    if not isinstance(meta, dict):
        raise IntegrityError(f"{path}: the pack is damaged ({META_FILE} is not an object)")
    return meta, record if isinstance(record, dict) else None


def verify_pack(path: Path, public_key: Path) -> Pack:
    """The pack checked exactly as an app with ``public_key`` checks it (signatures, every
    file's hash, the manifest's fields); PackError (the runtime's message) otherwise."""
    try:
        raw = raw_public_key(Path(public_key))
    except OSError as exc:
        raise IntegrityError(f"cannot read the public key {public_key}: {exc.strerror}") from None
    except ValueError as exc:
        raise IntegrityError(f"{public_key} {exc}; expected an ed25519 public key PEM") from None
    return read_pack(_read(path), str(path), raw)


def pack_lines(meta: dict[str, Any], record: dict[str, Any] | None) -> list[str]:
    """What a release engineer checks before publishing a pack, one fact a line."""
    requires = meta.get("requires") or {}
    inputs = ", ".join(f"{i.get('name')} ({i.get('kind')})" for i in requires.get("inputs", []))
    lines = [
        f"app: {meta.get('app')} ({meta.get('title', '')})",
        f"model version: {meta.get('model_version')}",
        f"approval: {meta.get('approval')}",
        f"built at: {meta.get('built_at')}",
        f"expires: {meta.get('expires') or 'never'}",
        f"signed by key: {meta.get('key_id')}",
        f"pack format: {meta.get('pack_format')}",
        f"needs plan format {requires.get('plan_format')}, kernels: "
        + ", ".join(requires.get("kernels", [])),
        f"inputs: {inputs}",
        f"task: {requires.get('task')}; classes: "
        + (", ".join(map(str, requires.get("classes") or [])) or "-"),
        f"files: {len(meta.get('files') or {})}",
    ]
    if record is not None:
        model = record.get("model") or {}
        gate = record.get("gate") or {}
        confidence = gate.get("confidence") or {}
        lines.append(
            f"record: {model.get('algorithm') or model.get('class') or '?'} "
            f"{model.get('version', '')} (sha256 {str(model.get('sha256', '?'))[:16]}), audit "
            f"{(record.get('audit') or {}).get('status', '?')}"
        )
        if confidence:
            lines.append(
                f"gate: {confidence.get('metric')} {confidence.get('value')} in "
                f"{confidence.get('range')}"
            )
    return lines


# -- checks ----------------------------------------------------------------------------


def _check_out(out: Path) -> None:
    if out.suffix != PACK_SUFFIX:
        raise UsageError(
            f"--out: {out} does not end in {PACK_SUFFIX}; the desktop opens packs by that "
            f"name (e.g. --out penguins-1.1.0{PACK_SUFFIX})"
        )
    if out.is_dir():
        raise UsageError(f"--out: {out} is a folder; expected the pack's file name")
    if not out.resolve().parent.is_dir():
        raise UsageError(f"--out: the folder {out.parent} does not exist")


def _check_packable(spec: Spec, raw: bytes, signing_key: Path | None) -> list[str]:
    """Refuse a model no app could install; warn about a spec whose apps accept no pack."""
    if not get_backend(spec.build.backend).compiles_plan:
        raise PackRefusedError(
            f"{spec.path}: build.backend: {spec.build.backend!r} ships the model as pickles, "
            "without a plan: only a compiled plan can travel in a pack (the app checks its "
            'kernels and gate); valid: a plan backend such as "aot"'
        )
    try:
        parse_model_version(spec.model.version)
    except PackError:
        raise PackRefusedError(
            f"{spec.path}: model.version: {spec.model.version!r} is not a version an app can "
            "order (rollback protection); valid: numbers separated by dots, such as 1.2.0"
        ) from None
    key_name = str(signing_key) if signing_key is not None else "the signing key"
    if spec.updates is None:
        return [
            f"{spec.path} has no [updates] table: an app built from it accepts no pack; "
            f"add [updates] public_key = the public half of {key_name}"
        ]
    try:
        trusted = spec.updates.raw_key
    except (OSError, ValueError) as exc:  # changed since the spec was loaded
        raise SpecError(f"{spec.path}: updates.public_key: {exc}") from None
    if trusted != raw:
        raise PackRefusedError(
            f"{key_name} (key {key_id(raw)}) is not the release key in {spec.path}'s "
            f"updates.public_key ({spec.updates.public_key}, key {key_id(trusted)}): every app "
            "built from the spec would refuse the pack; sign with that key's private half"
        )
    return []


def _read(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
