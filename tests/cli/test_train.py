"""`bptt-lab train` and `bptt-lab run --from-training` (issue 9): the table,
CSV and strict JSON of a training, the threshold suggestion as a flag, every
bad input as one line with exit code 2, a divergence as a status, Ctrl-C as a
clean stop, and the replay of one update's backward pass from an export,
equal to the gradients that update used.

Expectations are computed here: the engine's Training run directly (its
numbers are checked against PyTorch and the SPEC in tests/engine), the clip
rule and the suggestion from the exported norms. Trainings are shortened
(--updates) wherever a check allows it; the whole of train-explode runs once
(3 s), for its divergence.
"""

from __future__ import annotations

import csv
import io
import json
import math
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.export import TRAIN_SCHEMA, UPDATE_FIELDS
from engine.presets import BUILTIN
from engine.training import Training
from tests.engine.test_training import Watched
from tests.processes import as_a_shell_would, stop_while_writing
from tui.cli import app

runner = CliRunner()
SCRIPT = str(Path(sys.executable).with_name("bptt-lab"))
ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result


def strict_json(text: str):
    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def refused(result, *words: str) -> str:
    """The one-line error of a refused command; `words` must all be in it."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr.strip()
    assert "\n" not in err and err.startswith("bptt-lab: error: "), err
    assert "Traceback" not in result.output
    for w in words:
        assert w in err, (w, err)
    return err


def engine_training(name: str, **changes) -> Training:
    """The preset trained by the engine itself, with training settings changed."""
    p = BUILTIN[name]
    training = Training(p.config, replace(p.training, **changes))
    training.run()
    return training


# -- the outputs ----------------------------------------------------------------------------------


def test_help_shows_the_training_flags():
    out = " ".join(ok("train", "--help").stdout.split())
    for flag in ("--task", "--optimizer", "--lr", "--momentum", "--beta1", "--beta2", "--eps", "--updates", "--eval-every", "--eval-batch",
                 "--checkpoint-every", "--max-checkpoints", "--diagnostics-every", "--warmup", "--window", "--text-file", "--clip-threshold",
                 "--hidden", "--cell", "--format", "--dump", "--plot", "--output"):  # fmt: skip
        assert flag in out, flag
    assert "suggested" in out


def test_the_table_has_a_line_per_e_updates_and_a_summary():
    out = ok("train", "adding-rnn", "--updates", "100", "--eval-every", "25").stdout
    lines = out.splitlines()
    assert lines[0].startswith("adding-rnn: rnn/tanh") and "adam lr 0.01" in lines[0] and "100 updates" in lines[0]
    assert lines[1].split()[:3] == ["u", "loss", "eval"]
    assert [line.split()[0] for line in lines[2:7]] == ["0", "25", "50", "75", "100"]
    training = engine_training("adding-rnn", updates=100, eval_every=25)
    row = lines[6].split()
    assert float(row[2]) == pytest.approx(training.records[100].eval_loss, rel=0.005)
    assert "status            done: 100 updates" in out
    assert "(baseline 0.167: predicting 1 always: Var(u_a + u_b) = 1/6)" in out


def test_accuracy_is_a_column_for_a_task_whose_metric_is_not_its_loss():
    out = ok("train", "temporal-order-rnn", "--updates", "20", "--eval-every", "10").stdout
    header = out.splitlines()[1]
    assert "accuracy" in header
    assert "accuracy" in out.split("status ")[1] and "(baseline 25%: chance" in out


def test_a_divergence_is_a_status_in_the_table_and_the_json():
    """train-explode in full: the run stops at update 1270 with a status, exit code 0, no warning."""
    result = ok("train", "train-explode", "--format", "json")
    assert "Warning" not in result.stderr and "Traceback" not in result.stderr
    doc = strict_json(result.stdout)
    s = doc["summary"]
    assert (s["status"], s["diverged_at"], s["diverged_on"], s["updates_done"], s["updates_applied"]) == ("diverged", 1270, "loss", 1270, 1269)
    last = doc["updates"][-1]
    assert last["u"] == 1270 and last["status"] == "diverged" and last["loss"] is None and last["grad_norm_raw"] is None
    training = engine_training("train-explode")
    losses = [r["loss"] for r in doc["updates"][:-1]]
    np.testing.assert_array_equal(losses, training.records.columns["loss"][:1269])
    table = ok("train", "train-explode").stdout
    assert "1270        nan" in table and "DIVERGED (loss not finite)" in table
    assert "DIVERGED at u = 1270: its loss is not finite; kept: the parameters after u = 1269, the last finite ones" in table
    for u in (1266, 1267, 1268, 1269):  # the last updates before the divergence, a line each
        assert any(line.split()[:1] == [str(u)] for line in table.splitlines()), u


def test_json_follows_the_schema_and_carries_what_makes_the_training_again():
    doc = strict_json(ok("train", "adding-lstm", "--updates", "30", "--eval-every", "10", "--format", "json").stdout)
    assert doc["schema"] == TRAIN_SCHEMA == "bptt-lab.train/1" and doc["preset"] == "adding-lstm"
    assert list(doc) == ["schema", "preset", "config", "training", "blocks", "summary", "updates"]
    assert doc["blocks"] == ["i", "f", "g", "o"] and doc["config"]["seed"] == 3 and doc["training"]["updates"] == 30
    assert [list(r) for r in doc["updates"]] == [list(UPDATE_FIELDS)] * 30
    evaluated = [r["u"] for r in doc["updates"] if r["evaluated"]]
    assert evaluated == [10, 20, 30]
    assert all((r["eval_loss"] is None) == (not r["evaluated"]) for r in doc["updates"])
    measured = [r["u"] for r in doc["updates"] if r["spectral_radius"][0] is not None]
    assert measured == [1, 10, 20, 30] and all(len(r["spectral_radius"]) == 4 for r in doc["updates"])
    training = engine_training("adding-lstm", updates=30, eval_every=10)
    assert doc["summary"]["final_eval_loss"] == training.records[30].eval_loss


def test_the_readme_documents_every_key_of_the_schema():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### JSON schema (`bptt-lab.train/1`)")[1].split("\n## ")[0]
    doc = strict_json(ok("train", "train-clip", "--updates", "3", "--format", "json", "--dump").stdout)
    keys = [*doc, *doc["summary"], *doc["training"], *doc["summary"]["suggestion"], *doc["updates"][0], *doc["checkpoints"][0]]
    missing = [k for k in keys if k not in section]
    assert not missing, missing


def test_csv_has_a_row_per_update_and_a_column_per_gate_block():
    out = ok("train", "adding-lstm", "--updates", "12", "--eval-every", "4", "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [int(r["u"]) for r in rows] == list(range(1, 13))
    assert {"spectral_radius_i", "spectral_radius_f", "sigma_max_o", "long_share", "status"} <= set(rows[0])
    assert [r["eval_loss"] != "" for r in rows] == [u % 4 == 0 for u in range(1, 13)]
    training = engine_training("adding-lstm", updates=12, eval_every=4)
    assert [float(r["loss"]) for r in rows] == training.records.columns["loss"].tolist()


def test_the_plot_draws_loss_and_norm_on_log10_axes():
    out = ok("train", "train-clip", "--updates", "60", "--eval-every", "10", "--plot").stdout
    assert "train-clip: loss per update (log10 axis)" in out and "train-clip: gradient norm per update (log10 axis)" in out
    assert "clip threshold 0.611" in out and "baseline 0.167" in out and "update u" in out
    assert "1e" in out.split("gradient norm per update")[1]  # power-of-ten tick labels


def test_output_file_is_written_whole(tmp_path):
    target = tmp_path / "t.json"
    result = ok("train", "wig-train", "--updates", "20", "--format", "json", "--output", str(target))
    assert f"wrote {target} (json, 20 updates, done)" in result.stderr
    assert strict_json(target.read_text())["summary"]["updates_done"] == 20
    refused(invoke("train", "wig-train", "--updates", "20", "--output", str(target)), "exists; add --force")
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


# -- the threshold suggestion ---------------------------------------------------------------------


def test_clip_threshold_suggested_is_the_mean_raw_norm_of_the_unclipped_warmup():
    """SPEC 8: the mean of the first --warmup raw norms of the same training without clipping."""
    plain = strict_json(ok("train", "train-explode", "--updates", "50", "--format", "json").stdout)
    mean = float(np.mean([r["grad_norm_raw"] for r in plain["updates"]]))
    doc = strict_json(ok("train", "train-explode", "--clip", "norm", "--clip-threshold", "suggested", "--updates", "60", "--format", "json").stdout)
    assert doc["config"]["clip"] == "norm" and doc["config"]["clip_threshold"] == pytest.approx(mean, rel=1e-12)
    s = doc["summary"]["suggestion"]
    assert s["mean"] == pytest.approx(mean, rel=1e-12) and (s["low"], s["high"]) == pytest.approx((mean / 2, 10 * mean), rel=1e-12)
    # SPEC 3's rule on the exported norms decides each clip
    for r in doc["updates"]:
        assert r["clipped"] == (mean / (r["grad_norm_raw"] + 1e-6) < 1), r["u"]
    table = ok("train", "train-explode", "--clip", "norm", "--clip-threshold", "suggested", "--updates", "60").stdout
    assert "the clip threshold is the suggested one, 0.611" in table


def test_a_clipped_trainings_summary_gives_the_range_of_an_unclipped_warmup():
    """train-clip's own first 50 updates are partly clipped; the range it shows is the unclipped warm-up's, as in train-explode."""
    clipped = strict_json(ok("train", "train-clip", "--updates", "50", "--format", "json").stdout)["summary"]["suggestion"]
    plain = strict_json(ok("train", "train-explode", "--updates", "50", "--format", "json").stdout)["summary"]["suggestion"]
    assert clipped == plain and plain["updates"] == 50


# -- bad input: one line, exit code 2 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--lr", "0"), ("--lr must be a number > 0", "got 0")),
        (("--lr", "nan"), ("--lr must be a number > 0", "nan")),
        (("--lr", "-1"), ("--lr must be",)),
        (("--lr", "fast"), ("--lr", "not a plain number")),
        (("--lr", "1_0"), ("--lr", "not a plain number")),
        (("--updates", "0"), ("--updates must be an integer >= 1",)),
        (("--eval-every", "0"), ("--eval-every must be",)),
        (("--momentum", "1"), ("--momentum must be a number >= 0 and < 1",)),
        (("--optimizer", "rmsprop"), ("--optimizer",)),
        (("--task", "copy"), ("--task",)),
        (("--optimizer", "adam", "--momentum", "0.5"), ("--momentum applies to optimizer sgd only",)),
        (("--window", "3"), ("--window applies to task text only",)),
        (("--clip-threshold", "suggested"), ("--clip-threshold suggested is for --clip norm", "add --clip norm")),
        (("--clip", "value", "--clip-threshold", "suggested"), ("--clip-threshold suggested is for --clip norm",)),
        (("--clip", "norm", "--clip-threshold", "big"), ("--clip-threshold", "not a plain number")),
        (("--text", "hello"), ("--text applies to task text only",)),
        (("--task", "text", "--text", "   "), ("--text is empty",)),
        (("--task", "text", "--text", "word"), ("at least two words",)),
        (("--task", "text", "--text", "a a a a"), ("at least two different words",)),
        (("--format", "csv", "--dump"), ("--dump applies to --format json only",)),
        (("--format", "json", "--plot"), ("--plot with --format json needs --output FILE",)),
        (("--force",), ("--force applies to --output FILE only",)),
        (("--lr", "0.1", "--lr", "0.2"), ("given 2 times",)),
        # a Config setting the task overrides or ignores is refused, never dropped
        (("--loss", "xent"), ("--loss is set by the task adding (loss = 'mse'), got 'xent'",)),
        (("--input-size", "3"), ("--input-size is set by the task adding",)),
        (("--input-scale", "2"), ("--input-scale does not apply to training",)),
        (("--mode", "chain"), ("training needs mode bptt",)),
        (("--task", "text", "-T", "5"), ("--steps/-T is set by the task text (steps = 10), got 5",)),
    ],
)
def test_bad_training_flags_are_refused_in_one_line(args, words):
    refused(invoke("train", "train-explode", *args), *words)


def test_a_training_beyond_the_memory_limit_is_refused_before_it_starts():
    err = refused(invoke("train", "adding-lstm", "-H", "1024", "--updates", "10000000"), "--updates", "GiB", "the limit is 4 GiB")
    assert "checkpoints" in err


def test_text_file_errors(tmp_path):
    refused(invoke("train", "wig-train", "--text-file", str(tmp_path / "missing.txt")), "--text-file", "no such file")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\t\n")
    refused(invoke("train", "wig-train", "--text-file", str(empty)), "--text-file", "the file is empty")
    one = tmp_path / "one.txt"
    one.write_text("hello\n")
    refused(invoke("train", "wig-train", "--text-file", str(one)), f"--text-file {one}:", "at least two words")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe words")
    refused(invoke("train", "wig-train", "--text-file", str(binary)), "not UTF-8")
    refused(invoke("train", "wig-train", "--text-file", str(tmp_path)), "is a folder")
    refused(invoke("train", "adding-rnn", "--text-file", str(one)), "applies to task text only")
    both = tmp_path / "two.txt"
    both.write_text("a b a c")
    refused(invoke("train", "wig-train", "--text-file", str(both), "--text", "x y"), "--text and --text-file")


def test_a_text_file_is_the_text_tasks_text_whole_or_in_windows(tmp_path):
    f = tmp_path / "story.txt"
    words = ("the cat sat on the mat and the dog sat on the log " * 4).split()
    f.write_text(" ".join(words) + "\n")
    doc = strict_json(ok("train", "wig-train", "--text-file", str(f), "--updates", "3", "--format", "json").stdout)
    assert doc["config"]["vocabulary"] == sorted(set(words)) and doc["config"]["steps"] == len(words) - 1 and doc["config"]["batch"] == 1
    windowed = strict_json(ok("train", "wig-train", "--text-file", str(f), "--window", "6", "-N", "8", "--updates", "3", "--format", "json").stdout)
    assert (windowed["config"]["steps"], windowed["config"]["batch"], windowed["config"]["text"]) == (6, 8, "")
    refused(invoke("train", "wig-train", "--text-file", str(f), "--window", "6", "-T", "9"), "--steps/-T is set by --window")


def test_another_task_on_a_text_presets_model():
    doc = strict_json(ok("train", "wig-train", "--task", "adding", "-T", "30", "--updates", "3", "--format", "json").stdout)
    c = doc["config"]
    assert (c["text"], c["steps"], c["input_size"], c["output_size"], c["loss"], c["loss_on"], c["hidden"]) == ("", 30, 2, 1, "mse", "last", 16)
    assert doc["training"]["text"] == "" and doc["training"]["task"] == "adding"


def test_a_step_preset_trains_with_the_default_settings_or_says_why_not():
    doc = strict_json(ok("train", "lstm-cec", "--updates", "3", "--format", "json").stdout)
    assert doc["config"]["cell"] == "lstm" and doc["training"]["task"] == "adding" and doc["config"]["input_size"] == 2
    refused(invoke("train", "seed-explode"), "training needs mode bptt")


# -- Ctrl-C, kill -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_stop_mid_training_is_clean(tmp_path, sig, code):
    """The table streams a line per E updates: once one has come, the training
    is under way; the signal stops it without a traceback. With --output, the
    temporary file is gone and FILE never appears."""

    proc = subprocess.Popen(
        [SCRIPT, "train", "adding-rnn", "--eval-every", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=as_a_shell_would(), cwd=tmp_path
    )
    try:
        lines = [proc.stdout.readline() for _ in range(4)]  # title, header, u = 0, u = 1: training has begun
        assert lines[3].split()[:1] == [b"1"], lines
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert b"Traceback" not in err and b"Warning" not in err
    assert b"status " not in out  # stopped before the end: no summary

    target = tmp_path / "out.csv"
    returncode, err = stop_while_writing([SCRIPT, "train", "adding-rnn", "-f", "csv", "-o", str(target)], tmp_path, sig, cwd=tmp_path)
    assert returncode == code, err
    assert b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# -- run --from-training: one update's backward pass, replayed ---------------------------------------


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b)) if np.linalg.norm(b) else float(np.linalg.norm(a))


def export(tmp_path: Path, name: str, *args: str) -> Path:
    target = tmp_path / f"{name}.json"
    ok("train", name, *args, "--format", "json", "--output", str(target))
    return target


@pytest.mark.parametrize("dump", [False, True], ids=["from-the-seed", "from-a-checkpoint"])
def test_the_replayed_per_step_gradient_is_what_the_update_used(tmp_path, dump):
    """train-clip, 40 updates, checkpoints every 10: the per-step run of update u
    gives the raw and clipped gradients update u used, to round-off (1e-13
    relative: the per-step path sums the weight gradients a step at a time,
    the training's lean path a chunk of steps per matmul), and its loss bit
    for bit."""
    args = ("--updates", "40", "--checkpoint-every", "10", "--eval-every", "10") + (("--dump",) if dump else ())
    path = export(tmp_path, "train-clip", *args)
    p = BUILTIN["train-clip"]
    watched = Watched(p.config, replace(p.training, updates=40, checkpoint_every=10, eval_every=10))
    watched.run()
    for u in (1, 10, 17, 40):
        result = ok("run", "--from-training", str(path), "--update", str(u), "--format", "json", "--dump")
        doc = strict_json(result.stdout)
        assert doc["preset"] == "train-clip"
        assert doc["from_training"] == {"file": str(path), "preset": "train-clip", "update": u, "replayed_from": (u - 1) // 10 * 10 if dump else 0}
        raw, grads, _ = watched.seen[u]
        for name in raw:
            assert relative(np.array(doc["grads_raw"][name]), raw[name]) <= 1e-13, (u, name)
            assert relative(np.array(doc["grads"][name]), grads[name]) <= 1e-13, (u, name)
        assert doc["summary"]["loss"] == watched.records[u].loss
        table = ok("run", "train-clip", "--from-training", str(path), "--update", str(u)).stdout
        assert table.startswith(f"train-clip, update {u}: rnn/relu")


def test_a_diverged_update_is_replayed_too(tmp_path):
    path = export(tmp_path, "train-explode", "--dump")
    doc = strict_json(ok("run", "--from-training", str(path), "--update", "1268", "--format", "json").stdout)
    assert doc["summary"]["loss"] == pytest.approx(249.52, abs=0.01) and doc["from_training"]["replayed_from"] == 1200
    last = strict_json(ok("run", "--from-training", str(path), "--update", "1270", "--format", "json").stdout)
    assert last["summary"]["loss"] is None  # its loss is not finite: the divergence


def test_from_training_refusals(tmp_path):
    path = export(tmp_path, "wig-train", "--updates", "10")
    refused(invoke("run", "--update", "3"), "--update needs --from-training")
    refused(invoke("run", "--from-training", str(path)), "--from-training needs --update")
    refused(invoke("run", "--from-training", str(path), "--update", "11"), "--update must be from 1 to 10", "got 11")
    refused(invoke("run", "--from-training", str(path), "--update", "0"), "--update must be from 1 to 10")
    refused(invoke("run", "--from-training", str(path), "--update", "1_0"), "--update", "not a plain number")  # int() would read 10
    refused(invoke("run", "--from-training", str(path), "--update", "three"), "--update")
    refused(invoke("run", "--from-training", str(path), "--update", "3", "-H", "8"), "--from-training takes the model from the file", "--hidden/-H")
    refused(invoke("run", "seed-explode", "--from-training", str(path), "--update", "3"), "is a training of 'wig-train', not 'seed-explode'")
    refused(invoke("run", "--from-training", str(tmp_path / "none.json"), "--update", "3"), "--from-training", "no such file")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    refused(invoke("run", "--from-training", str(bad), "--update", "3"), "not JSON")
    run_export = tmp_path / "run.json"
    ok("run", "seed-explode", "--format", "json", "--output", str(run_export))
    refused(invoke("run", "--from-training", str(run_export), "--update", "1"), "not a bptt-lab.train/1 export (schema 'bptt-lab.run/1')")
    edited = strict_json(path.read_text())
    edited["updates"][2]["loss"] = 123.0
    changed = tmp_path / "edited.json"
    changed.write_text(json.dumps(edited))
    refused(invoke("run", "--from-training", str(changed), "--update", "3"), "the replay of update 3 gives loss", "the file recorded 123.0")


# -- the preset list ------------------------------------------------------------------------------


def test_presets_mark_the_training_presets():
    out = ok("presets").stdout
    for name, p in BUILTIN.items():
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert line.split()[1] == ("train" if p.training else "step"), line
    doc = strict_json(ok("presets", "--format", "json").stdout)
    trains = {p["name"]: p["training"] for p in doc}
    assert trains["train-explode"]["lr"] == 0.05 and trains["seed-explode"] is None


def test_a_preset_file_takes_training_keys(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('[slow]\nbase = "train-explode"\nlr = 0.025\nupdates = 30\n\n[story]\ntask = "text"\ntext = "a b c a b d"\nupdates = 5\noptimizer = "adam"\nhidden = 4\n')
    doc = strict_json(ok("train", "slow", "--preset-file", str(f), "--format", "json").stdout)
    assert doc["training"]["lr"] == 0.025 and doc["training"]["momentum"] == 0.9 and doc["config"]["activation"] == "relu"
    story = strict_json(ok("train", "story", "--preset-file", str(f), "--format", "json").stdout)
    assert story["training"]["text"] == "a b c a b d" and story["config"]["vocabulary"] == ["a", "b", "c", "d"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[x]\nbase = "adding-rnn"\nlr = "fast"\n')
    refused(invoke("train", "x", "--preset-file", str(bad)), f"{bad}:1", "'lr' must be a number")
    bad.write_text('[x]\nbase = "adding-rnn"\nmomentum = 0.5\n')
    refused(invoke("train", "x", "--preset-file", str(bad)), "momentum applies to optimizer sgd only")


def test_train_json_is_strict_where_values_are_not_finite():
    """No NaN or Infinity literal: non-finite values are null, the status says why."""
    doc = strict_json(ok("train", "train-explode", "--updates", "3", "--diagnostics-every", "2", "--format", "json").stdout)
    assert [r["long_share"] is None for r in doc["updates"]] == [False, False, True]  # measured at u = 1 and 2 only
    assert all(math.isfinite(r["loss"]) for r in doc["updates"])
