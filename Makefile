# Two commands do all the set-up: `make demo` and `make test`. Both create .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
AUHM := $(VENV)/bin/auhm
DEMO_OUT ?= demo_out
export OMP_NUM_THREADS ?= 2

.PHONY: install test demo sample-data bench clean

install: $(VENV)/.installed

# torch is pinned in the install step (constraints.txt): a CPU build, never an unpinned CUDA one.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dlib,ray,test]"
	touch $@

test: install
	$(PY) -m pytest

demo: install
	$(PY) bench/demo.py --out $(DEMO_OUT)

sample-data: install
	$(AUHM) synth sample_data/synth_clip --subjects 1 --frames 60 --size 240x180 --seed 7 --quiet

bench: install
	$(PY) bench/synth.py
	$(PY) bench/models.py
	$(PY) bench/metrics.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
