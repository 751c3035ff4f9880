"""The example retrained, for the model-pack tests: another seed, another model version.

``retrain`` fits the example's forest again with another ``random_state`` on the same
training split (so the spec's data hashes still hold), keeps the fitted extractor (its
fit does not depend on the seed), and writes what a release engineer would have after
``resources/train.py``: the model's joblib, the e2e set with the new model's outputs,
and a copy of ``specs/penguins.toml`` naming them with a newer ``[model] version``.
``resign`` makes the packs no release engineer would make (an e2e set that fails, a
metric out of range, another app) by re-signing a real pack's edited contents with the
session's key, so that the app's own checks, not the signature, are what refuse them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "penguins.toml"
RESOURCES = ROOT / "resources"


def train_module() -> ModuleType:
    """``resources/train.py`` as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("_penguins_train", RESOURCES / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spec_text(public_key: Path | None = None) -> str:
    """``specs/penguins.toml`` with absolute resource paths (it is written elsewhere) and,
    given a key, ``[updates] public_key`` naming it."""
    text = SPEC.read_text(encoding="utf-8").replace('"../', f'"{ROOT}/')
    if public_key is not None:
        assert "[updates]" not in text
        text += f'\n[updates]\npublic_key = "{public_key}"\n'
    return text


def set_model(text: str, *, path: Path, sha256: str, version: str) -> str:
    """A spec's text with its ``[model]`` path, sha256 and version replaced."""
    head, model, tail = re.split(r"(?m)^(\[model\]\n(?:(?!\[).*\n)*)", text, maxsplit=1)
    new = re.sub(r'(?m)^path = ".*"', f'path = "{path}"', model, count=1)
    new = re.sub(r'(?m)^sha256 = ".*"', f'sha256 = "{sha256}"', new, count=1)
    new = re.sub(r'(?m)^version = ".*"', f'version = "{version}"', new, count=1)
    assert new.count(str(path)) == 1 and f'version = "{version}"' in new, new
    return head + new + tail


def set_e2e(text: str, path: Path) -> str:
    out = re.sub(r'(?m)^(\[gate\.e2e\]\npath = )".*"', rf'\1"{path}"', text, count=1)
    assert str(path) in out
    return out


@dataclass(frozen=True)
class Retrained:
    """A retrained example: its spec (``[model] version`` given), model and e2e set."""

    spec: Path
    model: Path  # the forest's joblib (features -> species)
    extractor: Path  # the example's fitted extractor, unchanged
    e2e: Path
    seed: int
    version: str


def retrain(out: Path, *, seed: int, version: str, public_key: Path) -> Retrained:
    """Fit the example's forest with ``random_state=seed`` and write a spec for it."""
    import joblib
    import pandas as pd
    from sklearn.ensemble import RandomForestClassifier

    train = train_module()
    out.mkdir(parents=True, exist_ok=True)
    raw = train.load_raw(train.DATA_CSV)
    raw = raw[raw[train.TARGET].notna()].reset_index(drop=True)
    training, _confidence, e2e = train.split(raw)
    extractor_path = RESOURCES / "artifacts" / "extractor.joblib"
    extractor = joblib.load(extractor_path)
    features = extractor.transform(train.to_features(training))
    model = RandomForestClassifier(n_estimators=100, random_state=seed)
    model.fit(features, training[train.TARGET].to_numpy(dtype=object))
    model_path = out / "model.joblib"
    sha = train.dump_joblib(model, model_path)

    edge = pd.DataFrame(train.EDGE_ROWS, columns=train.INPUT_COLUMNS, dtype=object)
    inputs = pd.concat([e2e[train.INPUT_COLUMNS], edge], ignore_index=True)
    x = extractor.transform(train.to_features(inputs))
    labels, proba = model.predict(x), model.predict_proba(x)
    classes = [str(c) for c in model.classes_]
    e2e_path = out / "e2e.csv"
    train.write_csv(
        e2e_path,
        [*train.INPUT_COLUMNS, "prediction", *(f"proba_{c}" for c in classes)],
        [
            [*cells, str(label), *(repr(float(p)) for p in row)]
            for cells, label, row in zip(
                train.raw_cells(inputs, train.INPUT_COLUMNS), labels, proba, strict=True
            )
        ],
    )
    text = set_model(spec_text(public_key), path=model_path, sha256=sha, version=version)
    text = set_e2e(text, e2e_path)
    spec = out / "penguins.toml"
    spec.write_text(text, encoding="utf-8")
    return Retrained(
        spec=spec,
        model=model_path,
        extractor=extractor_path,
        e2e=e2e_path,
        seed=seed,
        version=version,
    )


class Sklearn:
    """The scikit-learn pipeline a spec names (extractor, then model), for the oracle."""

    def __init__(self, extractor: Path, model: Path) -> None:
        import joblib

        self.train = train_module()
        self.extractor = joblib.load(extractor)
        self.model = joblib.load(model)

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.model.classes_]

    def frame(self, records: list[Mapping[str, object]]) -> Any:
        import pandas as pd

        cells = [{k: ("" if v is None else str(v)) for k, v in r.items()} for r in records]
        raw = pd.DataFrame(cells, columns=self.train.INPUT_COLUMNS, dtype=object)
        raw = raw.replace("", float("nan"))
        return self.train.to_features(raw)

    def predict_proba(self, records: list[Mapping[str, object]]) -> Any:
        return self.model.predict_proba(self.extractor.transform(self.frame(records)))

    def predict(self, records: list[Mapping[str, object]]) -> list[str]:
        labels = self.model.predict(self.extractor.transform(self.frame(records)))
        return [str(v) for v in labels]


# -- packs no release engineer would make ----------------------------------------------------


def signer(private_pem: bytes) -> Callable[[bytes], bytes]:
    """The ed25519 signing function ``write_pack`` takes, from a private key's PEM."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem, password=None)
    return key.sign  # type: ignore[union-attr,return-value]


def pack_contents(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """A pack's manifest (without ``files`` and ``pack_format``) and payload files, unchecked."""
    from mlbundle_runtime.packs import MAGIC, META_FILE, META_SIG, PAYLOAD_DIR

    assert data.startswith(MAGIC)
    body = data[len(MAGIC) + 129 :]
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    meta = json.loads(members.pop(META_FILE))
    members.pop(META_SIG)
    meta.pop("files")
    meta.pop("pack_format")
    files = {name[len(PAYLOAD_DIR) :]: blob for name, blob in members.items()}
    return meta, files


def resign(
    data: bytes,
    private_pem: bytes,
    *,
    meta: Mapping[str, Any] | None = None,
    files: Mapping[str, bytes] | None = None,
) -> bytes:
    """``data``'s pack with manifest fields and payload files replaced, and ``bundle.json``'s
    hashes of the payload files brought up to date, signed again with ``private_pem``."""
    from mlbundle_runtime.packs import write_pack

    old_meta, old_files = pack_contents(data)
    new_files = {**old_files, **(files or {})}
    info = json.loads(new_files["bundle.json"])
    for name, blob in (files or {}).items():
        if name != "bundle.json" and name in info.get("files", {}):
            info["files"][name] = hashlib.sha256(blob).hexdigest()
    new_files["bundle.json"] = (json.dumps(info, indent=1, sort_keys=True) + "\n").encode()
    return write_pack({**old_meta, **(meta or {})}, new_files, signer(private_pem))
