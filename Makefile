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
	$(BIN)/pip install --quiet -e ".[dev,export,ray]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/qa demo

test: $(STAMP)
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check qa tests
	$(BIN)/mypy qa

# Reproduce the shipped zoo weights (downloads Debian's opencv-doc package for the training photos).
train-zoo: $(STAMP)
	$(BIN)/python -m qa.zoo.train_vae --out qa/zoo/weights/vae --minutes 25
	$(BIN)/python -m qa.zoo.train_pid --out qa/zoo/weights/pid --minutes 25

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) reports/*.duckdb reports/*.html
