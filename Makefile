# tinylm: two commands for a newcomer, `make lab` and `make test`. Everything else is optional.
#
# TORCH picks the PyTorch wheel installed into .venv. The default ("torch") is whatever pip gives
# your platform (a CUDA build on Linux x86-64, which a GPU user wants). On a CPU-only machine you can
# save gigabytes with e.g. `make test TORCH=torch==2.13.0` where a CPU wheel is on local disk, or
# `make test PIP_TORCH_ARGS="--index-url https://download.pytorch.org/whl/cpu"`. CI sets TORCH.

PYTHON ?= python3
TORCH ?= torch
PIP_TORCH_ARGS ?=
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
LAB_STAMP := $(VENV)/.installed-course
NOTEBOOKS := $(wildcard notebooks/[0-9][0-9]_*.ipynb)

.PHONY: lab demo stats test test-package test-notebooks lint format export bench student grade clean help

help:
	@echo "make lab     create .venv, install, open JupyterLab on notebooks/"
	@echo "make demo    train the recommended model on Tiny Shakespeare (~2 min on a laptop CPU), print samples"
	@echo "make test    create/update .venv, then ruff, pytest on tests/ and nbval on notebooks/"
	@echo "make export  regenerate tinylm_core/ from the notebooks (tools/export.py)"
	@echo "make stats   sizes of exported cells, modules and classes (tools/cell_stats.py)"
	@echo "make format  apply ruff's formatting to package, tests and notebooks"
	@echo "make bench   run the speed benchmarks in bench/ (slow; prints figures and ratios)"
	@echo "make student write the student edition (no solutions) to build/student/ (see TEACHING.md);"
	@echo "             EDITION=build: students also write the package pieces of tools/build_edition.json"
	@echo "make grade STUDENT=\"class/*\" [EDITION=build] [GRADE_ARGS=\"--jobs 2 --only 01,02\"]"
	@echo "             grade students' work; reports, gradebook and summary in build/grades/"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# Reinstall when the project's dependencies change. The library needs torch, numpy, regex and tqdm;
# the course extra adds JupyterLab and matplotlib, the dev extra the test and lint tools.
$(LAB_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install $(PIP_TORCH_ARGS) "$(TORCH)"
	$(PY) -m pip install -e ".[course]"
	touch $(LAB_STAMP)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install $(PIP_TORCH_ARGS) "$(TORCH)"
	$(PY) -m pip install -e ".[dev]"
	touch $(STAMP) $(LAB_STAMP)

# Jupyter refuses to run as root (containers, cloud shells) unless told it may.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root)

lab: $(LAB_STAMP)
	$(VENV)/bin/jupyter lab $(LAB_ARGS) notebooks/

# The recommended character-level recipe (RECIPES["shakespeare-char"], notebook 08), then one sample
# per decoding strategy. Tiny Shakespeare ships in data/, so this works offline.
# Extra flags go to the two commands, e.g. make demo DEMO_TRAIN_ARGS="--max-steps 500".
DEMO_OUT ?= runs/demo
DEMO_PROMPT ?= ROMEO:
DEMO_TRAIN_ARGS ?=
DEMO_GENERATE_ARGS ?=

demo: $(LAB_STAMP)
	$(PY) -m tinylm_core train --recipe shakespeare-char --out $(DEMO_OUT) $(DEMO_TRAIN_ARGS)
	@for strategy in greedy top-k top-p beam; do \
		echo; echo "==== $$strategy ===="; \
		$(PY) -m tinylm_core generate --checkpoint $(DEMO_OUT) --prompt "$(DEMO_PROMPT)" \
			--strategy $$strategy --seed 1337 $(DEMO_GENERATE_ARGS) || exit 1; \
	done

test: $(STAMP) lint test-package test-notebooks

lint: $(STAMP)
	$(VENV)/bin/ruff check tinylm_core tests bench notebooks tools
	$(VENV)/bin/ruff format --check tinylm_core tests bench notebooks tools

format: $(STAMP)
	$(VENV)/bin/ruff check --fix tinylm_core tests bench notebooks tools
	$(VENV)/bin/ruff format tinylm_core tests bench notebooks tools

test-package: $(STAMP)
	$(PY) -m pytest tests

# Test mode keeps each notebook to a couple of minutes on a 2-core CPU.
test-notebooks: $(STAMP)
	TINYLM_TEST_MODE=1 $(PY) -m pytest --nbval --nbval-current-env \
		--nbval-sanitize-with notebooks/nbval_sanitize.cfg -p no:cacheprovider $(NOTEBOOKS)

# The sizes issue 12 set: exported cells, modules and classes.
stats: $(STAMP)
	$(PY) tools/cell_stats.py

export: $(STAMP)
	$(PY) tools/export.py

bench: $(STAMP)
	for f in bench/*.py; do $(PY) $$f || exit 1; done

# Classroom (TEACHING.md): the student edition, and the autograder. EDITION=build makes students also
# write the package pieces listed in tools/build_edition.json. STUDENT may name several folders or a
# glob; GRADE_ARGS passes options, e.g. GRADE_ARGS="--jobs 2 --only 01,02 --timeout 300 --full".
EDITION ?= regular
STUDENT_ARGS ?=

student: $(STAMP)
	$(PY) tools/classroom.py student --edition $(EDITION) --out build/student $(STUDENT_ARGS)

grade: $(STAMP)
	@test -n "$(STUDENT)" || { echo "usage: make grade STUDENT=path/to/student/work"; exit 2; }
	$(PY) tools/classroom.py grade $(STUDENT) --edition $(EDITION) --out build/grades $(GRADE_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
