"""Program variants: ``like = "base"`` takes a whole program's timeline, written once."""

import pytest

from device.exc import ProgramError
from device.therapy.program import parse_program, read_program

BASE = """
name = "base"
description = "the base"
[options]
pad_preset = ["warm", "deep"]
[[section]]
name = "one"
duration_min = 2
pacer_bpm = [10, 8]
pad_db = -14
[ending]
kind = "fade"
duration_s = 60
"""


def _write(tmp_path, name: str, text: str):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_a_variant_has_its_bases_timeline_and_its_own_name_and_options(tmp_path):
    _write(tmp_path, "base", BASE)
    path = _write(
        tmp_path,
        "base-composed",
        'like = "base"\ndescription = "composed"\n[options]\ncomposer_style = ["piano"]\n',
    )
    base, variant = read_program(tmp_path / "base.toml"), read_program(path)
    assert variant.name == "base-composed" and variant.description == "composed"
    assert variant.sections == base.sections and variant.ending == base.ending
    assert variant.options == {"pad_preset": ("warm", "deep"), "composer_style": ("piano",)}


def test_a_variant_may_replace_a_whole_table(tmp_path):
    _write(tmp_path, "base", BASE)
    path = _write(tmp_path, "short", 'like = "base"\n[ending]\nkind = "fade"\nduration_s = 5\n')
    assert read_program(path).ending.duration_s == 5.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('like = "nowhere"\n', "cannot read program"),
        ('like = "../base"\n', "is not a program name"),
        ('like = 3\n', "is not a program name"),
        ('like = "mid"\n', "is itself a variant"),
    ],
)
def test_a_bad_variant_is_a_clear_error(tmp_path, text, says):
    _write(tmp_path, "base", BASE)
    _write(tmp_path, "mid", 'like = "base"\n')
    path = _write(tmp_path, "bad", text)
    with pytest.raises(ProgramError, match=says):
        read_program(path)


def test_a_variant_without_a_file_beside_it_is_refused():
    with pytest.raises(ProgramError, match="beside its base"):
        parse_program('like = "wind-down"\n')
