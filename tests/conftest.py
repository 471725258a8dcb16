import os

# Typer/Rich print colour codes in CI unless told not to; set before typer loads.
os.environ["_TYPER_FORCE_DISABLE_TERMINAL"] = "1"
# One BLAS thread, as `make test` sets it (in effect when numpy is not loaded yet,
# and for every subprocess a test starts): same numbers, no oversubscription.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

from hypothesis import settings  # noqa: E402

# One deterministic suite: the same examples on every machine and every run,
# and no example database, so a failure found once is not replayed from a
# `.hypothesis` folder into every later run of that checkout.
settings.register_profile("suite", derandomize=True, database=None, print_blob=True)
settings.load_profile("suite")
