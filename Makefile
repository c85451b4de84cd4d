# The README's two commands: `make demo` and `make test`. Everything they need is installed
# here, from the lock file, so they work on a fresh machine.
SHELL := /bin/bash
UV := python3 -m uv

.PHONY: setup demo test lint bench

setup:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen --quiet

demo: setup
	@bash scripts/demo.sh

test: setup
	@bash scripts/test.sh

# Python (ruff) and the dbt models' SQL (sqlfluff, .sqlfluff).
lint: setup
	@$(UV) run ruff check . && $(UV) run ruff format --check .
	@bash scripts/lint_sql.sh

# The benchmark (bench/README.md): SCALES="demo M L" by default; scale sets are generated once
# into bench/.cache/ and reused. Results: bench/results/<scale>.json and bench/RESULTS.md.
SCALES ?= demo M L
bench: setup
	@$(UV) run --frozen python -m bench.run $(foreach s,$(SCALES),--scale $(s))
