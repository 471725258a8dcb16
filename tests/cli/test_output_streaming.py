"""`bptt-lab run` output at any length: streamed JSON, CSV and table in bounded
memory, a long table that says what it leaves out, progress on stderr, an
--output file written in full or not at all, and a reader that goes away.

No timing assertions: memory is measured with tracemalloc (deterministic) and
the progress tests drive a fake clock.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
import re
import subprocess
import sys
import tracemalloc

import pytest
from typer.testing import CliRunner

from engine import Run, export
from engine.config import CLIP_MODES
from engine.presets import get, registry
from engine.records import NUMERIC, STATUSES
from tui import report
from tui.cli import app

runner = CliRunner()
PRESETS = registry(None)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLI = [sys.executable, "-c", "from tui.cli import main; main()"]


def invoke(*args: str):
    return runner.invoke(app, list(args))


def finished(name: str, **overrides) -> tuple:
    preset = get(name, PRESETS)
    run = Run(preset.config.with_overrides(**overrides))
    run.run()
    return preset, run


def one_line_error(result, *needles: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("bptt-lab: error: ")
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


class Sink:
    """A stream that keeps only how much it was given and the largest single write."""

    def __init__(self):
        self.chars, self.largest, self.writes = 0, 0, 0

    def write(self, text: str) -> None:
        self.chars += len(text)
        self.largest = max(self.largest, len(text))
        self.writes += 1


@pytest.fixture(scope="module")
def long_run():
    """seed-vanish at T = 20,000: a 6.8 MiB JSON document."""
    return finished("seed-vanish", steps=20_000)


# -- the streaming writers produce exactly the old bytes -------------------------------------

CASES = [
    ("seed-explode", {}),
    ("seed-vanish", {}),
    ("seed-explode", {"scale": 10.0, "steps": 2000}),  # overflow: nulls and status overflow
    ("clip-rescue", {}),  # clip norm: crossing mark and the end-of-pass event
    ("clip-rescue", {"clip": "value"}),
    ("clip-rescue", {"clip": "agc"}),
    ("step-clip", {}),  # clip events mid-pass
    ("lstm-cec", {}),
    ("gru", {}),
    ("wig-sentence", {}),  # text: vocabulary in the config, xent targets
    ("truncated", {}),
]


@pytest.mark.parametrize("name, overrides", CASES, ids=[f"{n}{'-' + '-'.join(map(str, o.values())) if o else ''}" for n, o in CASES])
def test_write_json_is_byte_identical_to_to_json(name, overrides):
    _, run = finished(name, **overrides)
    for dump in (False, True):
        buf = io.StringIO()
        export.write_json(run, buf, dump=dump, preset=name)
        assert buf.getvalue() == export.to_json(run, dump=dump, preset=name)


def old_to_csv(run) -> str:
    """The CSV writer as it was before streaming: the reference for byte identity."""
    rec = run.records
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(export.CSV_COLUMNS)

    def cell(x):
        return repr(float(x)) if math.isfinite(x) else ""

    for i in range(len(rec)):
        k = i + 1
        row = [k, rec.steps - k, *(cell(rec.columns[name][i]) for name in NUMERIC), STATUSES[rec.status[i]]]
        if rec.clip_mode[i]:
            row += [CLIP_MODES[rec.clip_mode[i]], "true" if rec.clip_applied[i] else "false"]
            row += [cell(rec.clip_before[i]), cell(rec.clip_after[i]), cell(rec.clip_factor[i])]
        else:
            row += ["", "", "", "", ""]
        w.writerow(row)
    return buf.getvalue()


@pytest.mark.parametrize("name, overrides", CASES[:8], ids=[n + str(i) for i, (n, _) in enumerate(CASES[:8])])
def test_write_csv_is_byte_identical_to_the_old_csv(name, overrides):
    _, run = finished(name, **overrides)
    buf = io.StringIO()
    export.write_csv(run, buf)
    assert buf.getvalue() == old_to_csv(run) == export.to_csv(run)


def test_a_json_document_spanning_many_chunks_is_still_strict_and_whole(monkeypatch):
    monkeypatch.setattr(export, "CHUNK", 7)
    _, run = finished("step-clip", steps=40)  # clip events in several chunks

    def refuse(token):
        raise AssertionError(f"non-strict JSON token {token}")

    buf = io.StringIO()
    export.write_json(run, buf, preset="step-clip")
    doc = json.loads(buf.getvalue(), parse_constant=refuse)
    assert [s["k"] for s in doc["steps"]] == list(range(1, run.T + 1))
    assert buf.getvalue() == export.to_json(run, preset="step-clip")
    buf = io.StringIO()
    export.write_csv(run, buf)
    assert buf.getvalue() == old_to_csv(run)


# -- bounded memory ----------------------------------------------------------------------------


def peak_while(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


MB = 2**20


def test_the_json_writer_holds_a_chunk_not_the_document(long_run):
    _, run = long_run
    sink = Sink()
    peak = peak_while(lambda: export.write_json(run, sink, preset="seed-vanish"))
    # 6.8 MiB of JSON in pieces of at most ~0.4 MiB, with under 2 MiB of Python
    # allocations at the peak; json.dumps(to_dict(run)) held ~56 MiB here, and
    # that grows with T while this does not (a chunk is CHUNK records).
    assert sink.chars > 6.5 * MB
    assert sink.largest < MB
    assert peak < 2 * MB, peak


def test_the_csv_and_all_rows_table_writers_are_bounded_too(long_run):
    preset, run = long_run
    for write in (lambda s: export.write_csv(run, s), lambda s: report.write_table(run, preset, s, all_rows=True)):
        sink = Sink()
        peak = peak_while(lambda: write(sink))
        assert sink.chars > 1.5 * MB and sink.largest < MB
        # a chunk of 1024 records as text, 13 numeric columns: ~1.6 MiB at the peak, whatever T
        assert peak < 2 * MB, peak


def test_writers_report_their_progress_chunk_by_chunk(long_run):
    preset, run = long_run
    for write in (
        lambda s, p: export.write_json(run, s, progress=p),
        lambda s, p: export.write_csv(run, s, progress=p),
        lambda s, p: report.write_table(run, preset, s, all_rows=True, progress=p),
    ):
        seen = []
        write(Sink(), lambda done, total: seen.append((done, total)))
        assert seen[-1] == (run.T, run.T)
        assert len(seen) >= run.T // 1024 and all(a[0] < b[0] for a, b in zip(seen, seen[1:]))


# -- the table of a long run -------------------------------------------------------------------


ELIDED_NOTE = "rows not shown"


def data_rows(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"\s*\d+\s", line)]


def test_a_table_up_to_the_limit_is_the_full_rich_table_as_before(monkeypatch):
    assert report.TABLE_ROWS == 2000  # the README's T = 2000 overflow example shows every row
    monkeypatch.setattr(report, "TABLE_ROWS", 30)
    preset, run = finished("seed-explode", scale=10.0, steps=30)
    buf = io.StringIO()
    report.write_table(run, preset, buf)
    assert buf.getvalue() == report.table_text(run, preset)
    assert len(data_rows(buf.getvalue())) == 30 and ELIDED_NOTE not in buf.getvalue()


def test_a_longer_table_shows_the_first_and_last_rows_and_says_what_it_left_out(monkeypatch):
    monkeypatch.setattr(report, "TABLE_ROWS", 10)
    preset, run = finished("step-clip", steps=40)
    buf = io.StringIO()
    report.write_table(run, preset, buf)
    text = buf.getvalue()
    rows = data_rows(text)
    assert [int(r.split()[0]) for r in rows] == [1, 2, 3, 4, 5, 36, 37, 38, 39, 40]
    lines = text.splitlines()
    note = lines.index(rows[4]) + 1
    assert lines[note] == "... 30 rows not shown (k = 6 to 35); every row: --all-rows, or --format csv"
    assert lines[note + 1] == rows[5]
    full = report.table_text(run, preset)
    assert text.split("\n\n", 1)[1] == full.split("\n\n", 1)[1]  # the summary, as in the full table
    assert "CLIP step" in rows[-1]  # events and columns as in the full table
    assert [r.split() for r in rows] == [r.split() for r in data_rows(full) if int(r.split()[0]) in (1, 2, 3, 4, 5, 36, 37, 38, 39, 40)]


def test_all_rows_streams_every_row_in_fixed_width_columns(monkeypatch):
    monkeypatch.setattr(report, "TABLE_ROWS", 10)
    monkeypatch.setattr(report, "ALL_ROWS_CHUNK", 7)
    preset, run = finished("step-clip", steps=40)
    buf = io.StringIO()
    report.write_table(run, preset, buf, all_rows=True)
    text = buf.getvalue()
    full = report.table_text(run, preset)
    lines = text.splitlines()
    assert lines[0] == full.splitlines()[0]  # the title
    assert lines[1].split() == full.splitlines()[1].split()  # the header
    rows = data_rows(text)
    assert [r.split() for r in rows] == [r.split() for r in data_rows(full)]  # every row, same cells
    # fixed widths: every numeric column ends at the same place on every row and in the header
    ends = {len(r.split("CLIP")[0].rstrip()) for r in rows}
    assert ends == {len(lines[1].rsplit("events", 1)[0].rstrip())}
    assert text.split("\n\n", 1)[1] == full.split("\n\n", 1)[1]


def test_all_rows_in_colour_styles_rows_as_the_rich_table_does(monkeypatch):
    monkeypatch.setattr(report, "TABLE_ROWS", 10)
    preset, run = finished("seed-explode", scale=10.0, steps=400)
    buf = io.StringIO()
    report.write_table(run, preset, buf, color=True, all_rows=True)
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("\x1b[3m") and lines[1].startswith("\x1b[1m")  # italic title, bold header
    overflow = [line for line in lines if "OVERFLOW" in line]
    assert overflow and all(line.startswith("\x1b[1;31m") and line.endswith("\x1b[0m") for line in overflow)


# -- progress on stderr ------------------------------------------------------------------------


class Clock:
    def __init__(self, step: float = 0.0):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_silent_before_the_quiet_time_then_a_line_each_ten_percent():
    clock, err = Clock(), io.StringIO()
    p = report.Progress(err, clock=clock, after=2.0)
    p.begin()
    for done in range(0, 100, 5):
        clock.now = done / 50  # 100 steps in 2 s: all before the quiet time ends
        p.update("backward pass", done, 100, "steps")
    assert err.getvalue() == ""
    clock.now = 2.0
    p.begin()
    for done in range(1, 101):
        clock.now = 2.0 + done / 10  # 10 s for 100 steps
        p.update("backward pass", done, 100, "steps")
    p.end("backward pass done: 100 steps")
    lines = err.getvalue().splitlines()
    assert lines[0] == "bptt-lab: backward pass 1/100 steps (1%), ~9.9 s left"
    assert lines[1].startswith("bptt-lab: backward pass 11/100 steps (11%), ~")
    assert len(lines) == 11 and lines[-1] == "bptt-lab: backward pass done: 100 steps in 10 s"


def test_progress_on_a_terminal_is_one_line_redrawn_in_place():
    clock, err = Clock(), Terminal()
    p = report.Progress(err, clock=clock, after=0.0)
    p.begin()
    for done in range(1, 50):
        clock.now = done * 0.2
        p.update("writing JSON", done, 50, "records")
    p.end("writing JSON done")
    out = err.getvalue()
    assert out.count("\n") == 1 and out.endswith(" in 9.8 s\x1b[K\n")
    assert out.startswith("\rbptt-lab: writing JSON 1/50 records (2%), ~9.8 s left\x1b[K\r")


def test_stepping_with_progress_gives_the_same_records_and_says_how_far_it_is():
    preset = get("lstm-cec", PRESETS)
    plain = Run(preset.config)
    plain.run()
    run, err = Run(preset.config), io.StringIO()
    report.Progress(err, clock=Clock(step=0.5), after=1.0).backward(run)
    assert run.done and run.k == run.T
    for name in NUMERIC:
        assert plain.records.columns[name].tobytes() == run.records.columns[name].tobytes()
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("bptt-lab: backward pass ") and "left" in lines[0]
    assert lines[-1].startswith(f"bptt-lab: backward pass done: {run.T:,} steps in ")


def test_the_cli_reports_each_phase_of_a_long_run_on_stderr_only(monkeypatch):
    monkeypatch.setattr(report, "PROGRESS_AFTER", 0.0)
    monkeypatch.setattr(report, "setup_estimate", lambda config: 75.0)
    result = invoke("run", "seed-explode", "-T", "3000", "--format", "csv")
    assert result.exit_code == 0, result.output
    err = result.stderr.splitlines()
    assert err[0] == "bptt-lab: computing the forward pass (3,000 steps, N=2, H=3): roughly 75 s (scaled from a small timing)"
    assert err[1].startswith("bptt-lab: forward pass done in ")
    assert any(line.startswith("bptt-lab: backward pass ") and "left" in line for line in err)
    assert any(line.startswith("bptt-lab: backward pass done: 3,000 steps in ") for line in err)
    assert err[-1].startswith("bptt-lab: writing CSV done in ")
    _, run = finished("seed-explode", steps=3000)
    assert result.stdout == export.to_csv(run)
    # with a wide W_hh the estimate includes (and names) its spectrum
    result = invoke("run", "lstm-cec", "-H", "128", "-T", "5", "--format", "json", "--output", os.devnull)
    assert result.stderr.splitlines()[0].startswith("bptt-lab: computing the forward pass (5 steps, N=4, H=128) and the spectrum of W_hh (512 x 128): roughly 75 s")


def test_a_quick_run_says_nothing_and_needs_no_timing():
    assert report.setup_estimate(get("clip-rescue", PRESETS).config) == 0.0
    result = invoke("run", "clip-rescue", "--format", "json")
    assert result.exit_code == 0 and result.stderr == ""


def test_a_run_with_a_large_w_hh_gets_an_estimate():
    config = get("seed-explode", PRESETS).config.with_overrides(hidden=512)
    estimate = report.setup_estimate(config)
    assert math.isfinite(estimate) and estimate > 0


# -- --output: in full or not at all, never clobbered without --force --------------------------


def test_an_existing_output_file_is_refused_without_force_and_left_intact(tmp_path):
    target = tmp_path / "run.csv"
    target.write_text("precious\n")
    line = one_line_error(invoke("run", "seed-explode", "--format", "csv", "--output", str(target)), str(target), "--force")
    assert "exists" in line
    assert target.read_text() == "precious\n"
    assert os.listdir(tmp_path) == ["run.csv"]


def test_force_overwrites_and_keeps_the_files_permissions(tmp_path):
    target = tmp_path / "run.csv"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    result = invoke("run", "seed-explode", "--format", "csv", "--output", str(target), "--force")
    assert result.exit_code == 0, result.output
    _, run = finished("seed-explode")
    assert target.read_text() == export.to_csv(run)
    assert os.stat(target).st_mode & 0o777 == 0o640
    assert os.listdir(tmp_path) == ["run.csv"]


def test_a_new_output_file_gets_the_usual_permissions_not_the_temporary_files(tmp_path):
    (tmp_path / "plain").write_text("")
    target = tmp_path / "run.json"
    assert invoke("run", "seed-explode", "--format", "json", "--output", str(target)).exit_code == 0
    assert os.stat(target).st_mode & 0o777 == os.stat(tmp_path / "plain").st_mode & 0o777


def failing_writer(after_chars: int, exc: BaseException):
    def write_csv(run, stream, progress=None):
        stream.write("k,t" + "x" * after_chars)
        raise exc

    return write_csv


@pytest.mark.parametrize("existing", [None, "old contents\n"])
def test_a_full_disk_leaves_no_file_and_no_temporary_file(tmp_path, monkeypatch, existing):
    target = tmp_path / "run.csv"
    if existing is not None:
        target.write_text(existing)
    monkeypatch.setattr(export, "write_csv", failing_writer(100_000, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))))
    result = invoke("run", "seed-explode", "--format", "csv", "--output", str(target), *(["--force"] if existing else []))
    one_line_error(result, "--output", str(target), "No space left on device")
    if existing is None:
        assert os.listdir(tmp_path) == []
    else:
        assert os.listdir(tmp_path) == ["run.csv"] and target.read_text() == existing


def test_ctrl_c_while_writing_leaves_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "run.csv"
    monkeypatch.setattr(export, "write_csv", failing_writer(10, KeyboardInterrupt()))
    result = invoke("run", "seed-explode", "--format", "csv", "--output", str(target))
    assert result.exit_code != 0
    assert os.listdir(tmp_path) == []


def test_a_file_that_appears_during_the_run_is_not_clobbered(tmp_path, monkeypatch):
    target = tmp_path / "run.csv"
    real = export.write_csv

    def write_csv(run, stream, progress=None):
        target.write_text("someone else's\n")
        real(run, stream, progress)

    monkeypatch.setattr(export, "write_csv", write_csv)
    one_line_error(invoke("run", "seed-explode", "--format", "csv", "--output", str(target)), str(target), "--force")
    assert target.read_text() == "someone else's\n"
    assert os.listdir(tmp_path) == ["run.csv"]


@pytest.mark.skipif(not hasattr(os, "setrlimit") and sys.platform != "linux", reason="needs RLIMIT_FSIZE")
def test_a_file_size_limit_leaves_no_truncated_file(tmp_path):
    import resource
    import signal

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    target = tmp_path / "run.json"
    proc = subprocess.run(
        [*CLI, "run", "seed-vanish", "-T", "2000", "--format", "json", "--output", str(target)],
        capture_output=True, text=True, cwd=REPO, preexec_fn=limit, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bptt-lab: error: --output: cannot write") and "File too large" in lines[0]
    assert os.listdir(tmp_path) == []


def test_a_device_is_written_as_it_is_and_a_folder_is_refused(tmp_path):
    result = invoke("run", "seed-explode", "--output", os.devnull)
    assert result.exit_code == 0 and result.stdout == ""
    one_line_error(invoke("run", "seed-explode", "--output", str(tmp_path)), "--output", "folder")


def test_flags_that_do_not_apply_are_refused():
    one_line_error(invoke("run", "seed-explode", "--format", "csv", "--all-rows"), "--all-rows", "table")
    one_line_error(invoke("run", "seed-explode", "--force"), "--force", "--output")


def test_run_help_states_the_decisions():
    text = " ".join(re.sub("[│╭╮╰╯─]", " ", invoke("run", "--help").stdout).split())
    for needle in ("--all-rows", "2,000", "first and last 1,000", "--force", "temporary file", "refused unless --force", "stderr"):
        assert needle in text, needle


# -- a reader that goes away -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_a_closed_pipe_ends_the_run_quietly(fmt):
    # 3,000 records: 0.3 to 1 MB of output, far more than a pipe's buffer
    proc = subprocess.Popen(
        [*CLI, "run", "seed-explode", "-T", "3000", "--format", fmt, *(["--all-rows"] if fmt == "table" else [])],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`: megabytes are still to come
    err = proc.stderr.read().decode()
    proc.stderr.close()
    code = proc.wait(timeout=120)
    assert first
    assert "Traceback" not in err and "Exception ignored" not in err and "Error" not in err, err
    assert code == 141
