# braintumor — common commands. Every target installs what it needs on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
# glibc's malloc hands freed activation memory back to the OS after every step by default;
# keeping it (no mmap/trim churn) makes CPU training ~1.3x faster here. Override to disable.
# 32 MiB is the largest mmap threshold glibc accepts (a larger value is silently ignored).
# Same values as braintumor/runs/allocator.py (MALLOC_ENV, tune_malloc).
MALLOC_ENV ?= MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=268435456
# Recipes run under $(MALLOC_ENV) but echo only the command ($(info): no shell quoting).

.DEFAULT_GOAL := help
.PHONY: help install train test test-full lint format tensorboard download-44c download-set app clean bench
.PHONY: dashboard
DATA_44C ?= data/brain44c
SET ?= figshare3
ARCHIVE ?=

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install braintumor with its dev extras

train: $(STAMP)  ## train the default CNN on the demo data, test the best checkpoint (ARGS=overrides)
	$(info $(BIN)/python train.py $(ARGS))
	@$(MALLOC_ENV) $(BIN)/python train.py $(ARGS)

test: $(STAMP)  ## fast test suite (slow tests excluded)
	$(info $(BIN)/python -m pytest $(ARGS))
	@$(MALLOC_ENV) $(BIN)/python -m pytest $(ARGS)

test-full: $(STAMP)  ## every test, slow ones included
	$(info $(BIN)/python -m pytest -m "" $(ARGS))
	@$(MALLOC_ENV) $(BIN)/python -m pytest -m "" $(ARGS)

bench: $(STAMP)  ## performance benchmarks (~25 min on 2 cores); tables appended to docs/benchmarks.md
	@echo $(BIN)/python bench/loop_overhead.py
	@$(MALLOC_ENV) $(BIN)/python bench/loop_overhead.py
	@echo $(BIN)/python bench/input_pipeline.py
	@$(MALLOC_ENV) $(BIN)/python bench/input_pipeline.py
	$(BIN)/python bench/switches.py
	$(BIN)/python bench/predict_latency.py
	@echo $(BIN)/python bench/pipeline_memory.py
	@$(MALLOC_ENV) $(BIN)/python bench/pipeline_memory.py
	$(BIN)/python bench/end_to_end.py

lint: $(STAMP)  ## ruff check + format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)  ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

tensorboard: $(STAMP)  ## TensorBoard over every run under outputs/
	$(BIN)/tensorboard --logdir outputs --host 127.0.0.1

download-44c: $(STAMP)  ## fetch the public 44-class set to $(DATA_44C) (Kaggle credentials, or ARCHIVE=zip)
	$(BIN)/python -m braintumor download --out $(DATA_44C) $(if $(ARCHIVE),--archive $(ARCHIVE))

download-set: $(STAMP)  ## fetch SET=brain17c|nickparvar4|figshare3|br35h to data/SET (ARCHIVE=zip)
	$(BIN)/python -m braintumor download $(SET) --out data/$(SET) $(if $(ARCHIVE),--archive $(ARCHIVE))

ifneq ($(filter dashboard,$(MAKECMDGOALS)),)
ifndef STUDY
$(error usage: make dashboard STUDY=outputs/optuna/<study> (a sweep folder, .db/.journal file or RDB URL) [ARGS="--port 8081"])
endif
endif
dashboard: $(STAMP)  ## optuna-dashboard on 127.0.0.1:8080 for a study: make dashboard STUDY=outputs/optuna/cnn_optuna
	$(BIN)/python -m braintumor.sweeps.dashboard "$(STUDY)" $(ARGS)

ifneq ($(filter app,$(MAKECMDGOALS)),)
ifndef CKPT
$(error usage: make app CKPT=outputs/<run>/checkpoints/last.ckpt (or model.onnx) [ARGS="--port 8000"])
endif
endif
app: $(STAMP)  ## local web page for a checkpoint or ONNX file: make app CKPT=path [ARGS="--port 8000"]
	$(BIN)/python -m braintumor app "$(CKPT)" $(ARGS)

clean:  ## remove caches and build leftovers (keeps .venv and outputs/)
	rm -rf .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -not -path './$(VENV)/*' -exec rm -rf {} +
