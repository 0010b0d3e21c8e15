# Set-up and the two commands a new user runs: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch: a machine without a GPU never pulls a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_AUTH_MODE := disabled

.PHONY: venv redis demo test lint format clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --no-deps "$(TORCH_SPEC)" --extra-index-url $(TORCH_INDEX)
	# torch's own dependencies come from PyPI with the project's.
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

# Debian's redis-server unpacked into the virtualenv for the tests (no root, no system service).
redis: $(VENV)/redis/usr/bin/redis-server

$(VENV)/redis/usr/bin/redis-server:
	infra/redis/install-local.sh $(VENV)/redis

demo: venv
	$(BIN)/signals demo

test: venv redis
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf lake feature_repo/data .pytest_cache
