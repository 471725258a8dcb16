"""Modal screens: the help and the preset picker."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.clipping import END, RULES
from engine.config import CLIP_MODES, Config
from engine.presets import Preset
from engine.printable import printable
from engine.records import StepRecord

from . import format as _format
from .presenter import PAUSE_KINDS
from .views import VIEWS

HIDDEN_PATH = getattr(_format, "HIDDEN_PATH", None)  # the LSTM's hidden-path curve, where the chart draws one

_DEFAULTS = Config.__dataclass_fields__


def _or(words) -> str:
    words = list(words)
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else "".join(words)


def keys() -> list[tuple[str, str]]:
    """Every key of the dashboard, in words (a test holds this against the app's bindings)."""
    return [
        ("space", "play / pause the backward pass"),
        ("n, right", "one backward step (through steps already computed first, if you stepped back)"),
        ("b, left", "step back: show the previous record (nothing is recomputed)"),
        ("e", "run to the end"),
        ("t", "the training view (and back): the model trained update by update; a training preset opens there"),
        ("r", "reset: start the backward pass over (the same numbers again)"),
        ("+ or =, -", "faster / slower: 1 step/s up to as fast as it goes (max)"),
        ("c", f"cycle the clip mode: {', '.join(CLIP_MODES)} (the run is rebuilt)"),
        ("a", f"pause at: play stops at the first {_or(PAUSE_KINDS)}; a again picks the next kind, then none"),
        ("p", "pick a preset"),
        ("g", "pin this run's |dL/dh| as a ghost curve (up to 3), then change a setting to compare"),
        ("G", "(shift+g) clear the ghosts"),
        ("x", "export the run as JSON and CSV"),
        ("s", "save a screenshot (SVG)"),
        ("o", "show / hide the parameters pane (hidden, the log has room for more columns)"),
        ("tab", "move into the parameter fields (a click works too)"),
        ("enter", "in a parameter field: apply it (the run is rebuilt and starts over)"),
        ("escape", "leave a parameter field, so the keys above work again"),
        *((view.key, f"{view.title}: {view.what}") for view in VIEWS),
        ("ctrl+p", "command palette: every action, clip mode, pause kind and preset by name"),
        ("?", "this help; escape, ? or q closes it"),
        ("q", "quit"),
    ]


def log_columns(cell=None) -> list[tuple[str, str]]:
    """What each column of the step log means. `cell`: the cell class of the run on screen."""
    gated = cell is not None and cell.keep_gate
    gate_name = f"{cell.keep_gate}-gate" if gated else "f-gate, z-gate"
    gate_what = (
        f"the mean {cell.keep_label.split()[0]} gate {cell.keep_gate}" if gated else "the mean forget gate f (LSTM) or update gate z (GRU)"
    ) + (
        " of the step just taken back, over units and batch: the share of the old state that passes straight on."
        " Near 1 the gradient is carried along; near 0 it is cut."
    )
    recorded = StepRecord.__dataclass_fields__
    has_dead = "dead" in recorded
    rows = [
        ("k", "backward step: record k has gone back through k Jacobians and holds the gradient with respect to h at t = T - k. "
         "k = T is the initial state h_0. k is the chart's x axis."),
        ("t", "the time step of that state: t = T - k. h_t is the state after reading input t."),
        ("word, next", "text runs only. word: the word read at t (h_t is the state just after it; - for h_0, before any word). "
         "next: the word after it, the one h_t is trained to predict when the loss is on every step; the step just taken back has read it."),
        ("|dL/dh|", "how big the gradient with respect to h_t is: its L2 norm ||dL/dh_t|| over the whole batch, divided by "
         "the batch size N (after a step clip, if one acted). Heading to 0: vanishing; growing without end: exploding."),
        ("ratio", "a factor, x1.26: this step's |dL/dh|, before any clip, over the previous line's |dL/dh| (for k = 1: over "
         "|dL/dh_T|, where the pass starts). Below 1 it shrinks, above 1 it grows; a steady ratio r over k steps multiplies "
         "the gradient by r^k."),
        ("|dL/dc|", "LSTM only: the same for the cell state c_t. Its direct path multiplies by the forget gate f alone "
         "(no weight matrix, no squashing derivative): the constant error carousel."),
        *(
            [("h-path", "LSTM only: the most the hidden path alone could keep: the starting |dL/dh| times the product of the "
              "σ(J) of the steps so far, plus each later loss's own gradient, added as it comes in (the chart's 'h-path only'). "
              "Where |dL/dc| stays above it, the cell path carries the gradient.")]
            if "hidden_path" in recorded else []
        ),
        (gate_name, gate_what),
        ("σ(J)", "sigma(J): the largest singular value of the Jacobian dh_{t+1}/dh_t of the step just taken back, the largest "
         "over the batch: the most this one step can stretch the gradient (for an LSTM: along h, holding c). "
         "Shown as ~σ(J) when H > 32: then it is an estimate, a lower bound (typically within 5%)."),
        ("sat", "saturation: the fraction of the step's units whose derivative is below 5% of its maximum"
         + (", dead units apart" if has_dead else "")
         + " (LSTM, GRU: of the gates' and tanh's derivatives). A saturated unit passes almost no gradient back."),
        *(
            [("dead", "ReLU only: the fraction of units that are off (net <= 0, so f' = 0 exactly): they pass no gradient at all.")]
            if has_dead else []
        ),
        ("bound", "rnn cells only: the upper bound of Pascanu, Mikolov and Bengio (2013). Each step's Jacobian has norm at most "
         "σ_max(W_hh)·γ, with γ the largest f' (1 for tanh and relu, 1/4 for sigmoid), so from |dL/dh_T| the bound multiplies by "
         "σ_max·γ per step (and adds the loss gradient entered there). If σ_max·γ < 1, what travels back from any loss "
         "must vanish, whatever the input."),
        ("contrib", "contribution: the size (Frobenius norm) of what this step adds to dL/dW_hh, the gradient of the recurrent "
         "weights, which is the sum of these terms over all steps. When far-back terms vanish, the sum is all nearby steps "
         "and long-range dependencies are not learned."),
        ("|grad|", "the global norm of all parameter gradients summed so far (what norm clipping compares with its threshold)."),
        ("events", "the tags below, on the step where they happen."),
        ("room", "a narrow log leaves out the columns it has no room for, the least telling first: o hides the "
         "parameters pane to make room, and x exports every column."),
    ]
    return rows


def tags(config: Config | None = None) -> list[tuple[str, str]]:
    """What each tag of the log's events means; the thresholds are `config`'s (default: the defaults)."""
    vanish = config.vanish_threshold if config is not None else _DEFAULTS["vanish_threshold"].default
    explode = config.explode_threshold if config is not None else _DEFAULTS["explode_threshold"].default
    end_rules = [rule for rule in RULES.values() if rule.phase == END]
    during = [rule for rule in RULES.values() if rule.phase != END]
    return [
        ("CLIP a->b xf", "a clip acted, rescaling by the factor f; the whole line is in reverse video. "
         + " ".join(f"{r.name}: {r.measures} went from a to b at this step." for r in during)
         + f" {_or(r.name for r in end_rules)}: the parameter gradients were clipped once, at the end of the pass (on record k = T); "
         "a and b are their global norm before and after."),
        ("crossed", "(as in 'norm crossed (a)', underlined) an end-of-pass rule's measure passed its threshold here, at a; "
         "nothing is clipped yet: the rule acts at the end of the pass. "
         + " ".join(f"{r.name} measures {r.measures}." for r in end_rules)),
        ("VANISHED", f"|dL/dh| is below {vanish:g} (vanish_threshold) times |dL/dh_T|, the gradient the pass started from."),
        ("EXPLODED", f"|dL/dh| is above {explode:g} (explode_threshold) times |dL/dh_T|."),
        ("OVERFLOW", "the gradient (or the parameter gradients summed so far) is no longer a finite number (inf or nan): "
         "the numbers overflowed, and what follows from them means nothing."),
        ("TRUNCATED", "truncated BPTT is cutting here (k > truncate): outputs that lie more than truncate steps later no longer "
         "reach this state, so |dL/dh| is only part of the full gradient."),
    ]


def chart() -> list[tuple[str, str]]:
    """The chart's curves and marks by what they mean; the legend above it shows their markers."""
    rows = [
        ("legend", "above the chart: every curve and mark with its marker, so they stay apart without colour."),
        ("|dL/dh|", "|dL/dh| per backward step k (the x axis), on a log scale: each y label is a power of ten, so a straight "
         "line going down is geometric vanishing, going up geometric explosion."),
        ("|dL/dc|", "LSTM only: the cell-state gradient, beside the hidden one."),
    ]
    if HIDDEN_PATH:
        rows.append((HIDDEN_PATH, "LSTM only: the most the hidden path alone could keep: the starting |dL/dh| times the product "
                     "of the steps' σ(J), plus each later loss's own gradient. Where |dL/dc| stays above it, the cell path is "
                     "carrying the gradient."))
    rows += [
        ("bound", "rnn cells only: the Pascanu-Mikolov-Bengio bound (see bound in the log)."),
        ("off the top", "a curve other than |dL/dh| may leave the chart rather than squash |dL/dh| into a few rows: "
         "the legend says so ('off the top from k = 43'); 'hidden under |dL/dh|' means it lies on the |dL/dh| curve."),
        ("|grad|", "(params) with norm, value and agc clipping: the running norm of the parameter gradients."),
        ("o → x", "step clipping: o is |dL/dh| before the clip, x after it, at each clipped step: what the clip rescued."),
        ("!", "norm, value and agc clipping: where the running measure first crossed the threshold; at the last step o → x "
         "is the parameter-gradient norm before and after the rule rescaled it."),
        ("truncate", "a vertical line between k = truncate and the next step: beyond it the outputs' gradients are cut."),
        ("threshold", "the clip threshold: a horizontal line on the curve it is compared with (step: |dL/dh|; norm: |grad|)."),
        ("zero, overflow", "a norm of exactly 0 sits on the floor row, one that overflowed on the ceiling row "
         "(a log scale has no room for them)."),
        ("ghost", "curves pinned with g: |dL/dh| of earlier runs, each named by the settings that differ from the run on "
         "screen (up to 3; G clears them)."),
    ]
    return rows


BARS = (
    ("k 4/20", "the header: the record on screen, k, of T steps; '(computed 9)' when the engine has gone further "
     "(to 9) and you stepped back with b."),
    ("playing 10/s", "the header: playing or paused, and the speed in steps per second (max: as fast as it goes); "
     "done at the end; 'pause at' the event play stops at (a)."),
    ("H N T", "the header: hidden size H, batch size N, sequence length T; then the clip mode and threshold, and "
     "truncate, when set."),
    ("x1.08/step", "the summary: the geometric mean of the last 10 ratios, the growth per step just now."),
    ("radius", "the spectral radius of W_hh, its largest |eigenvalue|: the growth per step of the pure matrix chain "
     "in the long run."),
    ("sigma_max", "the largest singular value of W_hh. The verdict checks σ_max·γ < 1, which guarantees vanishing "
     "(not the other way round)."),
)


class HelpScreen(ModalScreen[None]):
    """What the preset shows, what every column, tag, curve and key means."""

    DEFAULT_CSS = """
    HelpScreen .help-section {
        text-style: bold;
        color: $text-accent;
        margin-top: 1;
    }
    HelpScreen #help > .help-section:first-child {
        margin-top: 0;
    }
    HelpScreen .help-entry {
        height: auto;
    }
    HelpScreen .help-term {
        width: 14;
        text-style: bold;
    }
    HelpScreen .help-what {
        width: 1fr;
    }
    """

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "close")]

    def __init__(self, preset: Preset, cell=None, config: Config | None = None):
        """`cell`: the cell class of the run on screen; `config`: its config
        (the statuses' thresholds), the preset's when not given."""
        super().__init__()
        self.preset, self.cell = preset, cell
        self.config = config or preset.config

    def sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(title, [(term, what it means)]) in the order shown: what a test reads."""
        p = self.preset
        return [
            (p.name, [("shows", p.description), ("look for", p.look_for)]),
            ("The step log: one line per backward step", log_columns(self.cell)),
            ("Tags", tags(self.config)),
            ("The chart", chart()),
            ("The header and the summary", list(BARS)),
            ("Keys", keys()),
        ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help") as scroll:
            scroll.border_title = "help"
            scroll.border_subtitle = "↑ ↓ PgUp PgDn scroll · escape closes"
            for title, entries in self.sections():
                yield Static(title, classes="help-section", markup=False)
                for term, what in entries:
                    with Horizontal(classes="help-entry"):
                        yield Static(term, classes="help-term", markup=False)
                        yield Static(what, classes="help-what", markup=False)

    def text(self) -> str:
        """Everything the help says, as plain text."""
        return "\n".join(f"{term}: {what}" for _, entries in self.sections() for term, what in entries)


class PresetPicker(ModalScreen[str | None]):
    """Choose a preset by name; enter picks, escape cancels."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, presets: list[Preset]):
        super().__init__()
        self.presets = presets

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            # Content, not markup: a preset file's description is shown as written ("[b]" and "[/x]" too)
            yield OptionList(*(Option(Content(f"{p.name:<16} {printable(p.description)}"), id=p.name) for p in self.presets))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


