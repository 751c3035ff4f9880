"""Load and validate a bundle spec (``specs/<app>.toml``) into frozen models.

The spec is the only file a user writes, and every later stage (compile, gate,
freeze) trusts it, so all of its problems are found here, before any work
starts, and reported at once: one line per problem, each naming the spec file,
the dotted key, what was found and what would be valid. pydantic does the
walking; its errors are translated here so that no pydantic wording, URL or
traceback reaches the user.

Paths in the spec are relative to the spec file's folder (so a spec works from
any working directory) and are returned resolved and absolute. Input files must
exist now; ``build.output_dir`` need not.

The models are strict: TOML has real types, so ``tolerance = "1e-9"``,
``modes = "onedir"`` or ``version = 1.0`` are mistakes to report, not values
to coerce.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import tomllib
import types
import urllib.parse
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bundler.backends import BACKEND_NAMES
from bundler.errors import SpecError

Metric = Literal["accuracy", "balanced_accuracy", "f1", "roc_auc", "r2", "mae", "rmse"]
Average = Literal["macro", "weighted"]
Mode = Literal["onedir", "onefile"]
Installer = Literal["tar.gz", "deb", "rpm"]

#: Metric names ``gate.confidence.metric`` accepts (``mlbundle_runtime.metrics`` implements each).
METRICS: tuple[str, ...] = get_args(Metric)
AVERAGES: tuple[str, ...] = get_args(Average)
MODES: tuple[str, ...] = get_args(Mode)
#: Backend names ``build.backend`` accepts: the registry's (``bundler.backends``).
BACKENDS: tuple[str, ...] = BACKEND_NAMES
INSTALLERS: tuple[str, ...] = get_args(Installer)
#: What a spec without ``build.installers`` gets: the RPM only when asked for (rpmbuild).
DEFAULT_INSTALLERS: tuple[str, ...] = ("tar.gz", "deb")
#: Top-level tables of a spec, in the order the documentation lists them.
TABLES: tuple[str, ...] = (
    "app",
    "model",
    "extractor",
    "inputs",
    "outputs",
    "gate",
    "data",
    "audit",
    "build",
    "updates",
)

#: The app name becomes the executable's (and its folder's) name on every OS, and the
#: package name of the .deb and the RPM: Debian's rule (lowercase letters, digits, ``+ - .``,
#: at least 2 characters), starting with a letter as a command should.
APP_NAME_PATTERN = r"^[a-z][a-z0-9+.-]{1,63}$"
#: The app version is the .deb's upstream version and the RPM's Version, unchanged: what
#: both accept (a digit first; letters, digits, ``.``, ``+``, ``~``; no ``-``, which RPM
#: reserves for the Release and Debian for the revision).
APP_VERSION_PATTERN = r"^[0-9][A-Za-z0-9.+~]{0,63}$"
_APP_VERSION = re.compile(APP_VERSION_PATTERN)
#: The smallest icon a desktop shows sharply (the hicolor theme's 256x256 folder).
ICON_MIN_SIZE = 256
_APP_NAME = re.compile(APP_NAME_PATTERN)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_HEX = re.compile(r"^[0-9a-fA-F]*$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
#: ``Name <email>``, as Debian's Maintainer field (and RFC 5322's name-addr) writes a person.
_MAINTAINER = re.compile(r"^[^<>@\s](?:[^<>@\n]*[^<>@\s])? <[^<>@\s]+@[^<>@\s]+\.[^<>@\s]+>$")
MAINTAINER_EXAMPLE = "Example Release Manager <release@example.org>"
#: An SPDX licence identifier or expression: ``Apache-2.0``, ``MIT OR Apache-2.0``,
#: ``LicenseRef-Proprietary``.
_LICENSE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+:()\- ]*[A-Za-z0-9+)]$|^[A-Za-z0-9]$")

_DEFAULT_TOLERANCE_TEXT = "1e-9"
DEFAULT_TOLERANCE = float(_DEFAULT_TOLERANCE_TEXT)
DEFAULT_OUTPUT_DIR = "dist"


# --------------------------------------------------------------------------- validation helpers


def _problem(message: str) -> PydanticCustomError:
    """An error whose message is final: the translator prints it after the key as is."""
    return PydanticCustomError("spec", "{message}", {"message": message})


def _show(value: Any) -> str:
    """A found value as the user wrote it, shortened so one problem stays on one line."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _toml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "table"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, time):
        return "time"
    return type(value).__name__


