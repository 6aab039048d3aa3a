#!/usr/bin/env bash
# Snakemake runs this inside the environment of envs/scenebias.yaml once it is created (`--sdm conda`), from the
# workflow's working directory: the repository root. It installs the locked requirements and this repository,
# as `make` does. `make lock` updates the checksum below.
set -euo pipefail
if [[ ! -f envs/requirements.lock || ! -f pyproject.toml ]]; then
    echo "envs/scenebias.post-deploy.sh: run snakemake from the scenebias repository root (found no envs/requirements.lock in $PWD)" >&2
    exit 1
fi
# the lock this environment is built from: a new lock changes this line, so Snakemake builds a new environment
echo "807a62057b51d20dfc1d803ca78a128dc5675beba47e3f0d8371e4592f0f2b6d  envs/requirements.lock" | sha256sum --check --quiet -
python -m pip install --quiet --disable-pip-version-check -r envs/requirements.lock
python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