# -- the training view's help -------------------------------------------------------------


def training_keys() -> list[tuple[str, str]]:
    """Every key of the training view, in words (a test holds this against its bindings)."""
    return [
        ("space", "train / pause: updates in the background at the chosen speed; pausing stops before the next update"),
        ("n, right", "one update on: the cursor moves through the updates already taken first, then one more is taken"),
        ("b, left", "the cursor one update back (training pauses); the charts mark it with a vertical line, the log ends at it (▸)"),
        ("[ , ]", "the cursor to the previous / next update whose parameters a checkpoint kept: enter opens it without replaying"),
        ("enter", "open the cursor's update (else the latest) in the per-step view: its backward pass, one timestep at a time, "
         "on the parameters the update used (theta_{u-1}) and its batch: exactly the gradient it used"),
        ("t", "to the per-step view and back (from an opened update, escape comes back too); training stays where it was"),
        ("e", "train to the end at full speed (the speed comes back after)"),
        ("r", "reset: train again from the start (the same seed: the same data and initial weights)"),
        ("+ or =, -", "faster / slower: 1 update/s up to as fast as the machine goes (max)"),
        ("c", f"cycle the clip mode ({', '.join(CLIP_MODES)}): the training starts over on the same data"),
        ("u", "norm clipping at the suggested threshold: a warm-up of unclipped updates (computed in the background), "
         "then the training starts over clipped at their mean norm"),
        ("g", "pin this training's loss, gradient norm and reach as ghost curves (up to 3), then change the clip (c) or the "
         "preset (p, e.g. adding-rnn against adding-lstm) to compare on the same data"),
        ("G", "(shift+g) clear the ghosts"),
        ("x", "export the updates so far as JSON and CSV (a consistent snapshot, even while training)"),
        ("p", "pick a preset (a training preset trains here, the others open in the per-step view)"),
        ("s", "save a screenshot (SVG)"),
        *((view.key, f"{view.title}: {view.what}") for view in VIEWS),
        ("ctrl+p", "command palette: every action by name"),
        ("?", "this help; escape, ? or q closes it"),
        ("q", "quit (at once, even mid-training)"),
    ]


