"""bundler.spec: a valid spec loads with absolute paths, and every mistake is named precisely.

The messages are the product here: each problem must name the spec file, the
dotted key, what was found and what would be valid, all problems in one error,
with no pydantic wording or URL.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bundler import spec as spec_module
from bundler.errors import SpecError
from bundler.spec import (
    METRICS,
    Artifact,
    Build,
    InputDoc,
    ModelArtifact,
    Spec,
    load_spec,
)
from mlbundle_runtime import metrics as app_metrics

SHA = "0123456789abcdef" * 4
LABEL = "specs/x.toml"

BASE: dict[str, Any] = {
    "app": {"name": "penguins", "version": "1.0.0", "title": "Penguin species classifier"},
    "model": {"path": "../resources/model.joblib", "sha256": SHA, "version": "1.0.0"},
    "gate": {
        "e2e": {"path": "../resources/e2e.csv"},
        "confidence": {
            "path": "../resources/confidence.csv",
            "target": "species",
            "metric": "balanced_accuracy",
            "range": [0.9, 1.0],
        },
    },
}


# --------------------------------------------------------------------------- helpers


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def dump(document: dict[str, Any]) -> str:
    """A minimal TOML writer for spec-shaped documents (the stdlib only reads TOML)."""
    lines: list[str] = []

    def emit(prefix: str, table: dict[str, Any]) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in table.items() if isinstance(v, dict)}
        if prefix and (scalars or not tables):
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in scalars.items())
        for k, v in tables.items():
            emit(f"{prefix}.{_toml_key(k)}" if prefix else _toml_key(k), v)

    emit("", document)
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the resource files BASE points at; the cwd is the project."""
    tmp_path = tmp_path.resolve()  # messages show resolved paths
    resources = tmp_path / "resources"
    resources.mkdir()
    for name in ("model.joblib", "extractor.joblib", "e2e.csv", "confidence.csv"):
        (resources / name).write_bytes(b"x")
    (tmp_path / "specs").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(project: Path, document: dict[str, Any] | str) -> Path:
    text = document if isinstance(document, str) else dump(document)
    path = project / LABEL
    path.write_text(text, encoding="utf-8")
    return Path(LABEL)  # relative, as a user types it


