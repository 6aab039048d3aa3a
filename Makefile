# Two commands on a fresh machine:  make reproduce   and   make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRESET ?= default
ifeq ($(origin PROFILE),command line)
$(error PROFILE is now PRESET (config/presets/<name>.yaml): make ... PRESET=$(PROFILE); snakemake's --profile is an execution profile, profiles/)
endif
CORES ?= all
TARGETS ?=  # snakemake targets; empty: every table and the report (e.g. TARGETS=calibration, TARGETS=fame_table4)
EXTRA ?=    # more snakemake arguments (make tables passes --config tables=[all])
SNAKEMAKE = PATH=$(abspath $(BIN)):$$PATH $(BIN)/snakemake --configfile config/presets/$(PRESET).yaml

.PHONY: reproduce tables test smoke venv lock clean unlock

# A killed run leaves Snakemake's lock files; `make reproduce` removes them only when they are stale
# (scenebias/workflow_lock.py says how it tells), `make unlock` always.

$(STAMP): envs/requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r envs/requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

reproduce: $(STAMP)  ## generate data, run every job of the preset, write reports/$(PRESET)/index.html
	@if $(BIN)/python -m scenebias.workflow_lock $(PRESET); then $(SNAKEMAKE) --unlock $(TARGETS); fi
	$(SNAKEMAKE) --cores $(CORES) --keep-going --rerun-incomplete --prioritize=calibration $(TARGETS) $(EXTRA)
	@echo "report: reports/$(PRESET)/index.html"

tables: $(STAMP)  ## every paper table and figure on the preset (the default regenerates the headline tables only)
	$(MAKE) reproduce PRESET=$(PRESET) CORES=$(CORES) EXTRA="--config 'tables=[all]'"

unlock: $(STAMP)  ## after a killed run: remove Snakemake's lock (.snakemake/locks); then make reproduce resumes
	$(SNAKEMAKE) --unlock $(TARGETS)

smoke:
	$(MAKE) reproduce PRESET=smoke

test: $(STAMP)
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest -q

lock: $(STAMP)  ## envs/requirements.lock from the venv; the managed env's post-deploy script gets its checksum
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^scenebias' > envs/requirements.lock.new
	mv envs/requirements.lock.new envs/requirements.lock
	$(BIN)/python -c "import hashlib, pathlib, re; p = pathlib.Path('envs/scenebias.post-deploy.sh'); \
	h = hashlib.sha256(pathlib.Path('envs/requirements.lock').read_bytes()).hexdigest(); \
	p.write_text(re.sub(r'[0-9a-f]{64}(  envs/requirements.lock)', h + r'\1', p.read_text()))"

clean:
	rm -rf results data/generated data/frame_cache/smoke data/frame_cache/default reports/smoke reports/default .snakemake
