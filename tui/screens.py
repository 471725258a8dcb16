"""Modal screens: the help and the preset picker."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Markdown, OptionList
from textual.widgets.option_list import Option

from engine.presets import Preset


class HelpScreen(ModalScreen[None]):
    """The keys, and what the current preset demonstrates."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def __init__(self, preset: Preset, bindings: list[Binding]):
        super().__init__()
        self.preset = preset
        self.keys = bindings

    def compose(self) -> ComposeResult:
        keys = "\n".join(f"| `{b.key_display or b.key.split(',')[0]}` | {b.description} |" for b in self.keys if b.description)
        text = (
            f"# {self.preset.name}\n\n{self.preset.description}\n\n**What to look for:** {self.preset.look_for}\n\n"
            f"| key | action |\n|---|---|\n{keys}\n\n"
            "Record k is the gradient with respect to h at t = T - k: the k-th Jacobian has been applied. "
            "Press escape or ? to close."
        )
        with Vertical(id="help"):
            yield Markdown(text)


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
