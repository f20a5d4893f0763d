# The two commands of the README. Both set everything up first (scripts/setup.sh).
.PHONY: run test setup lint

setup:
	@bash scripts/setup.sh

# The main job: see README.md.
run: setup
	.venv/bin/stylecast demo

# The whole test suite: lint, format check, tests.
test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m pytest -q
