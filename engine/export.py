"""JSON and CSV exports of a run (schema documented in the README).

JSON is strict RFC 8259: a non-finite number is written as null (the step's
status says why) and `json.dumps(allow_nan=False)` guarantees no NaN or
Infinity literal can slip through.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

import numpy as np

from .bptt import Run
from .records import NUMERIC, STATUSES
from .config import CLIP_MODES

SCHEMA = "bptt-lab.run/1"
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


def to_dict(run: Run, dump: bool = False, preset: str | None = None) -> dict:
    doc = {
        "schema": SCHEMA,
        "preset": preset,
        "config": run.config.to_dict(),
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


def to_json(run: Run, dump: bool = False, preset: str | None = None, indent: int | None = 2) -> str:
    return json.dumps(to_dict(run, dump, preset), indent=indent, allow_nan=False)


def to_csv(run: Run) -> str:
    """One row per recorded step; an empty cell is a value that does not apply or is not finite."""
    rec = run.records
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for i in range(len(rec)):
        k = i + 1
        row = [k, rec.steps - k]
        row += [_cell(rec.columns[name][i]) for name in NUMERIC]
        row.append(STATUSES[rec.status[i]])
        if rec.clip_mode[i]:
            row += [CLIP_MODES[rec.clip_mode[i]], "true" if rec.clip_applied[i] else "false"]
            row += [_cell(rec.clip_before[i]), _cell(rec.clip_after[i]), _cell(rec.clip_factor[i])]
        else:
            row += ["", "", "", "", ""]
        w.writerow(row)
    return buf.getvalue()


def _cell(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else ""