def _found(value: Any) -> str:
    """``found <TOML type> <value>``, without dumping whole tables."""
    kind = _toml_type(value)
    if kind == "table":
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"{kind} {value.isoformat()}"
    return f"{kind} {_show(value)}"


def _root(info: ValidationInfo) -> Path:
    """The folder spec paths are relative to: the spec's, or the working directory."""
    context = info.context if isinstance(info.context, Mapping) else {}
    root = context.get("root")
    return Path(root) if root is not None else Path.cwd()


def _resolve(raw: str, info: ValidationInfo) -> Path:
    return (_root(info) / Path(raw).expanduser()).resolve()


def _existing_file(value: Any, info: ValidationInfo) -> Any:
    """Resolve a spec-relative path and require a file there now, not at build time."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str):
        raise _problem(f"expected a file path (a string), found {_found(value)}")
    if not value.strip():
        raise _problem("empty; expected the path of a file, relative to the spec's folder")
    resolved = _resolve(value, info)
    if not resolved.exists():
        raise _problem(f"file {value} not found (resolved to {resolved})")
    if not resolved.is_file():
        raise _problem(f"{value} is not a file (resolved to {resolved}, a folder)")
    return resolved


def _non_empty(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise _problem("empty; expected a non-empty string")
    return value


def _one_of(value: Any, options: tuple[str, ...]) -> Any:
    """Reject an unknown choice, listing the valid ones (pydantic's own message would not)."""
    if isinstance(value, str) and value not in options:
        hint = difflib.get_close_matches(value, options, n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise _problem(
            f"{_show(value)} is not valid; expected one of {', '.join(options)}{suggestion}"
        )
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- models


class _Table(BaseModel):
    """Base of every spec table: unknown keys are errors, values are immutable and typed."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


#: ``[app] entry`` given as a callable: ``package.module:function``.
ENTRY_CALLABLE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
_MODULE_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path, value: Any, expected: str) -> tuple[int, int]:
    """The PNG's width and height, read (and its data checked) by Pillow."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            kind, size = image.format, image.size
            image.load()  # a truncated or corrupt image fails here, not in the installer
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise _problem(f"{value} is not a readable PNG image ({exc}); {expected}") from None
    if kind != "PNG":
        raise _problem(f"{value} is not a PNG file (Pillow reads it as {kind}); {expected}")
    return size


def _existing_folder(value: Any, info: ValidationInfo) -> Path:
    if not isinstance(value, str) or not value.strip():
        raise _problem(f"expected a folder path (a string), found {_found(value)}")
    resolved = _resolve(value, info)
    if not resolved.is_dir():
        what = "is a file, not a folder" if resolved.exists() else "not found"
        raise _problem(f"folder {value} {what} (resolved to {resolved})")
    return resolved


def _module_names(value: Any, what: str) -> tuple[str, ...]:
    expected = f'expected an array of {what}, e.g. ["pandas", "mytool.plugins"]'
    if not isinstance(value, list | tuple):
        raise _problem(f"{expected}; found {_found(value)}")
    for item in value:
        if not isinstance(item, str) or not _MODULE_NAME.fullmatch(item):
            raise _problem(f"{_show(item)} is not a module name; {expected}")
    return tuple(value)


class DataFile(_Table):
    """One ``[app] datas`` entry: a file or folder of the application, and the folder it
    goes to inside the bundle (relative to the bundle's root, as PyInstaller's datas)."""

    src: Path
    dest: str = "."

    @field_validator("src", mode="before")
    @classmethod
    def _src(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise _problem(f"expected a file or folder path (a string), found {_found(value)}")
        resolved = _resolve(value, info)
        if not resolved.exists():
            raise _problem(f"{value} not found (resolved to {resolved})")
        return resolved

    @field_validator("dest", mode="before")
    @classmethod
    def _dest(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = Path(value).parts
            if Path(value).is_absolute() or ".." in parts or not value.strip():
                raise _problem(
                    f"{_show(value)} is not valid; expected a folder inside the bundle, "
                    'relative and without "..", e.g. "templates" or "."'
                )
        return value


class App(_Table):
    """``[app]``: how the frozen application is named and presented, and, for the release
    engineer's own application, what to freeze (without ``entry``: the built-in one)."""

    name: str
    version: str
    title: str
    description: str = ""
    #: Who answers for the installed package: the .deb's Maintainer; a release requires it.
    maintainer: str | None = None
    #: The app's web page (http or https): the .deb's Homepage.
    homepage: str | None = None
    #: The app's licence, an SPDX identifier or expression: recorded, and in the .deb.
    license: str | None = None
    #: The application to freeze: a script (a path) or ``package.module:function``.
    entry: Path | str | None = None
    #: Import roots of the application's own packages (folders, relative to the spec).
    sources: tuple[Path, ...] = ()
    #: Extra files and folders the application reads at run time, and where they go.
    datas: tuple[DataFile, ...] = ()
    #: Modules PyInstaller cannot see the application import (plugins, ``importlib``).
    hidden_imports: tuple[str, ...] = ()
    #: False: a windowed binary (no console window on Windows and macOS).
    console: bool = True
    #: A PNG icon for the application.
    icon: Path | None = None

    @field_validator("entry", mode="before")
    @classmethod
    def _entry(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, str) and ENTRY_CALLABLE.fullmatch(value.strip()):
            return value.strip()
        if isinstance(value, str) and value.strip().endswith(".py"):
            return _existing_file(value, info)
        raise _problem(
            f"{_show(value)} is not valid; expected a script path ending in .py, relative to "
            'the spec (e.g. "../src/fieldreport.py"), or "package.module:function" '
            '(e.g. "fieldreport.cli:main")'
        )

    @field_validator("sources", mode="before")
    @classmethod
    def _sources(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list | tuple):
            raise _problem(
                f'expected an array of folders (import roots), e.g. ["../src"]; found '
                f"{_found(value)}"
            )
        return tuple(_existing_folder(v, info) for v in value)

    @field_validator("hidden_imports", mode="before")
    @classmethod
    def _hidden(cls, value: Any) -> Any:
        return _module_names(value, "module names")

    @field_validator("icon", mode="before")
    @classmethod
    def _icon(cls, value: Any, info: ValidationInfo) -> Any:
        path = _existing_file(value, info)
        expected = (
            f"expected a square PNG image at least {ICON_MIN_SIZE}x{ICON_MIN_SIZE} pixels "
            "(e.g. 256x256 or 512x512)"
        )
        with open(path, "rb") as f:
            if f.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
                raise _problem(f"{value} is not a PNG file; {expected}")
        width, height = _png_size(path, value, expected)
        if width != height or width < ICON_MIN_SIZE:
            what = "not square" if width != height else "too small"
            raise _problem(f"{value} is {width}x{height} pixels ({what}); {expected}")
        return path

    @field_validator("maintainer", mode="before")
    @classmethod
    def _maintainer(cls, value: Any) -> Any:
        if isinstance(value, str) and not _MAINTAINER.fullmatch(value.strip()):
            raise _problem(
                f'{_show(value)} is not valid; expected "Name <email>", e.g. '
                f'"{MAINTAINER_EXAMPLE}" (what Debian\'s Maintainer field requires)'
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("homepage", mode="before")
    @classmethod
    def _homepage(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        url = urllib.parse.urlsplit(value.strip())
        if (
            url.scheme not in ("http", "https")
            or not url.netloc
            or any(c.isspace() for c in value.strip())
        ):
            raise _problem(
                f"{_show(value)} is not valid; expected an http:// or https:// URL, e.g. "
                '"https://example.org/penguins"'
            )
        return value.strip()

    @field_validator("license", mode="before")
    @classmethod
    def _license(cls, value: Any) -> Any:
        if isinstance(value, str) and not _LICENSE.fullmatch(value.strip()):
            raise _problem(
                f"{_show(value)} is not valid; expected an SPDX licence identifier or "
                'expression, e.g. "Apache-2.0", "MIT OR Apache-2.0" or "LicenseRef-Proprietary"'
            )
        return value.strip() if isinstance(value, str) else value

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if isinstance(value, str) and not _APP_NAME.fullmatch(value):
            raise _problem(
                f"{_show(value)} is not valid; expected 2-64 characters matching "
                f"{APP_NAME_PATTERN}: a lowercase letter, then lowercase letters, digits, "
                "'+', '-' or '.', no spaces or capitals (it becomes the executable's name "
                "and the .deb's and RPM's package name)"
            )
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        value = _non_empty(value)
        if isinstance(value, str) and not _APP_VERSION.fullmatch(value):
            hint = ""
            if "-" in value:
                hint = "; no '-' (RPM keeps it for the release): for a pre-release write " + (
                    f"{value.replace('-', '~')!r}, which sorts before the release"
                )
            raise _problem(
                f"{_show(value)} is not valid; expected what a .deb and an RPM both accept "
                "as written: a digit, then letters, digits, '.', '+' or '~', e.g. \"1.0.0\" or "
                f'"2.1~rc1"{hint}'
            )
        return value

    @field_validator("title", mode="before")
    @classmethod
    def _required_text(cls, value: Any) -> Any:
        return _non_empty(value)


class Artifact(_Table):
    """``[model]`` / ``[extractor]``: a joblib file pinned by hash, so builds are reproducible."""

    path: Path
    sha256: str
    version: str

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any, info: ValidationInfo) -> Any:
        return _existing_file(value, info)

    @field_validator("sha256", mode="before")
    @classmethod
    def _sha256(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        digest = value.strip()
        if not _SHA256.fullmatch(digest):
            if not _HEX.fullmatch(digest):
                bad = next(c for c in digest if not _HEX.fullmatch(c))
                detail = f"contains {bad!r}, which is not a hexadecimal digit"
            else:
                detail = f"has {len(digest)} characters"
            raise _problem(
                f"{_show(value)} is not a sha256 digest: it {detail}; expected 64 hexadecimal "
                "characters (e.g. the output of `sha256sum FILE`)"
            )
        return digest.lower()

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        return _non_empty(value)


class ModelArtifact(Artifact):
    """``[model]``: the artifact, plus the extractor version it was trained with (version sync)."""

    extractor_version: str | None = None

    @field_validator("extractor_version", mode="before")
    @classmethod
    def _extractor_version(cls, value: Any) -> Any:
        return _non_empty(value)


class DataRef(_Table):
    """``[data.training]`` / ``[data.validation]``: the data a model was trained or validated on.

    ``location`` is where the data lives (a URL, a bucket, a share); ``path`` is an
    optional local copy, hashed against ``sha256`` when present.
    """

    version: str
    location: str
    sha256: str
    path: Path | None = None

    @field_validator("version", "location", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _non_empty(value)

    @field_validator("sha256", mode="before")
    @classmethod
    def _sha256(cls, value: Any) -> Any:
        return Artifact._sha256(value)

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any, info: ValidationInfo) -> Any:
        return _existing_file(value, info)


class Data(_Table):
    """``[data]``: the training and validation data of this model version."""

    training: DataRef | None = None
    validation: DataRef | None = None


When = str | date


class Audit(_Table):
    """``[audit]``: what only people know. A release build requires every field."""

    model_author: str | None = None
    model_date: When | None = None
    approved_by: str | None = None
    approved_date: When | None = None
    approval_grounds: str | None = None
    privacy_reviewer: str | None = None
    privacy_review_date: When | None = None
    security_reviewer: str | None = None
    security_review_date: When | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        return _non_empty(value)

    def missing(self) -> list[str]:
        """Audit fields not filled in (a release needs none missing)."""
        return [name for name in type(self).model_fields if getattr(self, name) is None]

    def as_text(self) -> dict[str, str | None]:
        return {
            name: (value.isoformat() if isinstance(value, date) else value)
            for name, value in ((n, getattr(self, n)) for n in type(self).model_fields)
        }


class InputDoc(_Table):
    """``[inputs.<name>]``: documentation of one input; the names themselves come from the model."""

    description: str = ""
    unit: str = ""


class Outputs(_Table):
    """``[outputs]``: documentation of the prediction: what it means, how to consume it."""

    description: str = ""
    consume: str = ""
    #: A classifier's prediction whose top probability is under this is shown (and
    #: written) as uncertain; None: never. The consume text should say the same.
    uncertain_below: float | None = None
    #: A multi-output model's target names, one per column of ``y`` in order: they name
    #: its output columns (``price``, ``prediction_colour``...); default ``y0, y1, ...``.
    targets: tuple[str, ...] | None = None

    @field_validator("targets", mode="before")
    @classmethod
    def _targets(cls, value: Any) -> Any:
        expected = (
            'expected a list of distinct names, one per target, e.g. ["price", "rent"] (no '
            "commas, quotes or line breaks: they name CSV columns)"
        )
        if not isinstance(value, list | tuple) or len(value) < 2:
            raise _problem(f"{expected}; found {_found(value)}")
        bad = [
            v
            for v in value
            if not isinstance(v, str)
            or not v.strip()
            or v != v.strip()
            or any(c in v for c in ',"\r\n')
        ]
        if bad:
            raise _problem(f"{expected}; found {_show(bad[0])}")
        if len(set(value)) != len(value):
            raise _problem(f"{expected}; found a name twice in {_show(list(value))}")
        return tuple(value)

    @field_validator("uncertain_below", mode="before")
    @classmethod
    def _uncertain_below(cls, value: Any) -> Any:
        expected = "expected a probability between 0 and 1, e.g. 0.6"
        if not _is_number(value) or math.isnan(float(value)):
            raise _problem(f"{expected}; found {_found(value)}")
        if not 0 < float(value) <= 1:
            raise _problem(f"{value!r} is not above 0 and at most 1; {expected}")
        return float(value)


class E2EGate(_Table):
    """``[gate.e2e]``: rows whose expected outputs the compiled plan must reproduce."""

    path: Path
    tolerance: float = DEFAULT_TOLERANCE
    #: The output columns to compare (default: every output the model produces).
    compare: tuple[str, ...] | None = None

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any, info: ValidationInfo) -> Any:
        return _existing_file(value, info)

    @field_validator("compare", mode="before")
    @classmethod
    def _compare(cls, value: Any) -> Any:
        expected = 'expected a list of output column names, e.g. ["prediction"]'
        if not isinstance(value, list) or not value:
            raise _problem(f"{expected}; found {_found(value)}")
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise _problem(f"{expected}; found {_show(value)}")
        twice = sorted({v for v in value if value.count(v) > 1})
        if twice:
            raise _problem(f"{', '.join(map(repr, twice))} listed twice; {expected}")
        return tuple(v.strip() for v in value)

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0:
            raise _problem(
                f"{_show(value)} is not valid; expected a finite number >= 0 "
                f"(default {_DEFAULT_TOLERANCE_TEXT})"
            )
        return value


class ConfidenceGate(_Table):
    """``[gate.confidence]``: held-out rows and the range the chosen metric must fall in."""

    path: Path
    target: str
    metric: Metric
    range: tuple[float, float]
    average: Average = "macro"
    pos_label: str | None = None
    #: A multi-output model's target whose predictions the metric scores (its name, as in
    #: ``[outputs] targets``); required for such a model, refused for a single output.
    output: str | None = None

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, value: Any, info: ValidationInfo) -> Any:
        return _existing_file(value, info)

    @field_validator("output", mode="before")
    @classmethod
    def _output(cls, value: Any) -> Any:
        return _non_empty(value)

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, value: Any) -> Any:
        return _non_empty(value)

    @field_validator("metric", mode="before")
    @classmethod
    def _metric(cls, value: Any) -> Any:
        return _one_of(value, METRICS)

    @field_validator("average", mode="before")
    @classmethod
    def _average(cls, value: Any) -> Any:
        return _one_of(value, AVERAGES)

    @field_validator("pos_label", mode="before")
    @classmethod
    def _pos_label(cls, value: Any) -> Any:
        return _non_empty(value)

    @field_validator("range", mode="before")
    @classmethod
    def _range(cls, value: Any) -> Any:
        expected = "expected two numbers [min, max] with min <= max, e.g. [0.9, 1.0]"
        if not isinstance(value, list | tuple):
            raise _problem(f"{expected}; found {_found(value)}")
        if len(value) != 2 or not all(_is_number(v) for v in value):
            raise _problem(f"{expected}; found {_show(list(value))}")
        low, high = float(value[0]), float(value[1])
        if math.isnan(low) or math.isnan(high):
            raise _problem(f"{expected}; found nan in {_show(list(value))}")
        if low > high:
            raise _problem(f"min {value[0]!r} is greater than max {value[1]!r}; {expected}")
        return (low, high)


class Gate(_Table):
    """``[gate]``: both checks a release must pass."""

    e2e: E2EGate
    confidence: ConfidenceGate


#: What ``[updates] public_key`` must hold: what ``bundle keygen`` writes as the public key.
PUBLIC_KEY_EXPECTED = (
    "expected an ed25519 public key PEM (`-----BEGIN PUBLIC KEY-----`, as `bundle keygen` "
    "writes it), relative to the spec's folder"
)
SOURCE_EXPECTED = (
    'expected an https:// URL of a pack (e.g. "https://example.org/penguins/latest.mlpack") '
    'or the absolute path of a folder on the users\' machines (e.g. "/srv/models/penguins")'
)


def raw_public_key(path: Path) -> bytes:
    """The 32 raw bytes of the ed25519 public key PEM at ``path`` (what the app trusts);
    ValueError saying what is wrong (never quoting the file, which might be a private key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = path.read_bytes()
    if b"PRIVATE KEY-----" in data:
        raise ValueError("holds a private key: the app must carry only the public key")
    try:
        key = serialization.load_pem_public_key(data)
    except Exception:  # ValueError, UnsupportedAlgorithm: never chain the parser's text
        raise ValueError("is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"is a {type(key).__name__.lstrip('_')}, not an ed25519 public key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Updates(_Table):
    """``[updates]``: the app accepts model packs signed by this release key, and (``source``)
    looks for them at a URL or in a folder when the user runs ``models check``.

    The key is checked here, so a build never freezes a key no pack can be verified with."""

    public_key: Path
    source: str | None = None

    @field_validator("public_key", mode="before")
    @classmethod
    def _public_key(cls, value: Any, info: ValidationInfo) -> Any:
        path = _existing_file(value, info)
        try:
            raw_public_key(path)
        except OSError as exc:
            raise _problem(f"{value} cannot be read ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise _problem(f"{value} {exc}; {PUBLIC_KEY_EXPECTED}") from None
        return path

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: Any) -> Any:
        if not isinstance(value, str):
            raise _problem(f"{SOURCE_EXPECTED}; found {_found(value)}")
        text = value.strip()
        if not text or any(c.isspace() or ord(c) < 32 for c in text):
            raise _problem(f"{_show(value)} is not valid; {SOURCE_EXPECTED}")
        if "://" in text:
            url = urllib.parse.urlsplit(text)
            if url.scheme != "https" or not url.hostname or url.username or url.password:
                why = "not https" if url.scheme != "https" else "no host, or a password in it"
                raise _problem(f"{_show(value)} is not valid ({why}); {SOURCE_EXPECTED}")
            return text
        if not (PurePosixPath(text).is_absolute() or PureWindowsPath(text).is_absolute()):
            raise _problem(
                f"{_show(value)} is not valid (a relative path: the app runs on other "
                f"machines, from other folders); {SOURCE_EXPECTED}"
            )
        return text

    @property
    def raw_key(self) -> bytes:
        """The release key's 32 raw bytes (read again: the spec holds only its path)."""
        return raw_public_key(self.public_key)


class Build(_Table):
    """``[build]``: which PyInstaller layouts to produce, with which backend, and where."""

    modes: tuple[Mode, ...] = MODES
    backend: str = BACKENDS[0]
    installers: tuple[Installer, ...] = DEFAULT_INSTALLERS
    output_dir: Path = Field(default=Path(DEFAULT_OUTPUT_DIR), validate_default=True)
    #: Modules the bundle may ship although the backend forbids them (e.g. scipy, for an
    #: application that needs it): a several times larger, slower-starting bundle.
    allow_imports: tuple[str, ...] = ()

    @field_validator("allow_imports", mode="before")
    @classmethod
    def _allow(cls, value: Any) -> Any:
        return _module_names(value, "top-level module names")

    @field_validator("modes", mode="before")
    @classmethod
    def _modes(cls, value: Any) -> Any:
        expected = f"expected a non-empty array of distinct values from {', '.join(MODES)}"
        if not isinstance(value, list | tuple):
            raise _problem(f"{expected}; found {_found(value)}")
        if not value:
            raise _problem(f"empty; {expected}")
        seen: list[str] = []
        for item in value:
            if not isinstance(item, str) or item not in MODES:
                raise _problem(f"{_show(item)} is not valid; {expected}")
            if item in seen:
                raise _problem(f"{item!r} is listed twice; {expected}")
            seen.append(item)
        return tuple(seen)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> Any:
        return _one_of(value, BACKENDS)

    @field_validator("installers", mode="before")
    @classmethod
    def _installers(cls, value: Any) -> Any:
        expected = f"expected an array of distinct values from {', '.join(INSTALLERS)}"
        if not isinstance(value, list | tuple):
            raise _problem(f"{expected}; found {_found(value)}")
        for item in value:
            if not isinstance(item, str) or item not in INSTALLERS:
                raise _problem(f"{_show(item)} is not valid; {expected}")
        if len(set(value)) != len(value):
            raise _problem(f"a value is listed twice; {expected}")
        return tuple(value)

    @model_validator(mode="after")
    def _installers_need_onedir(self) -> Build:
        if self.installers and "onedir" not in self.modes:
            raise _problem(
                'installers are made from the onedir build; add "onedir" to build.modes '
                "or set build.installers = []"
            )
        return self

    @field_validator("output_dir", mode="before")
    @classmethod
    def _output_dir(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, Path):
            value = str(value)
        if not isinstance(value, str):
            raise _problem(f"expected a folder path (a string), found {_found(value)}")
        if not value.strip():
            raise _problem("empty; expected a folder path, relative to the spec's folder")
        resolved = _resolve(value, info)
        if resolved.exists() and not resolved.is_dir():
            raise _problem(
                f"{value} is not a folder (resolved to {resolved}, an existing file); "
                "expected a folder path (it need not exist yet)"
            )
        return resolved


class Spec(_Table):
    """A validated bundle spec; every path in it is absolute.

    ``path`` is the spec file and ``root`` its folder, which relative paths in
    the spec were resolved against. Neither may be written in the TOML.
    """

    app: App
    model: ModelArtifact
    extractor: Artifact | None = None
    inputs: dict[str, InputDoc] = Field(default_factory=dict)
    outputs: Outputs = Field(default_factory=Outputs)
    gate: Gate
    data: Data = Field(default_factory=Data)
    audit: Audit = Field(default_factory=Audit)
    build: Build = Field(default_factory=lambda: {}, validate_default=True)  # type: ignore[arg-type]
    #: Without it, the app accepts no model pack (it updates only by reinstalling).
    updates: Updates | None = None
    path: Path
    root: Path


# --------------------------------------------------------------------------- loading


def load_spec(path: Path) -> Spec:
    """Read, parse and validate the spec at ``path``; raise ``SpecError`` listing every problem."""
    path = Path(path)
    label = str(path)
    data = _parse(path, label)
    root = path.resolve().parent
    problems = [
        f"{label}: {key}: unknown key; valid top-level tables: {', '.join(TABLES)}"
        for key in ("path", "root")
        if key in data
    ]
    document = {k: v for k, v in data.items() if k not in ("path", "root")}
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(
            {**document, "path": path.resolve(), "root": root}, context={"root": root}
        )
    except ValidationError as exc:
        problems.extend(f"{label}: {line}" for line in _translate(exc))
    if problems or spec is None:
        raise SpecError("\n".join(problems))
    return spec


def _parse(path: Path, label: str) -> dict[str, Any]:
    """The TOML document, or a SpecError saying why the file cannot be one."""
    if not path.exists():
        raise SpecError(f"{label}: spec file not found (resolved to {path.resolve()})")
    if not path.is_file():
        raise SpecError(
            f"{label}: not a file (resolved to {path.resolve()}); "
            "expected a TOML bundle spec such as specs/<app>.toml"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"{label}: cannot read the spec: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{label}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}); "
            "expected a TOML file saved as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(_toml_syntax_message(label, text, str(exc))) from None


def _toml_syntax_message(label: str, text: str, message: str) -> str:
    """``file: invalid TOML at line L, column C: reason`` plus the offending line and a caret."""
    match = _TOML_POSITION.search(message)
    if match is None:
        return f"{label}: invalid TOML: {message}"
    line, column = int(match.group(1)), int(match.group(2))
    reason = message[: match.start()]
    result = f"{label}: invalid TOML at line {line}, column {column}: {reason}"
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        gutter = f"{line} | "
        result += f"\n  {gutter}{lines[line - 1]}\n  {' ' * len(gutter)}{' ' * (column - 1)}^"
    return result


# --------------------------------------------------------------------------- error translation


def _translate(exc: ValidationError) -> list[str]:
    """One ``key: problem`` line per pydantic error, in the order of the spec's tables."""
    lines: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        key = _dotted(loc)
        text = _describe(error, loc)
        line = f"{key}: {text}" if key else text
        if line not in lines:
            lines.append(line)
    return lines


def _dotted(loc: tuple[int | str, ...]) -> str:
    """``gate.confidence.metric``, ``build.modes[1]``, ``inputs."body mass".unit``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
        out = f"{out}.{name}" if out else name
    return out


def _table(loc: tuple[int | str, ...]) -> str:
    return f"[{_dotted(loc)}]" if loc else "the top level"


def _describe(error: Mapping[str, Any], loc: tuple[int | str, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "spec":
        return str(ctx["message"])
    if kind == "missing":
        if _is_model(_node_at(loc)):
            return f"missing (required table {_table(loc)})"
        return "missing (required)"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "string_type":
        hint = ""
        if _is_number(value) or isinstance(value, bool):
            shown = str(value).lower() if isinstance(value, bool) else str(value)
            hint = f'; write it in quotes: "{shown}"'
        return f"expected a string, found {_found(value)}{hint}"
    if kind in ("float_type", "int_type", "float_parsing", "finite_number"):
        return f"expected a number, found {_found(value)}"
    if kind == "bool_type":
        return f"expected true or false, found {_found(value)}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a table {_table(loc)}, found {_found(value)}"
    if kind in ("tuple_type", "list_type"):
        return f"expected an array, found {_found(value)}"
    if kind == "literal_error":
        return f"{_show(value)} is not valid; expected {ctx.get('expected', 'another value')}"
    # Anything else: pydantic's sentence, still without its URL.
    return f"{error['msg'][0].lower()}{error['msg'][1:]}; found {_found(value)}"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    parent = loc[:-1]
    node = _node_at(parent)
    if not parent:
        valid = TABLES
        where = "valid top-level tables"
    elif _is_model(node):
        valid = tuple(node.model_fields)
        where = f"valid keys in {_table(parent)}"
    else:
        return "unknown key"
    name = str(loc[-1])
    hint = difflib.get_close_matches(name, valid, n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return f"unknown key; {where}: {', '.join(valid)}{suggestion}"


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)


def _unwrap_optional(node: Any) -> Any:
    if get_origin(node) in (Union, types.UnionType):
        members = [a for a in get_args(node) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return node


def _node_at(loc: tuple[int | str, ...]) -> Any:
    """The model (or type) that validates the value at ``loc`` of a spec document."""
    node: Any = Spec
    for part in loc:
        node = _unwrap_optional(node)
        if _is_model(node) and isinstance(part, str):
            field = node.model_fields.get(part)
            if field is None:
                return None
            node = field.annotation
        elif get_origin(node) is dict:
            node = get_args(node)[1]
        else:
            return None
    return _unwrap_optional(node)
