"""The application's icon: the spec's ``[app] icon``, or a default one drawn at build time.

The spec's icon was checked when the spec loaded (a PNG, square, at least 256x256:
``bundler.spec``). Without one, the build draws a rounded square in a colour derived
from the app's name, with the initials of its title, at 256x256 (and 48 and 128, the
sizes a menu and a launcher show). The drawing is deterministic: the same name, title
and Pillow give the same PNG bytes (no time or text chunks are written), so installers
carrying it stay byte-reproducible.
"""

from __future__ import annotations

import colorsys
import hashlib
import io
import re
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

#: The sizes of the default icon, in pixels; 256 is the one installers use.
SIZES = (48, 128, 256)
ICON_SIZE = 256
#: Drawn this many times larger, then scaled down: smooth edges without relying on
#: Pillow's anti-aliasing of shapes.
_SUPERSAMPLE = 4
_WORD = re.compile(r"[^\W_]+")


def initials(title: str, name: str) -> str:
    """Up to two letters: the first of the title's first two words (else the name's)."""
    words = _WORD.findall(title) or _WORD.findall(name) or ["?"]
    return "".join(word[0] for word in words[:2]).upper()


def colour(name: str) -> tuple[int, int, int]:
    """A saturated, mid-dark colour picked by the name's hash: white text reads on it."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:2], "big") / 65536
    red, green, blue = colorsys.hsv_to_rgb(hue, 0.62, 0.70)
    return round(red * 255), round(green * 255), round(blue * 255)


def draw_icon(name: str, title: str, size: int = ICON_SIZE) -> bytes:
    """The default icon as PNG bytes: a rounded square of ``colour(name)`` with
    ``initials(title, name)`` in white, ``size`` x ``size`` pixels, RGBA."""
    big = size * _SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    margin = big // 16
    draw.rounded_rectangle(
        (margin, margin, big - 1 - margin, big - 1 - margin),
        radius=big // 5,
        fill=(*colour(name), 255),
    )
    text = initials(title, name)
    font = ImageFont.load_default(size=big * (0.42 if len(text) > 1 else 0.5))
    draw.text((big / 2, big / 2), text, font=font, fill=(255, 255, 255, 255), anchor="mm")
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    return png_bytes(image)


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as a PNG with nothing but its pixels: no time, text or metadata chunks."""
    out = io.BytesIO()
    image.info.clear()
    image.save(out, format="PNG", optimize=False, compress_level=9)
    return out.getvalue()


def default_icons(name: str, title: str, work_dir: Path) -> dict[int, Path]:
    """Draw the default icon at every size of ``SIZES`` into ``work_dir``: size -> path."""
    work_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for size in SIZES:
        path = work_dir / f"{name}-{size}.png"
        path.write_bytes(draw_icon(name, title, size))
        paths[size] = path
    return paths


def app_icons(spec: Any, work_dir: Path) -> dict[int, Path]:
    """size -> PNG of the app's icon: the spec's at its own size (at least 256, checked when
    the spec loaded), or the default one at 48, 128 and 256."""
    if spec.app.icon is not None:
        with Image.open(spec.app.icon) as image:
            return {image.size[0]: Path(spec.app.icon)}
    return default_icons(spec.app.name, spec.app.title, work_dir)


def app_icon(spec: Any, work_dir: Path) -> Path:
    """The app's icon, a square PNG at least 256x256: the spec's ``[app] icon``, or the
    default one drawn into ``work_dir`` (256x256)."""
    if spec.app.icon is not None:
        return Path(spec.app.icon)
    return default_icons(spec.app.name, spec.app.title, work_dir)[ICON_SIZE]
