# intentbus developer recipes. `just --list` shows them with their docs.

set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install the whole workspace (services, libs, dev tools) into .venv.
sync:
    uv sync --all-packages

# Run the demo: embedded NATS, ledger and paper executor as processes, a scripted book.
demo *ARGS:
    uv run intentbus demo {{ARGS}}

# Run the test suite against a real nats-server (NATS_URL to use an existing one).
test *ARGS:
    uv run pytest {{ARGS}}

# Lint and format-check with ruff; check the import layers with import-linter.
lint:
    uv run ruff check .
    uv run ruff format --check .
    uv run lint-imports --no-logo

# Type-check the whole workspace with mypy --strict.
typecheck:
    uv run mypy

# Run every check CI runs.
ci: lint typecheck test

# Benchmarks: raw bus vs pipeline, codec, footprint; writes bench/results/latest.json.
bench *ARGS:
    uv run python -m bench {{ARGS}}

# The what-if replay rate and its memory (python -m bench.whatif --intents N).
bench-whatif *ARGS:
    uv run python -m bench.whatif {{ARGS}}

# Regenerate the committed JSON Schema files from the Structs.
schemas:
    uv run python -m intentbus.schemas.jsonschema
