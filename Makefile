# The two commands of the README. Both set everything up first (scripts/setup.sh).
.PHONY: run test setup lint

setup:
	@bash scripts/setup.sh

# The main job: the server (web page, WebSocket, WebRTC) on http://127.0.0.1:8080/; see README.md.
run: setup
	.venv/bin/stylecast serve

# The whole test suite: lint, format check, tests.
test: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m pytest -q
