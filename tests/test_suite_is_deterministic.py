"""The suite gives the same verdict on every run: every Hypothesis test draws
the same examples (derandomised) and none reads or writes an example database,
so a failure cannot be saved in `.hypothesis` and replayed into later runs."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
from pathlib import Path

import tests

ROOT = Path(__file__).resolve().parent.parent


def hypothesis_tests():
    for info in pkgutil.walk_packages(tests.__path__, "tests."):
        if not info.name.rsplit(".", 1)[-1].startswith("test_"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("test_") and getattr(obj, "is_hypothesis_test", False):
                yield f"{info.name}.{name}", obj


def test_every_hypothesis_test_is_derandomised_without_a_database():
    found = dict(hypothesis_tests())
    assert len(found) >= 5, "the suite's Hypothesis tests were not found"
    for name, fn in found.items():
        used = fn._hypothesis_internal_use_settings
        assert used.derandomize, f"{name} draws random examples"
        assert used.database is None, f"{name} uses an example database"


def test_the_example_folder_is_git_ignored():
    done = subprocess.run(["git", "check-ignore", "-q", ".hypothesis/examples/x"], cwd=ROOT)
    assert done.returncode == 0, ".hypothesis is not git-ignored"
