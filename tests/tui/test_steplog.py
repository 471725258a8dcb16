"""The step log and the help: columns that never run together, the words of a
text run, events that read without colour, a help that explains all of it.

Expected values are worked out here independently: the column a value sits
in is found from the header row's text, the words from a transcription of
the sentence and from the one-hot inputs the engine built.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from textual.color import Color

from engine import Config, Run
from engine.presets import BUILTIN, WIG
from engine.records import ClipEvent, StepRecord
from tui.app import BpttLab, make_app
from tui.format import num
from tui.panes.steplog import header_line, layout, step_line
from tui.screens import HelpScreen

asyncio = pytest.mark.asyncio  # on the Pilot tests only: a module-wide mark warns on every plain test

# Values num() turns into its longest and oddest texts.
EXTREMES = [
    math.nan, math.inf, 0.0, 1.23e-300, 5e-324, 1.7976931348623157e308, 9.99e307, 1e-3, 0.0009995,
    9999.4, 9999.6, 1e4, 123456789.0, 0.5, 1.0, 2.5e-7,
]


def factor(x: float) -> str:
    """The ratio as the log shows it: x1.26; nan and inf without the x."""
    return "x" + num(x) if math.isfinite(x) else num(x)


def fake_run(cell: str = "rnn", steps: int = 20, exact: bool = True, text: str = "", **settings):
    """What `layout` reads of a run (config, T, jacobian.exact, bound_factor), without
    building one: a T of 10^6 needs only a Config."""
    shape = {"text": text} if text else {"steps": steps, "batch": 1}  # a text sets T and N itself
    config = Config(cell=cell, hidden=4, **shape, **settings)
    gamma = config.gamma
    return SimpleNamespace(config=config, T=config.steps, jacobian=SimpleNamespace(exact=exact), bound_factor=None if gamma is None else 1.5 * gamma)


def record(k: int, T: int, value: float, saturation: float = 1.0, status: str = "ok", clip: ClipEvent | None = None) -> StepRecord:
    fields = {name: value for name in StepRecord.__dataclass_fields__ if name not in ("k", "t", "clip", "status")}
    fields["saturation"] = saturation
    if "dead" in fields:
        fields["dead"] = saturation
    return StepRecord(k=k, t=T - k, clip=clip, status=status, **fields)


LEFT = ("word", "next")  # the left-aligned columns; the others are right-aligned


def fields_under(header: str, line: str) -> dict[str, str]:
    """The text of each column of `line`, cut where the header row puts it: a
    right-aligned column ends where its name ends and starts after the previous
    field; a left-aligned one (a word: no spaces) starts where its name starts.
    Asserts that a space separates every two fields."""
    names = header.split()[:-1]  # the last is "events": free text
    out, prev_end, pos = {}, -1, 0  # prev_end: index of the previous field's last character
    for name in names:
        begin = header.index(name, pos)
        end = pos = begin + len(name)  # exclusive
        if name in LEFT:
            assert line[begin - 1] == " ", f"{name}: no space before it in {line!r}"
            token = line[begin:].split(" ", 1)[0]
            out[name] = token
            prev_end = begin + len(token) - 1
            continue
        field = line[prev_end + 1 : end]
        assert prev_end < 0 or field.startswith(" "), f"{name}: no space before it in {line!r}"
        assert end >= len(line) or line[end] == " ", f"{name}: runs into the next column in {line!r}"
        out[name] = field.strip()
        prev_end = end - 1
    return out


# -- columns ---------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [1, 9, 10, 99, 100, 12345, 1_000_000])
@pytest.mark.parametrize("cell, activation", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_every_extreme_value_sits_in_its_column(cell, activation, steps):
    run = fake_run(cell, steps, exact=steps % 2 == 0, activation=activation)
    cols = layout(run)
    header = header_line(cols)
    for k in (1, steps):
        for x in EXTREMES:
            for sat in (0.0, 0.004, 0.996, 1.0, math.nan):
                line = step_line(record(k, steps, x, sat), cols)
                got = fields_under(header, line)
                assert got["k"] == str(k) and got["t"] == str(steps - k)
                shown = num(x)
                assert got["|dL/dh|"] == (num(x, na="nan")) and got["ratio"] == factor(x)
                sigma = "σ(J)" if run.jacobian.exact else "~σ(J)"
                assert got[sigma] == shown
                assert got["sat"] == ("-" if math.isnan(sat) else f"{round(100 * sat)}%")
                if cell != "rnn":
                    assert got[f"{'f' if cell == 'lstm' else 'z'}-gate"] == shown
                if cell == "lstm":
                    assert got["|dL/dc|"] == num(x, na="nan")
                if cell == "rnn":
                    assert got["bound"] == shown
                assert got["contrib"] == got["|grad|"] == num(x, na="nan")
                if "h-path" in got:  # where the engine records the hidden path (cells with a cell state)
                    assert cell == "lstm" and got["h-path"] == shown
                if "dead" in got:  # where the engine counts dead units (ReLU)
                    assert got["dead"] == got["sat"]


@given(st.floats(min_value=0.0) | st.sampled_from([math.nan, math.inf]), st.floats(min_value=0.0, max_value=1.0))
def test_no_value_runs_into_the_next_column(x, sat):
    run = fake_run("lstm", 1_000_000)
    cols = layout(run)
    header = header_line(cols)
    line = step_line(record(1_000_000, 1_000_000, x, sat), cols)
    assert len(line) == len(header) - len(" events")  # every field exactly as wide as its column
    fields_under(header, line)


def test_the_reported_collision_is_gone():
    """At 10% saturation lstm-cec printed 'σ0.62610%': sigma and sat ran together."""
    run = fake_run("lstm", 100)
    cols = layout(run)
    r = record(3, 100, 0.626, saturation=0.10)
    got = fields_under(header_line(cols), step_line(r, cols))
    assert got["σ(J)"] == "0.626" and got["sat"] == "10%"


def test_events_follow_the_columns_severity_first():
    run = fake_run("rnn", 60, clip="step", clip_threshold=1.0)
    cols = layout(run)
    width = len(header_line(cols)) - len("events")
    line = step_line(record(7, 60, 2e7, status="exploding", clip=ClipEvent("step", 12.3, 1.0, 1 / 12.3)), cols)
    assert line[width:] == "EXPLODED CLIP 12.3->1 x0.081"
    line = step_line(record(7, 60, 1e-9, status="vanishing"), cols)
    assert line[width:] == "VANISHED"


@pytest.mark.parametrize("width", [34, 40, 54, 60, 90, 200])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_narrow_log_leaves_out_columns_but_keeps_room_for_the_tags(cell, width):
    run = fake_run(cell, 100)
    cols = layout(run, width)
    names = [c.name for c in cols]
    assert names[:4] == ["k", "t", "|dL/dh|", "ratio"]  # always there
    body = len(header_line(cols)) - len(" events")
    if len(names) > 4:
        assert body + 1 + len("TRUNCATED") <= width
    everything = [c.name for c in layout(run)]
    assert [n for n in everything if n in names] == names  # the same order, some left out


# -- words ----------------------------------------------------------------------------

# Transcribed by hand from SPEC 5's sentence: w_1..w_11; T = 10; record k is
# dL/dh_t, t = 10 - k, the state after reading w_t; next is w_{t+1}.
WIG_BY_K = {
    1: ("head", "went"),
    2: ("his", "head"),
    3: ("on", "his"),
    4: ("wig", "on"),
    5: ("a", "wig"),
    6: ("wore", "a"),
    7: ("who", "wore"),
    8: ("man", "who"),
    9: ("The", "man"),
    10: ("-", "The"),  # h_0: no word read yet
}


def test_the_wig_sentence_words_by_record():
    run = fake_run("rnn", text=WIG)
    assert run.T == 10
    cols = layout(run)
    header = header_line(cols)
    for k, (word, nxt) in WIG_BY_K.items():
        got = fields_under(header, step_line(record(k, run.T, 1.0), cols))
        assert (got["word"], got["next"]) == (word, nxt), k


def test_words_match_the_inputs_the_engine_reads():
    """A text with repeated words: each line's word is the one-hot input that
    made h_t (x_t, row t-1 of the inputs), and next is the target of step t."""
    text = "a b a c b a d d a"
    run = Run(Config(text=text, hidden=4, loss_on="all", seed=2))
    vocab = run.config.vocabulary
    run.run()
    cols = layout(run)
    header = header_line(cols)
    for k in range(1, run.T + 1):
        r = run.records[k]
        got = fields_under(header, step_line(r, cols))
        t = r.t
        read = "-" if t == 0 else vocab[int(np.argmax(run.inputs[t - 1, 0]))]
        assert got["word"] == read
        if t >= 1:
            assert got["next"] == vocab[int(run.targets[t - 1, 0])]  # the target of step t (h_t's output)
        assert got["next"] == vocab[int(np.argmax(run.inputs[t, 0]))]  # the input of transition t + 1


def test_long_and_unprintable_words_stay_in_their_column():
    run = fake_run("rnn", text="antidisestablishmentarianism x\x1b[31my ok ok")
    cols = layout(run)
    header = header_line(cols)
    line = step_line(record(run.T - 1, run.T, 1.0), cols)  # t = 1: word w_1
    got = fields_under(header, line)
    assert got["word"] == "antidisesta…" and got["next"] == "x\\x1b[31my"
    assert "\x1b" not in line


# -- on screen ------------------------------------------------------------------------


async def built(pilot):
    app = pilot.app
    for _ in range(200):
        await pilot.pause(0.02)
        if app.engine_run is not None and app.building is None:
            break
    assert app.engine_run is not None and app.building is None


def draw(app):
    app._dirty = True
    app._redraw()


async def to_end(pilot):
    app = pilot.app
    app.engine_run.run()
    app.shown = app.engine_run.T
    draw(app)
    await pilot.pause()


def log(app):
    return app.query_one("#log")


@asyncio
@pytest.mark.parametrize("size", [(80, 24), (120, 40), (60, 16)])
@pytest.mark.parametrize("preset", ["lstm-cec", "clip-rescue", "wig-sentence", "relu-rescue", "gru"])
async def test_on_screen_the_header_sits_over_its_columns(preset, size):
    app = make_app(preset)
    async with app.run_test(size=size) as pilot:
        await built(pilot)
        await to_end(pilot)
        header = log(app).header()
        lines = log(app).lines()
        assert lines and header.split()[0] == "k"
        records = {r.k: r for r in app.engine_run.records}
        for line in lines:
            got = fields_under(header, line)
            r = records[int(got["k"])]
            assert got["t"] == str(app.engine_run.T - r.k)
            assert got["|dL/dh|"] == num(r.grad_norm, na="nan") and got["ratio"] == factor(r.ratio)
        width = log(app).content_size.width
        if size[0] >= 80:  # there is room for the tags after the columns kept
            assert len(header) - len("events") + len("TRUNCATED") <= width


@asyncio
async def test_text_run_shows_man_and_went():
    app = make_app("wig-sentence")
    async with app.run_test(size=(80, 24)) as pilot:
        await built(pilot)
        await pilot.press("n")
        draw(app)
        await pilot.pause()
        assert "went" in log(app).lines()[-1].split()  # k = 1: h_9, after "head", predicting "went"
        await to_end(pilot)
        by_k = {int(line.split()[0]): line.split() for line in log(app).lines()}
        assert by_k[8][2:4] == ["man", "who"]  # h_2, the state after "man"


def screen_strips(app, widget):
    """The widget's lines as the terminal gets them: through the app's filters
    (under NO_COLOR, the one that takes the colour out)."""
    strips = widget.render_lines(widget.region.reset_offset)
    for f in app._filters:
        strips = [strip.apply_filter(f, Color(0, 0, 0)) for strip in strips]
    return [strip for strip in strips if strip.text.strip()]


@asyncio
@pytest.mark.parametrize("preset", ["step-clip", "clip-rescue"])
async def test_clip_lines_stand_out_without_colour(monkeypatch, preset):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(preset)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.no_color
        await built(pilot)
        await to_end(pilot)
        clipped = plain = 0
        for strip in screen_strips(app, app.query_one("#log-body")):
            styles = [seg.style for seg in strip if seg.text.strip()]
            if "CLIP" in strip.text:
                clipped += 1
                assert all(st.reverse and st.bold and not st.dim for st in styles), strip.text
            else:
                plain += 1
                assert not any(st.reverse or st.dim for st in styles), strip.text
        assert clipped >= 1 and (plain >= 1 or preset == "step-clip")


@asyncio
async def test_severity_tags_read_as_words(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    config = Config(hidden=8, batch=2, steps=40, init="orthogonal", scale=0.3, vanish_threshold=1e-3)
    app = make_app("orthogonal", config=config)
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        await to_end(pilot)
        vanished = 0
        for strip in screen_strips(app, app.query_one("#log-body")):
            for seg in strip:
                if seg.text == "VANISHED":
                    vanished += 1
                    assert seg.style.bold
        statuses = [r.status for r in app.engine_run.records][-len(log(app).lines()):]
        assert vanished == statuses.count("vanishing") > 0


# -- help -----------------------------------------------------------------------------


def help_terms(screen: HelpScreen) -> set[str]:
    return {term for _, entries in screen.sections() for term, _ in entries}


@asyncio
@pytest.mark.parametrize("preset", ["lstm-cec", "gru", "clip-rescue", "wig-sentence", "relu-rescue", "tanh-saturation"])
async def test_help_explains_every_column_of_the_log(preset):
    app = make_app(preset)
    async with app.run_test(size=(200, 50)) as pilot:  # wide: every column is shown
        await built(pilot)
        await to_end(pilot)
        names = log(app).header().split()
        await pilot.press("question_mark")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        terms = help_terms(screen)
        explained = " ".join(terms)
        for name in names:
            assert name.lstrip("~") in explained, name
        words = screen.text()
        for tag in ("CLIP", "crossed", "VANISHED", "EXPLODED", "OVERFLOW", "TRUNCATED", "ghost", "computed", "batch size N", "lower bound"):
            assert tag in words, tag


def test_help_names_every_key_of_the_app():
    screen = HelpScreen(BUILTIN["seed-explode"])
    terms = " ".join(help_terms(screen))
    shown = {"question_mark": "?", "plus": "+", "equals_sign": "=", "minus": "-"}
    for binding in BpttLab.BINDINGS:
        for key in binding.key.split(","):
            assert shown.get(key, key) in terms, key
    assert "ctrl+p" in terms


@asyncio
@pytest.mark.parametrize("size", [(80, 24), (60, 16)])
async def test_help_fits_and_scrolls(size):
    app = make_app("lstm-cec")
    async with app.run_test(size=size) as pilot:
        await built(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        box = app.screen.query_one("#help")
        region = box.region
        assert region.x >= 0 and region.y >= 0 and region.right <= size[0] and region.bottom <= size[1]
        assert box.max_scroll_y > 0  # longer than the screen: it scrolls
        await pilot.press("pagedown")
        await pilot.pause()
        assert box.scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


@asyncio
async def test_preset_picker_shows_a_description_as_written():
    """A preset file's description is text, not markup: brackets survive."""
    from engine.presets import Preset
    from tui.screens import PresetPicker

    odd = Preset("odd", "clip to [-c, c] with [bold]no[/bold] markup [/x]", "look", BUILTIN["seed-explode"].config, source="file")
    app = make_app("seed-explode", presets={**BUILTIN, "odd": odd})
    async with app.run_test(size=(120, 40)) as pilot:
        await built(pilot)
        app.push_screen(PresetPicker([odd]))
        await pilot.pause()
        options = app.screen.query_one("OptionList")
        text = "".join(seg.text for strip in options.render_lines(options.region.reset_offset) for seg in strip)
        assert "clip to [-c, c] with [bold]no[/bold] markup [/x]" in text
