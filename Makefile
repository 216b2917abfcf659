# Two commands do everything on a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SYNTHETIC := data/synthetic
QUICKSTART_RUN := runs/quickstart

.PHONY: venv quickstart test lint clean

# The venv is (re)built when missing or when the pins (pyproject.toml) change; the package
# is installed editable, with its console entry points (ageflax-train, ageflax-eval, ...).
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

quickstart: venv
	$(PY) scripts/make_synthetic_faces.py $(SYNTHETIC)/train --n 2000 --seed 0 --overwrite
	$(PY) scripts/make_synthetic_faces.py $(SYNTHETIC)/heldout --n 500 --seed 1 --overwrite
	rm -rf $(QUICKSTART_RUN)
	$(PY) train.py --config=configs/cpu.py --config.data.dir=$(SYNTHETIC)/train \
	  --workdir=$(QUICKSTART_RUN)
	$(PY) scripts/eval.py --workdir=$(QUICKSTART_RUN) --data_dir=$(SYNTHETIC)/heldout

test: venv
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=10

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) runs data
