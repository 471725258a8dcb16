"""The parameters pane: one field per setting, generated from the SPEC table
in engine/config.py. It checks only that a number is a number; the app
validates the setting against the whole config and answers with `fill` (the
run was rebuilt) or `refuse` (it was not)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from engine import Config
from engine.config import GROUPS, SPEC

# Per group, (Config field, label, kind) for the fields that have a form label;
# kind is the choices or "int"/"float". The groups a presenter changes most come
# first, so that at 80 x 24 the clip fields are on screen without scrolling.
FIRST = ("model", "clipping", "truncation")
FORM = tuple(
    (group, rows)
    for group in sorted(GROUPS, key=lambda g: FIRST.index(g) if g in FIRST else len(FIRST))
    if (rows := tuple((name, f.label, f.choices or f.kind.__name__) for name, f in SPEC.items() if f.group == group and f.label))
)


def shown(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class ParamsForm(VerticalScroll):
    DEFAULT_CSS = """
    ParamsForm {
        width: 30;
        border-right: solid $primary-darken-2;
        padding: 0 1;
        scrollbar-size-vertical: 1;
    }
    ParamsForm.hidden { display: none; }
    ParamsForm > #look-for { color: $text-muted; text-style: italic; margin-bottom: 1; }
    ParamsForm > .group { color: $accent; text-style: bold; margin-top: 1; }
    ParamsForm .row { height: 1; }
    ParamsForm .name { width: 10; color: $text-muted; }
    ParamsForm .row Input, ParamsForm .row Select { width: 1fr; }
    ParamsForm .row Input.invalid { color: $error; text-style: bold; }
    ParamsForm > #form-error { color: $error; margin-top: 1; }
    """

    class Changed(Message):
        """The user set `field` to `value` (already a number or a choice)."""

        def __init__(self, field: str, value) -> None:
            super().__init__()
            self.field, self.value = field, value

    def __init__(self, config: Config, look_for: str, **kwargs):
        super().__init__(**kwargs)
        self._config, self._look_for = config, look_for

    def compose(self) -> ComposeResult:
        yield Static(self._look_for, id="look-for")
        for group, rows in FORM:
            yield Label(group, classes="group")
            for field, label, kind in rows:
                with Horizontal(classes="row"):
                    yield Label(label, classes="name")
                    value = getattr(self._config, field)
                    if isinstance(kind, tuple):
                        yield Select([(c, c) for c in kind], value=value, allow_blank=False, id=f"f-{field}", compact=True)
                    else:
                        yield Input(shown(value), id=f"f-{field}", compact=True, type="number" if kind == "float" else "integer")
        yield Static("", id="form-error")

    def on_mount(self) -> None:
        self.fill(self._config)

    def fill(self, config: Config, look_for: str | None = None) -> None:
        """Show this config; settings it would not use are greyed out with the reason."""
        self._config = config
        if look_for is not None:
            self.query_one("#look-for", Static).update(look_for)
        with self.prevent(Select.Changed, Input.Submitted):
            for _group, rows in FORM:
                for field, _label, kind in rows:
                    widget = self.query_one(f"#f-{field}")
                    value = getattr(config, field)
                    widget.value = value if isinstance(kind, tuple) else shown(value)
                    widget.remove_class("invalid")
                    reason = config.why_not(field)
                    widget.disabled = reason is not None
                    widget.tooltip = reason
        self.query_one("#form-error", Static).update("")

    def refuse(self, field: str | None, message: str) -> None:
        """Say inline why a setting was not applied; the field keeps what was typed."""
        if field is not None:
            self.query_one(f"#f-{field}").add_class("invalid")
        self.query_one("#form-error", Static).update(f"not applied: {message}")

    def clear_error(self, field: str) -> None:
        self.query_one(f"#f-{field}").remove_class("invalid")
        self.query_one("#form-error", Static).update("")

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.post_message(self.Changed(event.select.id[2:], event.value))

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        field = event.input.id[2:]
        integer = event.input.type == "integer"
        text = event.value.strip()
        try:
            value = int(text) if integer else float(text)
        except ValueError:
            self.refuse(field, f"{field}: '{text}' is not {'an integer' if integer else 'a number'}")
            return
        self.post_message(self.Changed(field, value))
