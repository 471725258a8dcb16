"""Modal screens: the help and the preset picker."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from rich.markup import escape
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.presets import Preset


KEYS = (
    ("space", "play / pause the backward pass"),
    ("n, right", "one backward step"),
    ("e", "run to the end"),
    ("r", "reset: start the backward pass over"),
    ("+ / -", "faster / slower (1 step/s up to as fast as it goes)"),
    ("c", "cycle the clip mode: none, norm, value, step, agc"),
    ("p", "pick a preset (also in the command palette, ctrl+p)"),
    ("g / G", "pin this run as a ghost curve, to compare / clear it"),
    ("x", "export the run as JSON and CSV"),
    ("o", "show / hide the parameters pane"),
    ("tab", "move into the parameter fields (a click works too)"),
    ("enter", "in a parameter field: apply it (the run starts over)"),
    ("escape", "leave a parameter field, so the keys above work again"),
    ("?", "this help"),
    ("q", "quit"),
)


class HelpScreen(ModalScreen[None]):
    """The keys, and what the current preset demonstrates."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def __init__(self, preset: Preset, cell=None):
        super().__init__()
        self.preset, self.cell = preset, cell

    def compose(self) -> ComposeResult:
        keys = "\n".join(f"  {key:<10} {what}" for key, what in KEYS)
        text = (
            f"[b]{self.preset.name}[/b]: {escape(self.preset.description)}\n\n"
            f"[b]What to look for[/b]: {escape(self.preset.look_for)}\n\n"
            f"{keys}\n\n"
            "Record k is the gradient with respect to h at t = T - k: the k-th Jacobian has been applied.\n"
            "[dim]escape or ? closes this help[/dim]"
        )
        with VerticalScroll(id="help"):
            yield Static(text)


class PresetPicker(ModalScreen[str | None]):
    """Choose a preset by name; enter picks, escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, presets: list[Preset]):
        super().__init__()
        self.presets = presets

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield OptionList(*(Option(f"{p.name:<16} {p.description}", id=p.name) for p in self.presets))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)
