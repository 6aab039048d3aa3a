# Two commands on a fresh machine:  make reproduce   and   make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= default
CORES ?= all

.PHONY: reproduce test smoke venv lock clean

$(STAMP): envs/requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r envs/requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

reproduce: $(STAMP)  ## generate data, run every job of the profile, write reports/$(PROFILE)/index.html
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --cores $(CORES) --keep-going --rerun-incomplete --configfile config/profiles/$(PROFILE).yaml
	@echo "report: reports/$(PROFILE)/index.html"

smoke:
	$(MAKE) reproduce PROFILE=smoke

test: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -q

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^scenebias' > envs/requirements.lock.new
	mv envs/requirements.lock.new envs/requirements.lock

clean:
	rm -rf results data/generated reports/smoke reports/default .snakemake
