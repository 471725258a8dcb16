"""JSON and CSV exports of a run and of a training (schemas documented in the README).

JSON is strict RFC 8259: a non-finite number is written as null (the step's
status says why) and `json.dumps(allow_nan=False)` guarantees no NaN or
Infinity literal can slip through.

`to_json` and `to_csv` return the whole text (the dashboard, short runs);
`write_json` and `write_csv` write the same bytes to a stream a chunk of
records at a time, straight from the record columns, so a run of a million
steps is written in memory bounded by the chunk, not by the document.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Callable, TextIO

import numpy as np

from .config import CLIP_MODES, Config
from .records import NUMERIC, STATUSES
from .run import Run
from .training import BLOCKED, Checkpoint, TrainingSettings
from .training import NUMERIC as UPDATE_NUMERIC
from .training import STATUSES as UPDATE_STATUSES
from .weights import param_shapes

SCHEMA = "bptt-lab.run/1"
CHUNK = 1024  # records formatted at a time by the streaming writers
CSV_COLUMNS = ("k", "t", *NUMERIC, "status", "clip_mode", "clip_applied", "clip_before", "clip_after", "clip_factor")


def finite_or_none(x: Any) -> Any:
    """Numbers JSON can carry; everything non-finite becomes None, recursively."""
    if isinstance(x, dict):
        return {k: finite_or_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite_or_none(v) for v in x]
    if isinstance(x, np.ndarray):
        return finite_or_none(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def step_dicts(run: Run) -> list[dict]:
    """One dict per recorded step, keys as in the StepRecord."""
    out = []
    for r in run.records:
        d = {"k": r.k, "t": r.t}
        d.update({name: getattr(r, name) for name in NUMERIC})
        d["clip"] = None if r.clip is None else {"mode": r.clip.mode, "before": r.clip.before, "after": r.clip.after, "factor": r.clip.factor, "applied": r.clip.applied}
        d["status"] = r.status
        out.append(d)
    return out


# Config settings newer than the first exports: an export without them has their defaults.
ADDED_SETTINGS = ("weights_prefix", "layer")


def weights_file(model) -> dict:
    """{"weights_file": where the parameters came from} for a model loaded from a file, else {}."""
    return {"weights_file": model.source.to_dict()} if model.source is not None else {}


def to_dict(run: Run, dump: bool = False, preset: str | None = None, source: dict | None = None) -> dict:
    doc = {
        "schema": SCHEMA,
        "preset": preset,
        **({"from_training": source} if source else {}),
        "config": run.config.to_dict(),
        **weights_file(run.model),
        "summary": run.summary(),
        "steps": step_dicts(run),
    }
    if dump:
        doc["params"] = {name: p for name, p in run.params.items()}
        doc["inputs"] = run.inputs
        doc["targets"] = run.targets
        doc["grads"] = run.grads if run.done else None
        doc["grads_raw"] = run.grads_raw
    return finite_or_none(doc)


def to_json(run: Run, dump: bool = False, preset: str | None = None, indent: int | None = 2, source: dict | None = None) -> str:
    return json.dumps(to_dict(run, dump, preset, source), indent=indent, allow_nan=False)


def to_csv(run: Run) -> str:
    """One row per recorded step; an empty cell is a value that does not apply or is not finite."""
    buf = io.StringIO()
    write_csv(run, buf)
    return buf.getvalue()


Progress = Callable[[int, int], None]  # (records written, records in all), after each chunk


def write_csv(run: Run, stream: TextIO, progress: Progress | None = None) -> None:
    """`to_csv`, written to `stream` a chunk of records at a time."""
    rec = run.records
    out = _Buffered(stream)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    count = len(rec)
    for lo in range(0, count, CHUNK):
        hi = min(lo + CHUNK, count)
        numeric = [_numbers(rec.columns[name][lo:hi], "") for name in NUMERIC]
        status = [STATUSES[s] for s in rec.status[lo:hi].tolist()]
        clip = [_csv_clip(rec, i) if mode else ("", "", "", "", "") for i, mode in enumerate(rec.clip_mode[lo:hi].tolist(), lo)]
        w.writerows((k, rec.steps - k, *values, s, *c) for k, *values, s, c in zip(range(lo + 1, hi + 1), *numeric, status, clip))
        if progress is not None:
            progress(hi, count)
    out.flush()


def _csv_clip(rec, i: int) -> tuple[str, ...]:
    return (
        CLIP_MODES[rec.clip_mode[i]],
        "true" if rec.clip_applied[i] else "false",
        *(_numbers(np.array([rec.clip_before[i], rec.clip_after[i], rec.clip_factor[i]]), "")),
    )


def write_json(run: Run, stream: TextIO, dump: bool = False, preset: str | None = None, progress: Progress | None = None, source: dict | None = None) -> None:
    """`to_json` (indent 2), byte for byte, written to `stream` a chunk at a time.

    The header, config and summary are small; the steps are formatted a
    chunk of records at a time from the record columns, and with `dump` every
    array is written a row at a time, so memory stays bounded by the chunk
    (and the run's own arrays) however long the run. No trailing newline, as
    `to_json`. `source`: the training export and update a replayed run
    comes from (`from_training`, after `preset`)."""
    out = _Buffered(stream)
    members: list[tuple[str, Any]] = [("schema", SCHEMA), ("preset", preset), *([("from_training", source)] if source else []), ("config", run.config.to_dict()), *weights_file(run.model).items(), ("summary", run.summary()), ("steps", None)]
    if dump:
        members += [
            ("params", dict(run.params)),
            ("inputs", run.inputs),
            ("targets", run.targets),
            ("grads", run.grads if run.done else None),
            ("grads_raw", run.grads_raw),
        ]
    out.write("{")
    for i, (key, value) in enumerate(members):
        out.write(("," if i else "") + "\n  " + json.dumps(key) + ": ")
        if key == "steps":
            _write_steps(run, out, progress)
        else:
            _encode(value, 1, out)
    out.write("\n}")
    out.flush()


# One step of the "steps" array at indent 2, as json.dumps lays out step_dicts().
_STEP = "    {\n" + "".join(f'      "{name}": %s,\n' for name in ("k", "t", *NUMERIC, "clip")) + '      "status": %s\n    }'
_CLIP = "{\n" + "".join(f'        "{name}": %s,\n' for name in ("mode", "before", "after", "factor")) + '        "applied": %s\n      }'


def _write_steps(run: Run, out: "_Buffered", progress: Progress | None) -> None:
    rec = run.records
    count = len(rec)
    if not count:
        out.write("[]")
        return
    out.write("[\n")
    status_json = [json.dumps(s) for s in STATUSES]
    for lo in range(0, count, CHUNK):
        hi = min(lo + CHUNK, count)
        numeric = [_numbers(rec.columns[name][lo:hi]) for name in NUMERIC]
        status = [status_json[s] for s in rec.status[lo:hi].tolist()]
        clip = [_json_clip(rec.clip(i + 1)) if mode else "null" for i, mode in enumerate(rec.clip_mode[lo:hi].tolist(), lo)]
        rows = (_STEP % (k, rec.steps - k, *values, c, s) for k, *values, c, s in zip(range(lo + 1, hi + 1), *numeric, clip, status))
        out.write((",\n" if lo else "") + ",\n".join(rows))
        if progress is not None:
            progress(hi, count)
    out.write("\n  ]")


def _json_clip(event) -> str:
    return _CLIP % (json.dumps(event.mode), *(_scalar(x) for x in (event.before, event.after, event.factor)), "true" if event.applied else "false")


def _scalar(x: Any) -> str:
    return json.dumps(finite_or_none(x), allow_nan=False)


def _numbers(a: np.ndarray, null: str = "null") -> list[str]:
    """The JSON text of each element of a 1-D array (`null` where not finite):
    what json.dumps writes for finite_or_none(a.tolist())'s elements."""
    if a.dtype == np.bool_:
        return ["true" if x else "false" for x in a.tolist()]
    if np.issubdtype(a.dtype, np.integer):
        return [str(x) for x in a.tolist()]
    if np.issubdtype(a.dtype, np.floating):
        out = list(map(float.__repr__, a.tolist()))
        for i in np.flatnonzero(~np.isfinite(a)).tolist():
            out[i] = null
        return out
    return [_scalar(x) for x in a.tolist()]


def _encode(value: Any, level: int, out: "_Buffered") -> None:
    """json.dumps(finite_or_none(value), indent=2) as it reads nested `level`
    deep, written piecewise: arrays a row (a chunk of a 1-D array) at a time."""
    if isinstance(value, dict) and value:
        inner = "\n" + "  " * (level + 1)
        for i, (key, v) in enumerate(value.items()):
            out.write(("{" if i == 0 else ",") + inner + json.dumps(key) + ": ")
            _encode(v, level + 1, out)
        out.write("\n" + "  " * level + "}")
    elif isinstance(value, (list, tuple, np.ndarray)) and len(value) and not (isinstance(value, np.ndarray) and value.ndim == 0):
        inner = ",\n" + "  " * (level + 1)
        out.write("[" + inner[1:])
        if isinstance(value, np.ndarray) and value.ndim == 1:
            for lo in range(0, len(value), CHUNK):
                out.write((inner if lo else "") + inner.join(_numbers(value[lo : lo + CHUNK])))
        else:
            for i, v in enumerate(value):
                if i:
                    out.write(inner)
                _encode(v, level + 1, out)
        out.write("\n" + "  " * level + "]")
    else:
        out.write(json.dumps(finite_or_none(value), indent=2, allow_nan=False).replace("\n", "\n" + "  " * level))


class _Buffered:
    """Hands `stream` about `size` characters at a time, however small the pieces written."""

    def __init__(self, stream: TextIO, size: int = 1 << 18):
        self.stream, self.size = stream, size
        self.parts: list[str] = []
        self.length = 0

    def write(self, text: str) -> None:
        self.parts.append(text)
        self.length += len(text)
        if self.length >= self.size:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            text = "".join(self.parts)
            self.parts.clear()
            self.length = 0
            self.stream.write(text)


# -- training (SPEC 8): `bptt-lab.train/1` ------------------------------------------------

TRAIN_SCHEMA = "bptt-lab.train/1"
# One object per update, in this order; spectral_radius and sigma_max are lists, one per gate block.
UPDATE_FIELDS = (
    "u", "loss", "eval_loss", "metric", "grad_norm_raw", "grad_norm", "clipped", "clip_factor", "clip_steps",
    "spectral_radius", "sigma_max", "reach", "long_share", "evaluated", "status",
)  # fmt: skip


def update_rows(training, lo: int, hi: int) -> list[dict]:
    """The records of updates lo+1..hi as JSON-ready dicts (non-finite values None)."""
    rec, cols = training.records, training.records.columns
    numeric = {name: cols[name][lo:hi].tolist() for name in UPDATE_NUMERIC}
    blocked = {name: cols[name][lo:hi].tolist() for name in BLOCKED}
    clipped, evaluated = rec.clipped[lo:hi].tolist(), rec.evaluated[lo:hi].tolist()
    clip_steps, status = rec.clip_steps[lo:hi].tolist(), rec.status[lo:hi].tolist()
    rows = []
    for i in range(hi - lo):
        row = {"u": lo + i + 1, **{name: numeric[name][i] for name in UPDATE_NUMERIC}, "clipped": clipped[i], "clip_steps": clip_steps[i]}
        row.update({name: blocked[name][i] for name in BLOCKED})
        row.update(evaluated=evaluated[i], status=UPDATE_STATUSES[status[i]])
        rows.append(finite_or_none({name: row[name] for name in UPDATE_FIELDS}))
    return rows


def checkpoint_dict(checkpoint) -> dict:
    """A checkpoint as JSON: the updates it follows, why it was kept, the parameters and the optimizer's state."""
    return {"n": checkpoint.n, "reasons": sorted(checkpoint.reasons), "params": dict(checkpoint.params), "optimizer": checkpoint.optimizer}


def training_header(training, preset: str | None = None, upto: int | None = None, suggestion=None) -> dict:
    """Everything before the updates: what makes the training again (config,
    training settings, the seed in the config) and its summary after `upto`
    updates (`suggestion`: see Training.summary)."""
    return {
        "schema": TRAIN_SCHEMA,
        "preset": preset,
        "config": training.config.to_dict(),
        **weights_file(training.model),
        "training": training.settings.to_dict(),
        "blocks": list(training.config.cell_type.gates),
        "summary": training.summary(upto, suggestion),
    }


def training_to_dict(training, preset: str | None = None, dump: bool = False, suggestion=None) -> dict:
    """The `bptt-lab.train/1` document of the updates recorded so far (a consistent snapshot)."""
    count = training.records.count
    doc = training_header(training, preset, count, suggestion)
    doc["updates"] = update_rows(training, 0, count)
    if dump:
        doc["checkpoints"] = [checkpoint_dict(ck) for n, ck in sorted(training.checkpoints.items()) if n <= count]
    return finite_or_none(doc)


def write_training_json(training, stream: TextIO, preset: str | None = None, dump: bool = False, progress: Progress | None = None, suggestion=None) -> None:
    """The `bptt-lab.train/1` document, strict JSON at indent 2 with one update
    a line, written a chunk of updates at a time (no trailing newline).
    `dump` adds the checkpoints (parameters and optimizer state), from which
    any update is made again quickly."""
    count = training.records.count  # one snapshot, however far a worker has got since
    out = _Buffered(stream)
    header = training_header(training, preset, count, suggestion)
    out.write("{")
    for i, (key, value) in enumerate(header.items()):
        out.write(("," if i else "") + "\n  " + json.dumps(key) + ": ")
        _encode(value, 1, out)
    out.write(',\n  "updates": [')
    for lo in range(0, count, CHUNK):
        hi = min(lo + CHUNK, count)
        lines = (json.dumps(row, allow_nan=False) for row in update_rows(training, lo, hi))
        out.write(("," if lo else "") + "\n    " + ",\n    ".join(lines))
        if progress is not None:
            progress(hi, count)
    out.write("\n  ]" if count else "]")
    if dump:
        out.write(',\n  "checkpoints": ')
        _encode([checkpoint_dict(ck) for n, ck in sorted(training.checkpoints.items()) if n <= count], 1, out)
    out.write("\n}")
    out.flush()


def training_csv_columns(training) -> list[str]:
    """The CSV header: a spectral_radius and sigma_max column per gate block (`spectral_radius_f`; one block: no suffix)."""
    gates = training.config.cell_type.gates
    names = []
    for name in UPDATE_FIELDS:
        if name in BLOCKED and len(gates) > 1:
            names += [f"{name}_{g}" for g in gates]
        else:
            names.append(name)
    return names


def write_training_csv(training, stream: TextIO, lo: int = 0, hi: int | None = None, header: bool = True, progress: Progress | None = None) -> None:
    """One row per update lo+1..hi (default: all recorded); an empty cell is a
    value not taken at that update or not finite. Called again with the next
    range, it streams a training as it runs."""
    hi = training.records.count if hi is None else hi
    out = _Buffered(stream)
    w = csv.writer(out, lineterminator="\n")
    if header:
        w.writerow(training_csv_columns(training))
    for start in range(lo, hi, CHUNK):
        end = min(start + CHUNK, hi)
        for row in update_rows(training, start, end):
            cells = []
            for name in UPDATE_FIELDS:
                value = row[name]
                for v in value if isinstance(value, list) else [value]:
                    cells.append("" if v is None else "true" if v is True else "false" if v is False else v)
            w.writerow(cells)
        if progress is not None:
            progress(end - lo, hi - lo)
    out.flush()


@dataclass(frozen=True)
class TrainingExport:
    """What `read_training` finds in a `bptt-lab.train/1` document: enough to
    make any recorded update again (`training.replay_update`)."""

    preset: str | None
    config: Config
    settings: Any  # TrainingSettings
    losses: dict[int, float]  # u -> the update's recorded loss (NaN for null)
    statuses: dict[int, str]
    checkpoints: list  # Checkpoint, by n (empty without --dump)

    @property
    def updates_done(self) -> int:
        return max(self.losses, default=0)

    def start_for(self, u: int):
        """The latest checkpoint before update u, or None (replay from theta_0)."""
        before = [ck for ck in self.checkpoints if ck.n < u]
        return before[-1] if before else None


class ExportError(ValueError):
    """A file that is not a usable `bptt-lab.train/1` document; the message says why."""


def read_training(text: str) -> TrainingExport:
    """Parse a `bptt-lab.train/1` document (ExportError or ConfigError if it cannot be used)."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ExportError(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != TRAIN_SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else None
        raise ExportError(f"not a {TRAIN_SCHEMA} export (schema {found!r}); bptt-lab train --format json writes one")
    for key, kind in (("config", dict), ("training", dict), ("updates", list)):
        if not isinstance(doc.get(key), kind):
            raise ExportError(f"'{key}' is missing or not {'an object' if kind is dict else 'a list'}")
    names = [f.name for f in fields(Config) if f.init]
    missing = [n for n in names if n not in doc["config"] and n not in ADDED_SETTINGS]
    if missing:
        raise ExportError(f"'config' lacks '{missing[0]}'")
    config = Config(**{n: doc["config"][n] for n in names if n in doc["config"]})
    settings = TrainingSettings.from_dict(doc["training"])
    config = settings.make_task(config).configure(config)
    losses, statuses = {}, {}
    for i, row in enumerate(doc["updates"], 1):
        if not isinstance(row, dict) or row.get("u") != i:
            raise ExportError(f"update {i} is missing or out of order")
        loss = row.get("loss")
        losses[i] = math.nan if loss is None else float(loss)
        statuses[i] = str(row.get("status"))
    shapes = param_shapes(config)
    checkpoints = []
    for ck in doc.get("checkpoints") or []:
        try:
            params = {name: np.array(ck["params"][name], dtype=np.float64) for name in shapes}
            bad = next((name for name, shape in shapes.items() if params[name].shape != tuple(shape)), None)
            if bad:
                raise ExportError(f"checkpoint {ck['n']}: {bad} has shape {params[bad].shape}, the config needs {tuple(shapes[bad])}")
            checkpoints.append(Checkpoint(int(ck["n"]), params, _optimizer_state(ck["optimizer"]), set(ck.get("reasons", []))))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ExportError):
                raise
            raise ExportError(f"a checkpoint cannot be read ({type(exc).__name__}: {exc})") from None
    checkpoints.sort(key=lambda ck: ck.n)
    return TrainingExport(doc.get("preset"), config, settings, losses, statuses, checkpoints)


def _optimizer_state(state: Any) -> Any:
    """An optimizer state from JSON: parameter dicts of lists become arrays (null stays None)."""
    if isinstance(state, dict):
        return {k: _optimizer_state(v) for k, v in state.items()}
    if isinstance(state, list):
        return np.array(state, dtype=np.float64)
    return state