def spec_error(project: Path, document: dict[str, Any] | str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(write(project, document))
    message = str(info.value)
    assert_clean(message)
    return message


def assert_clean(message: str) -> None:
    """Our wording only: no pydantic sentences, URLs or tracebacks."""
    for leak in ("pydantic", "errors.pydantic.dev", "http", "Traceback", "Input should"):
        assert leak not in message, message
    for line in message.splitlines():
        if not line.startswith(" "):  # caret lines under a TOML syntax error are indented
            assert line.startswith(f"{LABEL}: "), line


def mutate(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    fn(document)
    return document


def put(dotted: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        *parents, last = dotted.split(".")
        node = document
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return apply


def drop(dotted: str) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        *parents, last = dotted.split(".")
        node = document
        for part in parents:
            node = node[part]
        del node[last]

    return apply


# --------------------------------------------------------------------------- valid specs


def test_minimal_spec_loads_with_defaults_and_absolute_paths(project: Path) -> None:
    spec = load_spec(write(project, BASE))
    resources = project / "resources"
    assert isinstance(spec, Spec)
    assert spec.path == project / "specs" / "x.toml"
    assert spec.root == project / "specs"
    assert spec.app.name == "penguins"
    assert spec.app.description == ""
    assert spec.model == ModelArtifact(path=resources / "model.joblib", sha256=SHA, version="1.0.0")
    assert spec.model.path.is_absolute()
    assert spec.extractor is None
    assert spec.inputs == {}
    assert (spec.app.maintainer, spec.app.homepage, spec.app.license) == (None, None, None)
    assert (spec.outputs.description, spec.outputs.consume) == ("", "")
    assert spec.gate.e2e.path == resources / "e2e.csv"
    assert spec.gate.e2e.tolerance == 1e-9
    confidence = spec.gate.confidence
    assert confidence.path == resources / "confidence.csv"
    assert (confidence.target, confidence.metric) == ("species", "balanced_accuracy")
    assert confidence.range == (0.9, 1.0)
    assert (confidence.average, confidence.pos_label) == ("macro", None)
    assert spec.build.modes == ("onedir", "onefile")
    assert spec.build.backend == "aot"
    assert spec.build.output_dir == project / "specs" / "dist"


def test_full_spec_loads_every_optional_key(project: Path) -> None:
    document = copy.deepcopy(BASE)
    document["app"]["description"] = "Predicts the species."
    document["app"]["maintainer"] = " Example Release Manager <release@example.org> "
    document["app"]["homepage"] = "https://example.org/penguins"
    document["app"]["license"] = "MIT OR Apache-2.0"
    document["model"]["sha256"] = SHA.upper()
    document["extractor"] = {
        "path": "../resources/extractor.joblib",
        "sha256": SHA,
        "version": "2.0",
    }
    document["inputs"] = {
        "bill_length_mm": {"description": "Bill length", "unit": "mm"},
        "body mass": {"unit": "g"},
    }
    document["outputs"] = {"description": "Species", "consume": "argmax"}
    document["gate"]["e2e"]["tolerance"] = 0
    document["gate"]["confidence"].update(
        metric="f1", range=[0, 1], average="weighted", pos_label="Gentoo"
    )
    document["build"] = {
        "modes": ["onefile"],
        "backend": "jit",
        "installers": [],
        "output_dir": "../out/dist",
    }
    spec = load_spec(write(project, document))
    assert spec.app.description == "Predicts the species."
    assert spec.app.maintainer == "Example Release Manager <release@example.org>"  # stripped
    assert spec.app.homepage == "https://example.org/penguins"
    assert spec.app.license == "MIT OR Apache-2.0"
    assert spec.model.sha256 == SHA  # stored lowercase
    assert spec.extractor is not None
    assert spec.extractor.path == project / "resources" / "extractor.joblib"
    assert spec.inputs["bill_length_mm"] == InputDoc(description="Bill length", unit="mm")
    assert spec.inputs["body mass"].unit == "g"
    assert spec.outputs.consume == "argmax"
    assert spec.gate.e2e.tolerance == 0.0
    assert spec.gate.confidence.range == (0.0, 1.0)
    assert spec.gate.confidence.average == "weighted"
    assert spec.gate.confidence.pos_label == "Gentoo"
    assert spec.build == Build(
        modes=("onefile",), backend="jit", installers=(), output_dir=project / "out" / "dist"
    )


def test_paths_are_relative_to_the_spec_not_the_working_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(project, BASE)
    elsewhere = project / "resources"
    monkeypatch.chdir(elsewhere)
    spec = load_spec(project / path)
    assert spec.model.path == project / "resources" / "model.joblib"
    assert spec.build.output_dir == project / "specs" / "dist"


def test_spec_is_frozen(project: Path) -> None:
    spec = load_spec(write(project, BASE))
    with pytest.raises(ValidationError):
        spec.app.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        spec.gate = spec.gate  # type: ignore[misc]


def test_metric_names_match_the_metrics_the_app_implements() -> None:
    assert METRICS == app_metrics.METRICS
    assert METRICS == ("accuracy", "balanced_accuracy", "f1", "roc_auc", "r2", "mae", "rmse")


def test_models_can_be_built_in_python_relative_to_the_cwd(project: Path) -> None:
    artifact = Artifact(path="resources/model.joblib", sha256=SHA.upper(), version="1")
    assert artifact.path == project / "resources" / "model.joblib"
    assert artifact.sha256 == SHA
    assert Build().output_dir == project / "dist"


# --------------------------------------------------------------------------- one problem each

ALL_METRICS = "accuracy, balanced_accuracy, f1, roc_auc, r2, mae, rmse"

CASES: list[tuple[str, Callable[[dict[str, Any]], None], list[str]]] = [
    # The brief's own examples, word for word.
    (
        "metric",
        put("gate.confidence.metric", "acc"),
        [f"{LABEL}: gate.confidence.metric: 'acc' is not valid; expected one of {ALL_METRICS}"],
    ),
    (
        "unknown-app-key",
        lambda d: d["app"].update(nme=d["app"].pop("name")),
        [
            f"{LABEL}: app.nme: unknown key; valid keys in [app]: name, version, title, "
            "description",
            f"{LABEL}: app.name: missing (required)",
        ],
    ),
    (
        "model-not-found",
        put("model.path", "../foo.joblib"),
        [f"{LABEL}: model.path: file ../foo.joblib not found (resolved to {{project}}/foo.joblib)"],
    ),
    ("missing-sha", drop("model.sha256"), [f"{LABEL}: model.sha256: missing (required)"]),
    # Unknown keys elsewhere.
    (
        "unknown-table",
        put("gates", {"x": 1}),
        [f"{LABEL}: gates: unknown key; valid top-level tables: {', '.join(spec_module.TABLES)}"],
    ),
    (
        "reserved-top-level-path",
        put("path", "x"),
        [f"{LABEL}: path: unknown key; valid top-level tables: app, model, extractor"],
    ),
    (
        "unknown-gate-table",
        lambda d: d["gate"].update(confidense=d["gate"].pop("confidence")),
        [
            f"{LABEL}: gate.confidense: unknown key; valid keys in [gate]: e2e, confidence "
            "(did you mean 'confidence'?)",
            f"{LABEL}: gate.confidence: missing (required table [gate.confidence])",
        ],
    ),
    (
        "unknown-input-key",
        put("inputs", {"body mass": {"units": "g"}}),
        [
            f'{LABEL}: inputs."body mass".units: unknown key; valid keys in '
            '[inputs."body mass"]: description, unit'
        ],
    ),
    (
        "unknown-build-key",
        put("build.mode", ["onedir"]),
        [
            f"{LABEL}: build.mode: unknown key; valid keys in [build]: modes, backend, "
            "installers, output_dir"
        ],
    ),
    # Missing tables and keys.
    ("missing-app", drop("app"), [f"{LABEL}: app: missing (required table [app])"]),
    ("missing-gate", drop("gate"), [f"{LABEL}: gate: missing (required table [gate])"]),
    (
        "missing-e2e",
        drop("gate.e2e"),
        [f"{LABEL}: gate.e2e: missing (required table [gate.e2e])"],
    ),
    ("missing-target", drop("gate.confidence.target"), ["gate.confidence.target: missing"]),
    ("missing-range", drop("gate.confidence.range"), ["gate.confidence.range: missing"]),
    (
        "extractor-incomplete",
        put("extractor", {"path": "../resources/extractor.joblib"}),
        [
            f"{LABEL}: extractor.sha256: missing (required)",
            f"{LABEL}: extractor.version: missing (required)",
        ],
    ),
    # Files.
    (
        "path-is-folder",
        put("gate.e2e.path", "../resources"),
        [
            f"{LABEL}: gate.e2e.path: ../resources is not a file "
            "(resolved to {project}/resources, a folder)"
        ],
    ),
    (
        "confidence-not-found",
        put("gate.confidence.path", "missing.csv"),
        [
            f"{LABEL}: gate.confidence.path: file missing.csv not found "
            "(resolved to {project}/specs/missing.csv)"
        ],
    ),
    ("empty-path", put("model.path", ""), ["model.path: empty; expected the path of a file"]),
    (
        "path-not-string",
        put("model.path", 3),
        ["model.path: expected a file path (a string), found integer 3"],
    ),
    (
        "output-dir-is-file",
        put("build.output_dir", "../resources/e2e.csv"),
        ["build.output_dir: ../resources/e2e.csv is not a folder", "need not exist"],
    ),
    # Values.
    (
        "app-name-uppercase",
        put("app.name", "Penguins"),
        ["app.name: 'Penguins' is not valid; expected", "^[a-z][a-z0-9+.-]{1,63}$"],
    ),
    ("app-name-space", put("app.name", "pen guins"), ["app.name: 'pen guins' is not valid"]),
    ("app-name-underscore", put("app.name", "pen_guins"), ["no spaces or capitals"]),
    ("app-name-one-char", put("app.name", "p"), ["app.name: 'p' is not valid; expected 2-64"]),
    ("app-name-digit", put("app.name", "1app"), ["app.name: '1app' is not valid"]),
    ("app-name-long", put("app.name", "a" * 65), ["app.name: 'aaaa", "2-64 characters"]),
    (
        "version-dash",
        put("app.version", "1.0-rc1"),
        [
            "app.version: '1.0-rc1' is not valid; expected what a .deb and an RPM both accept",
            "for a pre-release write '1.0~rc1'",
        ],
    ),
    ("version-letter-first", put("app.version", "v1.0"), ["app.version: 'v1.0' is not valid"]),
    ("version-space", put("app.version", "1.0 beta"), ["app.version: '1.0 beta' is not valid"]),
    ("version-epoch", put("app.version", "1:2.0"), ["app.version: '1:2.0' is not valid"]),
    (
        "installer-unknown",
        put("build.installers", ["msi"]),
        [
            "build.installers: 'msi' is not valid; expected an array of distinct values from "
            "tar.gz, deb, rpm"
        ],
    ),
    ("app-title-empty", put("app.title", " "), ["app.title: empty; expected a non-empty string"]),
    (
        "version-float",
        put("app.version", 1.0),
        ['app.version: expected a string, found float 1.0; write it in quotes: "1.0"'],
    ),
    (
        "sha-short",
        put("model.sha256", "abc"),
        ["model.sha256: 'abc' is not a sha256 digest: it has 3 characters", "64 hexadecimal"],
    ),
    (
        "sha-not-hex",
        put("model.sha256", "g" * 64),
        ["model.sha256: 'gggg", "contains 'g', which is not a hexadecimal digit"],
    ),
    (
        "tolerance-negative",
        put("gate.e2e.tolerance", -1.0),
        ["gate.e2e.tolerance: -1.0 is not valid; expected a finite number >= 0"],
    ),
    ("tolerance-nan", put("gate.e2e.tolerance", math.nan), ["gate.e2e.tolerance: nan is not"]),
    (
        "tolerance-string",
        put("gate.e2e.tolerance", "1e-9"),
        ["gate.e2e.tolerance: expected a number, found string '1e-9'"],
    ),
    (
        "range-reversed",
        put("gate.confidence.range", [1.0, 0.9]),
        ["gate.confidence.range: min 1.0 is greater than max 0.9", "[min, max]"],
    ),
    (
        "range-one-number",
        put("gate.confidence.range", [0.9]),
        ["gate.confidence.range: expected two numbers [min, max]", "found [0.9]"],
    ),
    (
        "range-strings",
        put("gate.confidence.range", ["a", "b"]),
        ["gate.confidence.range: expected two numbers", "found ['a', 'b']"],
    ),
    (
        "range-scalar",
        put("gate.confidence.range", 0.9),
        ["gate.confidence.range: expected two numbers", "found float 0.9"],
    ),
    (
        "average",
        put("gate.confidence.average", "micro"),
        ["gate.confidence.average: 'micro' is not valid; expected one of macro, weighted"],
    ),
    (
        "pos-label-number",
        put("gate.confidence.pos_label", 1),
        ['gate.confidence.pos_label: expected a string, found integer 1; write it in quotes: "1"'],
    ),
    (
        "probabilities-is-gone",  # it was never read: the model's outputs decide
        put("outputs.probabilities", True),
        [
            f"{LABEL}: outputs.probabilities: unknown key; valid keys in [outputs]: description, "
            "consume"
        ],
    ),
    (
        "maintainer-without-email",
        put("app.maintainer", "Release Team"),
        [
            f"{LABEL}: app.maintainer: 'Release Team' is not valid; "
            'expected "Name <email>", e.g. "Example Release Manager <release@example.org>" '
            "(what Debian's Maintainer field requires)"
        ],
    ),
    (
        "maintainer-email-only",
        put("app.maintainer", "release@example.org"),
        [f"{LABEL}: app.maintainer: 'release@example.org' is not valid; expected \"Name <email>\""],
    ),
    (
        "maintainer-no-domain",
        put("app.maintainer", "unknown <unknown@localhost>"),
        [f"{LABEL}: app.maintainer: 'unknown <unknown@localhost>' is not valid"],
    ),
    (
        "maintainer-number",
        put("app.maintainer", 1),
        [f"{LABEL}: app.maintainer: expected a string, found integer 1"],
    ),
    (
        "license-prose",
        put("app.license", "Apache licence, version 2!"),
        [
            f"{LABEL}: app.license: 'Apache licence, version 2!' is not valid; expected an SPDX "
            'licence identifier or expression, e.g. "Apache-2.0", "MIT OR Apache-2.0" or '
            '"LicenseRef-Proprietary"'
        ],
    ),
    (
        "modes-unknown",
        put("build.modes", ["onedir", "zip"]),
        ["build.modes: 'zip' is not valid; expected", "onedir, onefile"],
    ),
    (
        "modes-duplicate",
        put("build.modes", ["onefile", "onefile"]),
        ["build.modes: 'onefile' is listed twice", "distinct values from onedir, onefile"],
    ),
    ("modes-empty", put("build.modes", []), ["build.modes: empty; expected a non-empty array"]),
    (
        "modes-string",
        put("build.modes", "onedir"),
        ["build.modes: expected a non-empty array", "found string 'onedir'"],
    ),
    (
        "backend",
        put("build.backend", "jitt"),
        [
            "build.backend: 'jitt' is not valid; "
            "expected one of aot, jit, passthrough (did you mean 'jit'?)"
        ],
    ),
    (
        "table-is-scalar",
        put("outputs", "all"),
        ["outputs: expected a table [outputs], found string 'all'"],
    ),
    ("inputs-not-tables", put("inputs", {"x": 1}), ["inputs.x: expected a table [inputs.x]"]),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_problem_is_named(
    project: Path, change: Callable[[dict[str, Any]], None], expected: list[str]
) -> None:
    message = spec_error(project, mutate(change))
    for fragment in expected:
        assert fragment.replace("{project}", str(project)) in message, message
    assert all(line.startswith(f"{LABEL}: ") for line in message.splitlines()), message


@pytest.mark.parametrize(
    "homepage",
    ["example.org/penguins", "ftp://example.org/penguins", "https://", "https://ex ample.org"],
)
def test_homepage_must_be_an_http_url(project: Path, homepage: str) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(project, mutate(put("app.homepage", homepage))))
    assert str(info.value) == (
        f"{LABEL}: app.homepage: {homepage!r} is not valid; expected an http:// or https:// URL, "
        'e.g. "https://example.org/penguins"'
    )


@pytest.mark.parametrize("homepage", ["http://example.org", "https://example.org/a?b=c#d"])
def test_http_and_https_homepages_load(project: Path, homepage: str) -> None:
    assert load_spec(write(project, mutate(put("app.homepage", homepage)))).app.homepage == homepage


def test_all_problems_are_reported_at_once(project: Path) -> None:
    document = copy.deepcopy(BASE)
    document["app"]["name"] = "Bad Name"
    document["model"]["sha256"] = "xyz"
    document["gate"]["confidence"]["metric"] = "acc"
    document["build"] = {"backend": "c"}
    message = spec_error(project, document)
    lines = message.splitlines()
    assert len(lines) == 4, message
    assert [line.split(": ")[1] for line in lines] == [
        "app.name",
        "model.sha256",
        "gate.confidence.metric",
        "build.backend",
    ]


# --------------------------------------------------------------------------- the file itself


def test_missing_file(project: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(Path("specs/nope.toml"))
    assert str(info.value) == (
        f"specs/nope.toml: spec file not found (resolved to {project}/specs/nope.toml)"
    )


def test_folder_is_not_a_spec(project: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(Path("specs"))
    assert str(info.value).startswith(f"specs: not a file (resolved to {project}/specs)")
    assert "expected a TOML bundle spec" in str(info.value)


def test_invalid_toml_names_line_and_column(project: Path) -> None:
    message = spec_error(project, "[app]\nname = penguins\n")
    first, source, caret = message.splitlines()
    assert first.startswith(f"{LABEL}: invalid TOML at line 2, column 8: ")
    assert source.endswith("2 | name = penguins")
    assert caret.index("^") == source.index("penguins")


def test_duplicate_key_is_a_toml_error(project: Path) -> None:
    message = spec_error(project, '[app]\nname = "a"\nname = "b"\n')
    assert message.startswith(f"{LABEL}: invalid TOML at line 3")


def test_not_utf8(project: Path) -> None:
    (project / LABEL).write_bytes(b'[app]\nname = "\xff"\n')
    with pytest.raises(SpecError, match=rf"^{re.escape(LABEL)}: not UTF-8 text .*line 2"):
        load_spec(Path(LABEL))


def test_unreadable_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(project, BASE)

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(SpecError, match=rf"^{re.escape(LABEL)}: cannot read the spec: Permission"):
        load_spec(path)


def test_spec_error_exit_code() -> None:
    assert SpecError.exit_code == 2


# --------------------------------------------------------------------------- package names, icon


@pytest.mark.parametrize("name", ["pg", "penguins", "pen-guins", "pen.guins", "g++", "app2"])
def test_package_names_debian_and_rpm_accept_load(project: Path, name: str) -> None:
    assert load_spec(write(project, mutate(put("app.name", name)))).app.name == name


@pytest.mark.parametrize("version", ["1", "1.0.0", "2.1~rc1", "1.0+git20261203", "10.4a"])
def test_versions_debian_and_rpm_accept_load(project: Path, version: str) -> None:
    assert load_spec(write(project, mutate(put("app.version", version)))).app.version == version


def test_rpm_is_an_installer_and_not_a_default(project: Path) -> None:
    spec = load_spec(write(project, mutate(put("build.installers", ["deb", "rpm", "tar.gz"]))))
    assert spec.build.installers == ("deb", "rpm", "tar.gz")
    assert "rpm" not in load_spec(write(project, BASE)).build.installers


def _png(path: Path, size: tuple[int, int], mode: str = "RGBA") -> Path:
    from PIL import Image

    Image.new(mode, size, "teal").save(path, format="PNG")
    return path


def _icon_error(project: Path, icon: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(write(project, mutate(put("app.icon", icon))))
    message = str(info.value)
    assert_clean(message)
    return message


@pytest.mark.parametrize("size", [(256, 256), (512, 512)])
def test_a_square_png_of_256_or_more_loads(project: Path, size: tuple[int, int]) -> None:
    icon = _png(project / "icon.png", size)
    assert load_spec(write(project, mutate(put("app.icon", "../icon.png")))).app.icon == icon


@pytest.mark.parametrize(
    ("size", "what"),
    [((128, 128), "too small"), ((300, 256), "not square"), ((64, 32), "not square")],
)
def test_a_small_or_oblong_icon_is_refused_with_its_size(
    project: Path, size: tuple[int, int], what: str
) -> None:
    _png(project / "icon.png", size)
    message = _icon_error(project, "../icon.png")
    assert message == (
        f"{LABEL}: app.icon: ../icon.png is {size[0]}x{size[1]} pixels ({what}); "
        "expected a square PNG image at least 256x256 pixels (e.g. 256x256 or 512x512)"
    )


def test_an_icon_that_is_not_a_png_is_refused(project: Path) -> None:
    from PIL import Image

    Image.new("RGB", (256, 256)).save(project / "icon.png", format="JPEG")  # named .png
    assert "app.icon: ../icon.png is not a PNG file; expected a square PNG" in _icon_error(
        project, "../icon.png"
    )
    (project / "icon.txt").write_text("not an image")
    assert "app.icon: ../icon.txt is not a PNG file" in _icon_error(project, "../icon.txt")


def test_a_truncated_png_is_refused(project: Path) -> None:
    data = _png(project / "full.png", (256, 256)).read_bytes()
    (project / "icon.png").write_bytes(data[: len(data) // 2])
    message = _icon_error(project, "../icon.png")
    assert "app.icon: ../icon.png is not a readable PNG image (" in message, message


def test_a_missing_icon_names_the_file(project: Path) -> None:
    assert "app.icon: file nope.png not found" in _icon_error(project, "nope.png")


# --------------------------------------------------------------------------- installer tools


def test_rpm_without_rpmbuild_is_refused_when_the_build_starts(tmp_path: Path) -> None:
    """Exit 7 (a missing tool) before any stage: nothing verified, compiled or written."""
    from tests.conftest import run_bundle
    from tests.test_build_failures import assert_refused, write_spec

    spec = write_spec(tmp_path, extra='installers = ["tar.gz", "rpm"]')
    empty = tmp_path / "bin"
    empty.mkdir()
    proc = run_bundle("build", str(spec), env={"PATH": str(empty)})
    assert_refused(
        proc,
        7,
        f"{spec}: build.installers: rpmbuild is needed to build the 'rpm' installer and is "
        'not on PATH: install it (`apt-get install rpm`) or drop "rpm" from build.installers',
    )
    assert "verify and load artifacts" not in proc.stdout + proc.stderr
    assert not (tmp_path / "dist").exists()


def test_deb_without_dpkg_deb_names_the_dpkg_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bundler.build import check_installer_tools
    from bundler.errors import ToolchainError
    from tests.test_build_failures import write_spec

    spec = load_spec(write_spec(tmp_path, extra='installers = ["deb"]'))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"dpkg-deb is needed .*`apt-get install dpkg`"):
        check_installer_tools(spec)
    monkeypatch.setenv("PATH", "")
    check_installer_tools(load_spec(write_spec(tmp_path, extra='installers = ["tar.gz"]')))


# --------------------------------------------------------------------------- [updates]


def _keys(project: Path) -> dict[str, Path]:
    """An ed25519 pair and an RSA public key, as PEM files in ``project/keys``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    folder = project / "keys"
    folder.mkdir(exist_ok=True)
    ed = ed25519.Ed25519PrivateKey.generate()
    pem, spki = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    files = {
        "public": ed.public_key().public_bytes(pem, spki),
        "private": ed.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(pem, spki),
        "text": b"not a key\n",
    }
    for name, data in files.items():
        (folder / f"{name}.pem").write_bytes(data)
    return {name: folder / f"{name}.pem" for name in files}


def _updates_error(project: Path, updates: dict[str, Any]) -> str:
    """The one-line problem with ``[updates]`` (no assert_clean: valid sources are URLs)."""
    with pytest.raises(SpecError) as info:
        load_spec(write(project, {**BASE, "updates": updates}))
    lines = str(info.value).splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{LABEL}: updates."), lines
    assert "pydantic" not in lines[0] and "Traceback" not in lines[0]
    return lines[0]


def test_updates_loads_the_release_key_and_a_source(project: Path) -> None:
    keys = _keys(project)
    assert load_spec(write(project, BASE)).updates is None
    for source in (None, "https://example.org/penguins/latest.mlpack", "/srv/models/penguins"):
        table = {"public_key": "../keys/public.pem"} | ({"source": source} if source else {})
        updates = load_spec(write(project, {**BASE, "updates": table})).updates
        assert updates is not None and updates.source == source
        assert updates.public_key == keys["public"]
        assert len(updates.raw_key) == 32


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("private", "updates.public_key: ../keys/private.pem holds a private key"),
        ("rsa", "updates.public_key: ../keys/rsa.pem is a RSAPublicKey, not an ed25519"),
        ("text", "updates.public_key: ../keys/text.pem is not a PEM public key"),
        ("missing", "updates.public_key: file ../keys/missing.pem not found"),
    ],
)
def test_updates_public_key_must_be_an_ed25519_public_key(
    project: Path, key: str, fragment: str
) -> None:
    _keys(project)
    message = _updates_error(project, {"public_key": f"../keys/{key}.pem"})
    assert fragment in message, message
    assert "BEGIN" not in message.split("expected")[0]  # no key material quoted


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("http://example.org/p.mlpack", "(not https)"),
        ("ftp://example.org/p.mlpack", "(not https)"),
        ("https:///p.mlpack", "(no host, or a password in it)"),
        ("https://user:pw@example.org/p.mlpack", "(no host, or a password in it)"),
        ("models/penguins", "(a relative path"),
        ("", "is not valid"),
        (3, "found integer 3"),
    ],
)
def test_updates_source_is_an_https_url_or_an_absolute_folder(
    project: Path, source: Any, fragment: str
) -> None:
    _keys(project)
    message = _updates_error(project, {"public_key": "../keys/public.pem", "source": source})
    assert message.startswith(f"{LABEL}: updates.source: "), message
    assert fragment in message and "expected an https:// URL of a pack" in message, message


def test_updates_needs_a_public_key_and_no_other_keys(project: Path) -> None:
    _keys(project)
    assert "updates.public_key: missing (required)" in _updates_error(project, {})
    message = _updates_error(project, {"public_key": "../keys/public.pem", "url": "x"})
    assert "updates.url: unknown key; valid keys in [updates]: public_key, source" in message
