"""bundler.icon: the spec's icon as given, or a default drawn deterministically at build time."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from bundler.icon import SIZES, app_icon, app_icons, colour, draw_icon, initials


def _spec(name: str = "penguins", title: str = "Penguin species classifier", icon=None):
    return SimpleNamespace(app=SimpleNamespace(name=name, title=title, icon=icon))


def _chunks(data: bytes) -> list[bytes]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    found, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        found.append(data[at + 4 : at + 8])
        at += 12 + length
    return found


def test_default_icon_is_a_256_square_png_of_the_title_initials(tmp_path: Path) -> None:
    path = app_icon(_spec(), tmp_path / "icon")
    with Image.open(path) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (256, 256), "RGBA")
        assert image.getpixel((0, 0))[3] == 0  # rounded corners: transparent
        assert image.getpixel((128, 20))[:3] == colour("penguins")  # the square's colour
        assert image.getpixel((128, 20))[3] == 255
        # the initials: white pixels in the middle band
        middle = image.crop((40, 90, 216, 166)).convert("RGB").getcolors(maxcolors=1 << 16)
        assert any(rgb == (255, 255, 255) for _count, rgb in middle)


def test_same_inputs_same_bytes_and_no_time_or_text_chunks(tmp_path: Path) -> None:
    first = app_icon(_spec(), tmp_path / "a").read_bytes()
    second = app_icon(_spec(), tmp_path / "b").read_bytes()
    assert first == second
    assert first == draw_icon("penguins", "Penguin species classifier", 256)
    assert _chunks(first) == [b"IHDR", b"IDAT", b"IEND"]


def test_name_and_title_change_the_icon() -> None:
    base = draw_icon("penguins", "Penguin species classifier")
    assert draw_icon("fieldreport", "Penguin species classifier") != base  # colour
    assert draw_icon("penguins", "Field report") != base  # initials
    assert colour("penguins") != colour("fieldreport")


@pytest.mark.parametrize(
    ("title", "name", "expected"),
    [
        ("Penguin species classifier", "penguins", "PS"),
        ("field report", "fieldreport", "FR"),
        ("Churn", "churn", "C"),
        ("  ", "my-app", "MA"),
        ("Études 2", "etudes", "É2"),
        ("-", "--", "?"),
    ],
)
def test_initials(title: str, name: str, expected: str) -> None:
    assert initials(title, name) == expected


def test_every_size_is_drawn(tmp_path: Path) -> None:
    icons = app_icons(_spec(), tmp_path)
    assert sorted(icons) == sorted(SIZES) == [48, 128, 256]
    for size, path in icons.items():
        with Image.open(path) as image:
            assert image.size == (size, size)
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in icons.values()}
    assert len(digests) == 3


def test_the_specs_icon_is_used_as_given(tmp_path: Path) -> None:
    given = tmp_path / "mine.png"
    Image.new("RGB", (512, 512), "teal").save(given)
    work = tmp_path / "work"
    assert app_icon(_spec(icon=given), work) == given
    assert app_icons(_spec(icon=given), work) == {512: given}
    assert not work.exists()  # nothing drawn
