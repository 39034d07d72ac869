# Set-up and everyday commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build by default (a local wheel here); GPU hosts: make venv TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: venv demo test lint docker docker-cpu docker-gpu docker-tensorrt bench-decode bench-accuracy bench-export bench-pipeline bench-same-size clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The engine and the tracking metrics `posestream evaluate` prints (what `make demo` needs).
$(VENV)/.demo: $(BIN)/python pyproject.toml
	$(PIP) install -e ".[eval]"
	touch $@

# Everything the tests need: the engine plus the train, eval, ray, nwb, calibration and dev extras.
$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(PIP) install -e ".[train,eval,ray,nwb,calibration,dev]" "$(TORCH_SPEC)"
	touch $@ $(VENV)/.demo

venv: $(VENV)/.dev

DEMO_DIR := demo_output
# A synthetic video, tracked with the embedded model (poses and identities), scored against the generator's ground truth.
demo: $(VENV)/.demo
	$(BIN)/posestream synth $(DEMO_DIR)/sample.mp4 --num-frames 300 --size 384x384 --animals 2 --seed 0 --no-slp --quiet
	$(BIN)/posestream track -i $(DEMO_DIR)/sample.mp4 -m demo -o $(DEMO_DIR)/sample_predictions.h5 --tracking --max-tracks 2
	$(BIN)/posestream evaluate $(DEMO_DIR)/sample_predictions.h5 --labels $(DEMO_DIR)/sample.analysis.h5
	@echo "Demo output is in $(abspath $(DEMO_DIR))/: sample.mp4 (video), sample.analysis.h5 (ground truth),"
	@echo "sample_predictions.h5 (poses and identities, SLEAP analysis HDF5)"

test: $(VENV)/.dev
	$(BIN)/python -m pytest

# Style (ruff: lint, and the format at 110 columns) and the layering (the module graph is acyclic).
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/import_graph.py

# Images (docker/): cpu (slim Python), gpu (CUDA cuDNN runtime, onnxruntime-gpu, NVDEC), tensorrt.
docker: docker-cpu docker-gpu docker-tensorrt
docker-cpu docker-gpu docker-tensorrt: docker-%:
	docker build -f docker/Dockerfile.$* -t posestream:$* .

bench-decode: $(VENV)/.dev
	$(BIN)/python benchmarks/decode.py

# Trains every model type on the real SLEAP data (30 CPU minutes each), then scores held-out frames.
bench-accuracy: $(VENV)/.dev
	$(BIN)/python benchmarks/accuracy.py --minutes 30

# Exports the bench-accuracy runs at fp32 / fp16 / int8: speed, accuracy, bytes per output mode.
bench-export: $(VENV)/.dev
	$(BIN)/python benchmarks/export.py

# Throughput per model type (posestream bench) and peak RSS against video length.
bench-pipeline: $(VENV)/.dev
	$(BIN)/python benchmarks/pipeline.py

# Networks of sleap-nn's test-model size trained on the fly video (10 CPU minutes each), then benched.
bench-same-size: $(VENV)/.dev
	$(BIN)/python benchmarks/same_size.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
