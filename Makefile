# SynthSep book: `make book` (the main job) and `make test`. Both do all set-up.
# Every target is idempotent: a second run reuses the environment and the corpus.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PYTHON    ?= python3
PROFILE   ?= reduced
VENV      ?= .venv
DATA_ROOT ?= data
RUN_ROOT  ?= runs
# Extra pip index for the CPU build of torch on machines whose pip finds only the CUDA one,
# e.g. TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=
# pytest workers of `make test`: one executes the book (unless `make book` already did,
# from the current sources), the others run the remaining tests beside it.
TEST_WORKERS ?= 2

BIN   := $(VENV)/bin
STAMP := $(VENV)/.synthsep-installed
REF_STAMP := $(VENV)/.references-installed
export TF_CPP_MIN_LOG_LEVEL := 3
# pip installs without compiling bytecode (about 30 s less on 2 cores); Python compiles
# each module when it is first imported and keeps the .pyc, so a machine's
# PYTHONDONTWRITEBYTECODE (set in some images) must not reach the commands below: every
# kernel would then compile TensorFlow and PyTorch again.
unexport PYTHONDONTWRITEBYTECODE
PIP := $(BIN)/python -m pip install --quiet --no-compile
export PYTHONWARNINGS := ignore::DeprecationWarning

.PHONY: help setup corpus chapters book lab test smoke lint benchmarks clean

help:
	@echo "make book   - set up .venv, build the mini corpus, execute every chapter ($(PROFILE)) and render _build/html"
	@echo "make test   - the same set-up, then the tests: unit, chapters (reusing make book's run when current), HTML and browser"
	@echo "make smoke  - every chapter at the paper's model sizes on a tiny corpus (smoke profile, ~15 min on 2 CPU cores)"
	@echo "make lab    - set up .venv, then open the chapters in JupyterLab (work on one interactively)"
	@echo "make corpus - only build (reduced) or download (paper) the corpora of PROFILE under $(DATA_ROOT)"
	@echo "make clean  - remove _build and $(RUN_ROOT), except listening-test answers and the published checkpoint"
	@echo "Variables: PROFILE=reduced|paper|smoke DATA_ROOT=$(DATA_ROOT) RUN_ROOT=$(RUN_ROOT) PYTHON=$(PYTHON)"

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v <= (3, 12) else f"Python 3.10-3.12 needed, found {sys.version.split()[0]}; set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip 'setuptools>=70' wheel
	# torch first and alone, so that no dependency drags in a CUDA build.
	$(PIP) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) 'torch==2.13.0'
	$(PIP) -e '.[all]'
	touch $@

# Reference implementations the tests compare against (test-only): lws builds only this
# way; wavenet_vocoder 0.1.1 is installed without its dependencies (it would pin old ones).
$(REF_STAMP): $(STAMP)
	$(PIP) cython wheel 'setuptools>=70'
	LWS_USE_CYTHON=1 $(PIP) --no-build-isolation lws==1.2.8
	$(PIP) --no-deps wavenet_vocoder==0.1.1
	touch $@

corpus: $(STAMP)
	$(BIN)/python -m data_scripts.prepare --profile $(PROFILE) --data-root $(DATA_ROOT)

chapters: corpus
	$(BIN)/python tools/book.py execute --profile $(PROFILE) --data-root $(DATA_ROOT) --run-root $(RUN_ROOT) --out _build/executed

book: chapters
	@$(BIN)/python tools/book.py render --executed _build/executed --out _build/html
	@echo "The book is ready: open file://$(CURDIR)/_build/html/index.html"

# The file browser shows the chapters; kernels start in the repository root, as `make
# book` runs them, so a chapter's default data_root/run_root are this checkout's data/ and
# runs/ (started in notebooks/, Chapter 1 would build a second corpus in notebooks/data).
lab: $(STAMP)
	@$(BIN)/jupyter lab --ServerApp.root_dir=notebooks --MappingKernelManager.root_dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root)

test: $(STAMP) $(REF_STAMP) corpus
	$(BIN)/python -m pytest tests -n $(TEST_WORKERS) --dist loadgroup --profile $(PROFILE) --data-root $(DATA_ROOT)

# The paper's path at paper size, on a CPU: tests/test_paper_smoke.py builds its own tiny
# corpus in the real layout and serves a stand-in for the published WaveNet on 127.0.0.1.
smoke: $(STAMP) $(REF_STAMP)
	$(BIN)/python -m pytest tests/test_paper_smoke.py --paper-smoke

lint: $(STAMP)
	$(BIN)/ruff check .

benchmarks: $(STAMP) $(REF_STAMP)
	for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script; done

# Keeps what cannot be remade: listening-test answers and the downloaded WaveNet checkpoint.
clean:
	rm -rf _build
	if [ -d $(RUN_ROOT) ]; then
		find $(RUN_ROOT) -type f ! -name responses.csv ! -path '*/vocoder/wavenet/published/*' -delete
		find $(RUN_ROOT) -mindepth 1 -type d -empty -delete
	fi