def training_charts() -> list[tuple[str, str]]:
    """The training view's charts, left to right; the legend above each names its markers."""
    return [
        ("axes", "x: the update u, 1 to the planned number (to the divergence, once one happened). y: a log scale, each label a "
         "power of ten. Long trainings are cut to the chart's width keeping each column's least and greatest value, "
         "so a spike stays visible."),
        ("loss", "left: the batch's loss per update, the loss on the fixed evaluation batch every E updates (eval, •), and the "
         "baseline: what a model that learned nothing gets (adding: 1/6, predicting 1 always; temporal order: ln 4; text: T times the "
         "unigram entropy of the words). Below the baseline the model has learned something. For accuracy tasks the "
         "evaluation accuracy (+) and its chance level too."),
        ("|grad|", "middle: the global L2 norm of all parameter gradients per update, before clipping. A spike is the "
         "exploding gradient; a run of them sends the loss up. With clipping, o is the norm before and x after each clip, "
         "and norm clipping draws its threshold."),
        ("radius, σ_max", "right: the spectral radius and the largest singular value of W_hh (gated cells: the largest gate "
         "block), taken every few updates. With 1/γ: for an rnn, σ_max below 1/γ guarantees vanishing."),
        ("reach", "right (loss on the last step only): ||dL/dh_0|| / ||dL/dh_T||, how much of the gradient arrives at the "
         "start of the sequence. Near 0: the first steps cannot be learned from."),
        ("long_share", "right: the share of dL/dW_hh's per-step terms (their norms) that comes from steps more than T/2 back: "
         "the long-range terms, as one number (seed 001). An RNN's stays near 0; an LSTM's does not."),
        ("off the bottom", "reach, long_share and ghosts may leave the chart rather than squash the others into a few rows: "
         "the legend says from which update."),
        ("│ cursor", "the vertical line: the update under the cursor (b, n, [ ])."),
        ("nan/inf", "a loss or norm that is not finite (a divergence) is drawn on the ceiling row, counted in the legend."),
        ("ghost", "░ ▒ ▓: a pinned training (g), named by the preset or the settings that differ."),
    ]


