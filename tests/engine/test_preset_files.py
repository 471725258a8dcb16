"""Hostile and malformed TOML preset files: every problem is a one-line
ConfigError naming file:line, the preset and the key, with user strings
escaped; large files load in linear time, too-large ones are refused.
"""

from __future__ import annotations

import re

import pytest

from engine import ConfigError
from engine.presets import BUILTIN, MAX_FILE_BYTES, MAX_KEY_PARTS, MAX_PRESETS, _table_lines, get, load_toml, printable

ESC = "\x1b"


def write(tmp_path, text: str, name: str = "presets.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error(path) -> str:
    with pytest.raises(ConfigError) as info:
        load_toml(path)
    assert info.value.field == "preset_file"
    msg = info.value.message
    assert "\n" not in msg and "\r" not in msg, msg
    assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", msg), msg
    return msg


# -- 3. the type of every key is checked before it is used ---------------------------------------


@pytest.mark.parametrize("value, got", [('["a"]', "got an array"), ("{x = 1}", "got a table"), ("3", "got an integer (3)"), ("true", "got a boolean (true)")])
def test_base_must_be_a_preset_name(tmp_path, value, got):
    path = write(tmp_path, f"# mine\n[mine]\nbase = {value}\n")
    msg = error(path)
    assert msg.startswith(f"{path}:2: preset 'mine': base must be a preset name (a string), {got}"), msg


@pytest.mark.parametrize("key", ["description", "look-for", "look_for"])
@pytest.mark.parametrize("value, got", [("3", "got an integer (3)"), ("[1]", "got an array"), ("{a = 1}", "got a table"), ("1979-05-27", "got a date/time (1979-05-27)")])
def test_description_and_look_for_must_be_strings(tmp_path, key, value, got):
    path = write(tmp_path, f'[ok]\nhidden = 8\n\n[mine]\n{key} = {value}\n')
    msg = error(path)
    assert msg.startswith(f"{path}:4: preset 'mine': {key.replace('_', '-')} must be a string, {got}"), msg


@pytest.mark.parametrize(
    "line, needles",
    [
        ('hidden = "32"', ("'hidden' must be an integer from 1 to 4096", 'got a string ("32")')),
        ("hidden = [1]", ("'hidden' must be an integer", "got an array")),
        ("hidden = true", ("'hidden' must be an integer", "got a boolean (true)")),
        ("hidden = {a = 1}", ("'hidden' must be an integer", "got a table")),
        ("hidden.x = 1", ("'hidden' must be an integer", "got a table")),
        ("hidden = 1979-05-27T07:32:00", ("'hidden' must be an integer", "got a date/time (1979-05-27T07:32:00)")),
        ("seed = 1.5", ("seed must be an integer from 0 to 4294967295", "got 1.5")),
        ("steps = 30.0", ("steps must be an integer", "without a decimal point")),
        ("clip = 3", ("'clip' must be one of none, norm, value, step, agc", "got an integer (3)")),
        ('scale = "big"', ("'scale' must be a number from 0 to 1e+06", 'got a string ("big")')),
        ("clip_threshold = [5]", ("'clip_threshold' must be a number", "got an array")),
        ("weights = 3", ("'weights' must be a string", "got an integer (3)")),
        ("weights = [1]", ("'weights' must be a string", "got an array")),
        ("text = 5", ("'text' must be a string", "got an integer (5)")),
        ("text = ['a', 'b']", ("'text' must be a string", "got an array")),
        ('text = "a \\u001b[2J b"', ("'text' contains U+001B", "plain text")),
        ("scale = inf", ("scale must be a number", "not finite")),
        ("hidden = " + "9" * 5000, ("an integer has too many digits",)),
    ],
)
def test_settings_of_the_wrong_type_are_one_clean_line(tmp_path, line, needles):
    path = write(tmp_path, f"\n[mine]\n{line}\n")
    msg = error(path)
    assert msg.startswith(f"{path}:"), msg
    if "digits" not in msg:
        assert msg.startswith(f"{path}:2: preset 'mine': "), msg
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_a_text_may_span_lines_in_a_preset_file(tmp_path):
    path = write(tmp_path, '[mine]\ntext = """the man who\nwore a wig"""\n')
    assert load_toml(path)["mine"].config.text == "the man who\nwore a wig"


# -- 4. linear time, bounded size ---------------------------------------------------------------


def test_twenty_thousand_tables_load_with_their_lines(tmp_path):
    n = 20_000
    text = "".join(f"[p{i}]\nhidden = {1 + i % 64}\n" for i in range(n))
    path = write(tmp_path, text)
    presets = load_toml(path)
    assert list(presets) == [f"p{i}" for i in range(n)]
    assert all(presets[f"p{i}"].config.hidden == 1 + i % 64 for i in range(n))
    lines = _table_lines(text)
    assert all(lines[f"p{i}"] == 2 * i + 1 for i in range(n))


def test_a_file_over_the_size_limit_is_refused(tmp_path):
    limit_mb = MAX_FILE_BYTES // 2**20
    path = write(tmp_path, "# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    assert error(path) == f"{path}: preset file too large (1.1 MB; limit {limit_mb} MB)"  # 10 bytes over, rounded up
    path = write(tmp_path, "# padding\n" * (3 * MAX_FILE_BYTES // 10))
    assert error(path) == f"{path}: preset file too large (3.0 MB; limit {limit_mb} MB)"
    path = write(tmp_path, "[a]\nhidden = 8\n" + "#" * (MAX_FILE_BYTES - 20) + "\n")  # at the limit: loads
    assert load_toml(path)["a"].config.hidden == 8


def test_too_many_presets_are_refused(tmp_path):
    path = write(tmp_path, "".join(f"[{i}]\n" for i in range(MAX_PRESETS + 1)))
    assert error(path) == f"{path}: too many presets ({MAX_PRESETS + 1}; limit {MAX_PRESETS})"


def test_a_deeply_dotted_key_is_refused_before_parsing(tmp_path):
    """The TOML parser takes quadratic time in a dotted key's parts."""
    path = write(tmp_path, "[ok]\n[" + ".".join(["a"] * (MAX_KEY_PARTS + 1)) + "]\n")
    assert error(path) == f"{path}:2: a dotted key with more than {MAX_KEY_PARTS} parts"
    path = write(tmp_path, "[ok]\nhidden = 3\n" + ".".join(['"a"'] * 1000) + " = 1\n")
    assert error(path) == f"{path}:3: a dotted key with more than {MAX_KEY_PARTS} parts"
    path = write(tmp_path, "[x.y]\n" + ".".join(["a"] * MAX_KEY_PARTS) + " = 1\n")
    assert "unknown key 'y'" in error(path)  # at the limit: parsed


def test_nesting_too_deep_is_one_line(tmp_path):
    path = write(tmp_path, "[a]\nhidden = " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert error(path) == f"{path}: arrays or tables nested too deeply"


def test_header_lines_are_found_however_the_header_is_written():
    text = """# a comment [c]
note = '''
[q]
'''
"k.ey" = 1
[ spaced ]
description = "not [q] either" # [q]
list = [
[1],
  [2]]
["quoted\\nname"]
['lit.eral']
  [dotted . "inner"]
[[array]]
[[array]]
[q]
"""
    assert _table_lines(text) == {
        "note": 2, "k.ey": 5, "spaced": 6, "quoted\nname": 11, "lit.eral": 12, "dotted": 13, "array": 14, "q": 16,
    }  # fmt: skip


@pytest.mark.parametrize(
    "header, needle",
    [
        ("[ spaced ]", "preset 'spaced': hidden must be"),
        ('["quoted name"]', "preset 'quoted name': hidden must be"),
        ("['lit.eral']", "preset 'lit.eral': hidden must be"),
        ("  [dotted . inner]", "preset 'dotted': unknown key 'inner'"),
        ("[[array]]", "'array' must be a table"),
    ],
)
def test_errors_name_the_line_of_the_table(tmp_path, header, needle):
    # line 3 holds the header inside a multi-line string, line 6 in a comment: neither is a header
    path = write(tmp_path, f"[first]\ntext = \'\'\'\n{header} two words\n\'\'\'\n\n# {header}\n{header}\nhidden = 0\n")
    msg = error(path)
    assert msg.startswith(f"{path}:7: {needle}"), msg


def test_a_top_level_key_is_named_at_its_line(tmp_path):
    path = write(tmp_path, "# comment\n\nhidden = 3\n")
    assert error(path) == f"{path}:3: 'hidden' must be a table ([hidden]) of settings"


# -- 5. names and sentences from a shared file cannot drive the terminal -------------------------


@pytest.mark.parametrize(
    "header, shown",
    [
        ('["a\\u001b[2Jb"]', "'a\\x1b[2Jb' contains U+001B (a control character)"),
        ('["two\\nlines"]', "'two\\nlines' contains U+000A (a control character)"),
        ('["tab\\tbed"]', "'tab\\tbed' contains U+0009 (a control character)"),
        ('["csi\\u009b2J"]', "'csi\\x9b2J' contains U+009B (a control character)"),
        ('["nb\\u00a0sp"]', "'nb\\u00a0sp' contains U+00A0 (NO-BREAK SPACE)"),
        ('["zero\\u200bwidth"]', "'zero\\u200bwidth' contains U+200B (ZERO WIDTH SPACE)"),
        ('["evil\\u202etxt"]', "'evil\\u202etxt' contains U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ('["line\\u2028sep"]', "'line\\u2028sep' contains U+2028 (LINE SEPARATOR)"),
        ('["title\\u001b]0;owned\\u0007"]', "'title\\x1b]0;owned\\x07' contains U+001B"),
    ],
)
def test_preset_names_with_control_characters_are_refused_escaped(tmp_path, header, shown):
    path = write(tmp_path, f"[fine]\n\n{header}\nhidden = 8\n")
    msg = error(path)
    assert msg.startswith(f"{path}:3: preset name {shown}"), msg
    assert "plain spaces" in msg


@pytest.mark.parametrize("header", ['[""]', '["   "]'])
def test_empty_preset_names_are_refused(tmp_path, header):
    path = write(tmp_path, f"{header}\nhidden = 8\n")
    assert error(path) == f"{path}:1: a preset name must not be empty or blank"


@pytest.mark.parametrize("header, name", [('["--help"]', "--help"), ('["-x"]', "-x"), ("[-dash]", "-dash")])
def test_preset_names_that_read_as_options_are_refused(tmp_path, header, name):
    path = write(tmp_path, f"[fine]\nhidden = 8\n\n{header}\nhidden = 9\n")
    assert error(path) == (
        f"{path}:4: preset name '{name}' starts with '-': a command line would read it as an option "
        f"(bptt-lab run {name}); start it with a letter or digit"
    )


def test_plain_names_with_spaces_and_unicode_letters_load(tmp_path):
    path = write(tmp_path, '["my preset"]\nhidden = 8\n["größe-λ"]\nhidden = 9\n')
    assert {n: p.config.hidden for n, p in load_toml(path).items()} == {"my preset": 8, "größe-λ": 9}


@pytest.mark.parametrize("key", ["description", "look-for"])
@pytest.mark.parametrize(
    "value, char",
    [
        ('"clear \\u001b[2J screen"', "U+001B (a control character)"),
        ('"title \\u001b]0;x\\u0007"', "U+001B"),
        ('"""\nfirst\nsecond"""', "U+000A (a control character)"),
        ('"tab\\there"', "U+0009"),
        ('"c1 \\u009b2J"', "U+009B"),
        ('"bidi \\u202e"', "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ],
)
def test_sentences_with_control_characters_are_refused(tmp_path, key, value, char):
    path = write(tmp_path, f"[mine]\n{key} = {value}\n")
    msg = error(path)
    assert msg == f"{path}:1: preset 'mine': {key} contains {char}; it must be one line of plain text" or (
        msg.startswith(f"{path}:1: preset 'mine': {key} contains {char}") and msg.endswith("it must be one line of plain text")
    ), msg


def test_a_long_description_may_use_a_line_continuation(tmp_path):
    path = write(tmp_path, '[mine]\ndescription = """\\\n  one long \\\n  sentence"""\n')
    assert load_toml(path)["mine"].description == "one long sentence"


def test_every_echoed_user_string_is_escaped(tmp_path):
    msg = error(write(tmp_path, '[mine]\n"hid\\u001bden" = 3\n'))
    assert "unknown key 'hid\\x1bden'" in msg
    msg = error(write(tmp_path, '[mine]\nbase = "seed-exploe\\u001b"\n'))
    assert "unknown base 'seed-exploe\\x1b'; did you mean: seed-explode" in msg
    bad_path = tmp_path / "p\x1b[2J.toml"
    bad_path.write_text("[a]\nhidden = 0\n")
    msg = error(bad_path)
    assert msg.startswith(f"{tmp_path}/p\\x1b[2J.toml:1: preset 'a': hidden must be"), msg
    assert error(tmp_path / "gone\x07.toml") == f"{tmp_path}/gone\\x07.toml: no such file"


def test_get_escapes_the_unknown_name():
    with pytest.raises(ConfigError) as info:
        get("seed-explod\x1b[2J\n")
    msg = info.value.message
    assert ESC not in msg and "\n" not in msg
    assert msg.startswith("unknown preset 'seed-explod\\x1b[2J\\n'") and "did you mean: seed-explode" in msg
    assert get("irnn") is BUILTIN["irnn"]


def test_printable():
    assert printable("plain text, ünïcode λ") == "plain text, ünïcode λ"
    assert printable("a\x1b[2Jb\n\t\r\x00\x7f\x9b\u2028\u202e\u2066\u00a0\U000e0001") == (
        "a\\x1b[2Jb\\n\\t\\r\\x00\\x7f\\x9b\\u2028\\u202e\\u2066\\u00a0\\U000e0001"
    )
    assert printable("x" * 10, limit=4) == "xxxx..."
    assert printable(3) == "3"


def test_not_utf8_and_unreadable_files(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"[a]\ndescription = \"caf\xe9\"\n")
    assert error(path) == f"{path}:2: not UTF-8 text (byte 0xe9)"
    assert error(tmp_path) == f"{tmp_path}: is a directory"
