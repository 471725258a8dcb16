# Every install step lives here: a machine with only python3 and make can run
# `make demo` and `make test` from a fresh checkout.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install browser demo test bench bench-serve bench-sweep clean

install: $(STAMP)

# Reinstall only when the package metadata changes; the install is editable,
# so source edits need no reinstall.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/bptt-lab

# The browser test (tests/browser/) drives Debian's chromium through its
# chromedriver; Selenium is told their paths and never downloads a browser.
# As root with apt-get, missing ones are installed (fonts-liberation: the page
# asks for Courier New, which it stands in for; no other recommends). Without
# root or apt-get, or when the install fails (offline, not Debian), `make test`
# goes on and the test skips, saying why. Checked with `command -v` first, so
# this costs nothing once they are there.
BROWSER_PACKAGES := chromium chromium-driver fonts-liberation

browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(BROWSER_PACKAGES) for the browser test (apt-get)"; \
	  log=$$(mktemp); \
	  if { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES); } >$$log 2>&1; \
	  then echo "installed $(BROWSER_PACKAGES)"; \
	  else tail -n 3 $$log; echo "could not install $(BROWSER_PACKAGES): the browser test will skip"; fi; \
	  rm -f $$log; \
	else echo "no chromium/chromedriver, and no root apt-get to install them: the browser test will skip"; fi

# One BLAS thread: the suite's numbers are the same with two, but on a shared
# or 2-core machine two OpenBLAS threads beside the dashboard's worker threads
# made the suite several times slower.
test: install browser
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q

# The benchmark's extra (CPU PyTorch, the peer) has its own stamp, so `make test`
# never installs torch. `make bench BENCH_ARGS=--quick` for a short check.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run_benchmarks.py $(BENCH_ARGS)
	$(BIN)/python bench/serve_load.py
	$(BIN)/python bench/sweep.py

# A 40 x 40 bptt-lab sweep (H=64, T=200) with one worker process and with two:
# wall time and speed-up (about 30 s; needs no torch).
bench-sweep: install
	$(BIN)/python bench/sweep.py

# `bptt-lab serve` with 10 tabs at once on 127.0.0.1 (about 10 s; needs no
# torch, so only the test install): time to first frame, memory per session,
# and that closing them and stopping the server leaves nothing running.
bench-serve: install
	$(BIN)/python bench/serve_load.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
