# qa: `make demo` runs the embedded default end to end; `make test` runs the tests. Both install into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint train-zoo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch/torchvision first and pinned together (torchvision must match torch's build)
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[dev,export,ray,ocr]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/qa demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check qa tests training
	$(BIN)/mypy qa training

# Reproduce the shipped embedded weights (downloads Debian's opencv-doc package for the training photos).
# About 70 min for the zoo and 20 min for the generate track on 2 CPU cores; see qa/zoo/README.md.
train-zoo: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m training.zoo.train_vae --out build/zoo_vae_stage1 --minutes 35 --seed 0
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m training.zoo.train_vae --init build/zoo_vae_stage1 --out qa/zoo/weights/vae \
		--minutes 12 --seed 1 --lr 5e-4 --warmup 10 --lf-weight 2.0
	cp build/zoo_vae_stage1/train_stats.json qa/zoo/weights/vae/train_stats_stage1.json
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m training.zoo.train_pid --vae qa/zoo/weights/vae --out qa/zoo/weights/pid --minutes 20 --seed 0
	$(BIN)/python -m training.zoo.evaluate
	$(BIN)/python -m training.zoo.cards
	# the generate track (needs the zoo VAE and PiD above): latent model, then the L2P-style pixel model
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m training.generate.train_ldm --out qa/generate/weights/ldm --minutes 14 --seed 0 --crops 4000
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m training.generate.train_l2p --ldm qa/generate/weights/ldm --out qa/generate/weights/l2p --minutes 14 --seed 0 --images 2400 --noise coupled
	$(BIN)/python -m training.generate.model_card --seeds 2

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) reports/*.duckdb reports/*.html