def update_log_columns() -> list[tuple[str, str]]:
    """What each column of the update log means."""
    return [
        ("▸", "the update under the cursor (the log ends at it)."),
        ("u", "the update: one forward pass, one full backward pass, one clipping decision and one optimizer step on a fresh "
         "batch. The numbers on its line are of the parameters it started from, theta_{u-1} (the ones enter opens)."),
        ("loss", "the batch's loss (summed over the loss steps)."),
        ("eval mse, eval acc", "the task metric on the fixed evaluation batch, after the update, every E updates (blank between)."),
        ("|grad|", "the global gradient norm before clipping."),
        ("radius, σ_max", "of W_hh (the largest gate block), every few updates (- between)."),
        ("reach, long", "reach and long_share, as on the right chart (- where they do not apply)."),
        ("CLIP a->b", "the update was clipped: its gradient norm went from a to b (the whole line in reverse video); "
         "'CLIP n steps': a step rule clipped the carried gradient at n steps of the backward pass."),
        ("events", "the tags below, on the update where they happen."),
        ("DIVERGED", "the loss, the gradient or the new parameters are not finite: the training stops here, the step is not "
         "applied, and the parameters before it are kept (enter opens this update's backward pass: watch it overflow)."),
    ]


TRAINING_BARS = (
    ("u 37/1500", "the header: the update on screen of the planned ones; '(latest 60)' when the cursor is behind the latest."),
    ("state", "playing or paused with the speed in updates per second (max: as fast as it goes), done, or diverged."),
    ("status", "the summary: updates taken, or DIVERGED with the update, what was not finite and the parameters kept; the "
     "last evaluation against the baseline; the number of clipped updates."),
    ("suggested clip", "Pascanu et al.'s heuristic: half to ten times the mean gradient norm of the unclipped warm-up updates "
     "still converge; u trains with norm clipping at the mean."),
    ("checkpoints", "how many parameter sets are kept (the first, every C updates thinned to a bounded number, the last "
     "finite one); [ and ] move the cursor to them."),
)


class TrainingHelpScreen(HelpScreen):
    """What the training view shows and what its charts, columns and keys mean.
    `defaults`: the preset has no training of its own (its model trains with the defaults)."""

    defaults = False

    def sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        p = self.preset
        if not self.defaults:
            about = [("shows", p.description), ("look for", p.look_for)]
        else:  # a per-step preset's model, trained with the default settings (t from the per-step view)
            about = [("model", p.description), ("training", "this preset has no training of its own: its model trains with the "
                     "default settings (the adding task, or text for a sentence); what it asks you to look for is in the per-step view")]
        return [
            (p.name, about),
            ("The charts, left to right", training_charts()),
            ("The update log: one line per update", update_log_columns()),
            ("The header and the summary", list(TRAINING_BARS)),
            ("Keys of the training view", training_keys()),
        ]
