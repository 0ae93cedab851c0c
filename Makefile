# pulsetrain: `make help` lists the targets.
PYTHON ?= python3
TORCH  ?= 2.13.0
# The default torch and python get .venv; any other pair its own venv, so switching never reinstalls.
VENV   ?= $(if $(filter 2.13.0/python3,$(TORCH)/$(PYTHON)),.venv,.venv-torch-$(TORCH)$(if $(filter python3,$(PYTHON)),,-$(PYTHON)))
PY     := $(VENV)/bin/python

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned resolve would pull a multi-GB CUDA build
	$(PY) -m pip install --quiet torch==$(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

venv: $(VENV)/.installed ## create .venv and install pulsetrain with its dev extras

demo: $(VENV)/.installed ## 2 ranks on CPU, a hang injected in attempt 0: detection, restart, resume
	@echo "demo: 2 ranks train 300 steps (checkpoint every 50). At step 120 rank 1 hangs (attempt 0 only)."
	@echo "      Watch ft_launcher find the silent rank within ~2 s, restart both ranks, and resume from step 100."
	$(VENV)/bin/ft_launcher --standalone --nproc-per-node=2 --max-restarts=2 train.py \
	    fault=hang fault.rank=1 fault.step=120 fault_tolerance=demo \
	    trainer.max_steps=300 trainer.log_every=25 trainer.eval_every=100 checkpoint.every=50

test: $(VENV)/.installed ## unit and integration tests (real ft_launcher processes on gloo)
	$(PY) -m pytest

test-slurm: $(VENV)/.installed ## examples/slurm/train.sbatch on a private 2-node Slurm (root; installs slurm-wlm, munge)
	$(PY) -m pytest -m slurm -rP tests/slurm

compat: ## the whole suite on another torch (and python): make compat TORCH=2.15.0 [PYTHON=python3.12]
	$(MAKE) test TORCH=$(TORCH) PYTHON=$(PYTHON)

drill: $(VENV)/.installed ## inject every fault kind into a short 2-rank job; each must finish (~1 min)
	$(PY) examples/fault_drill.py

bench: $(VENV)/.installed ## heartbeat cost, detection and recovery vs torchrun, FT overhead
	$(PY) benchmarks/heartbeat.py
	$(PY) benchmarks/recovery.py
	$(PY) benchmarks/overhead.py

# gpu-check runs on the GPU machine's own torch (any release; nothing replaces it): a venv that sees
# GPU_PYTHON's packages, plus pure-Python wheels from $(WHEELS) for what it lacks (make gpu-wheels).
GPU_PYTHON ?= python3
GPU_VENV   ?= .venv-gpu
WHEELS     ?= .whl
OUT        ?= gpu-check.json

gpu-check: ## CUDA tests + GPU measurements, one table, <= 5 min on one GPU: make gpu-check OUT=gpu.json
	@$(GPU_PYTHON) scripts/gpu_check.py --probe
	@$(GPU_PYTHON) scripts/gpu_check.py --make-venv $(GPU_VENV) --wheels $(WHEELS)
	@$(GPU_VENV)/bin/python scripts/gpu_check.py --out $(OUT)

gpu-wheels: $(VENV)/.installed ## fetch the wheels gpu-check needs where the GPU machine has no package index
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: -d $(WHEELS) "hydra-core>=1.3,<1.4" "omegaconf>=2.3,<2.4"
	$(PY) -m pip wheel --quiet --no-deps -w $(WHEELS) antlr4-python3-runtime==4.9.3

lint: $(VENV)/.installed ## ruff
	$(VENV)/bin/ruff check .

clean: ## remove run outputs (keeps .venv)
	rm -rf outputs multirun .pytest_cache

.PHONY: help venv demo test test-slurm compat drill bench gpu-check gpu-wheels lint clean
