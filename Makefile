# descent: the targets CI and users run. `make test` works from a fresh clone with only Python 3.11+.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo
STAMP := $(VENV)/.installed

.PHONY: install test test-fast lint demo bench approve clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install descent with its test tools

test: $(STAMP)  ## run the whole test suite (what CI runs, with lint)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)  ## the suite without the slow end-to-end runs: feedback in about a minute
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check descent tests scripts
	$(BIN)/mypy

demo: $(STAMP)  ## generate a synthetic descent and build landing.mp4 from it, with the altitude HUD
	$(BIN)/python scripts/synthetic_descent.py $(DEMO_DIR)/frames --frames 300 --size 512 --flicker 0.03 --drop-every 40
	$(BIN)/descent build $(DEMO_DIR)/frames -o landing.mp4 --overwrite --report $(DEMO_DIR)/report.json \
		--telemetry $(DEMO_DIR)/frames/telemetry.csv --mark-site --telemetry-out $(DEMO_DIR)/values.csv

bench: $(STAMP)  ## timings and quality against ffmpeg, vid.stab and ffmpeg deflicker (prints ratios; never fails)
	$(BIN)/python scripts/bench_build.py
	$(BIN)/python scripts/bench_stages.py
	$(BIN)/python scripts/bench_stabilise.py
	$(BIN)/python scripts/bench_gaps.py
	$(BIN)/python scripts/bench_sync.py
	$(BIN)/python scripts/bench_normalise.py
	$(BIN)/python scripts/bench_overlay.py

approve:  ## accept the HUD images the tests rendered (tests/golden/*.received.png) as the new golden images
	@for f in tests/golden/*.received.png; do [ -e "$$f" ] || continue; mv "$$f" "$${f%.received.png}.png"; echo "approved $${f%.received.png}.png"; done

clean:  ## remove the virtual environment, demo output and caches
	rm -rf $(VENV) $(DEMO_DIR) landing.mp4 .pytest_cache .mypy_cache .ruff_cache *.egg-info build dist
