#!/bin/bash
# benchmarks/gpu.py's two parts and gpu_probe.py in one short device lease (8-10 minutes of a 15-minute budget).
#
#   bash benchmarks/gpu_lease.sh prepare      # here: the wheels the device lacks into .whl/, the SLEAP
#                                             # files into benchmarks/data/sleap/ (both ignored by git)
#   device run, carry [".whl", "benchmarks/data/sleap"], timeout_s 590:
#   TRAIN_MIN=0.75 bash benchmarks/gpu_lease.sh run
#
# There, phase A trains issue 25's accuracy models (gpu.py --part train, TRAIN_MIN minutes each) beside
# the inference part's set-up (synth, train, export; FRACTION of each setting's frames); phase B runs the
# throughput benches alone on the GPU; phase C, benchmarks/gpu_probe.py, what each stage could do alone (the
# decoder by threads, copies, the network). Each step is time-boxed; logs, RESULTS.md (its gpu-accuracy
# section) and the JSON figures come back under $OUT (gpu.tgz). Copy the sections into RESULTS.md here.
set -u
cd "$(dirname "$0")/.." || exit 1
if [ "${1:-}" = prepare ]; then
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl av==18.1.0 pyzmq==27.3.0 sleap-io==0.9.5 shapely==2.2.0 || exit 1
    mkdir -p benchmarks/data/sleap
    for f in centered_pair_predictions.slp centered_pair_small.mp4 dance.mp4 dance.mp4.labels.slp; do
        cp "${POSESTREAM_SLEAP_DATA:-../shared/data/sleap}/$f" benchmarks/data/sleap/ || exit 1
    done
    du -sh .whl benchmarks/data/sleap
    exit 0
fi
[ "${1:-}" = run ] || { echo "usage: $0 prepare|run"; exit 2; }
T0=$(date +%s)
elapsed() { echo "[$(($(date +%s) - T0)) s] $*"; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
mkdir -p /tmp/pkg && ln -sfn "$PWD" /tmp/pkg/posestream  # the package without installing it
export PYTHONPATH=/tmp/site:/tmp/pkg:$PWD/benchmarks PYTHONUNBUFFERED=1
export POSESTREAM_SLEAP_DATA=$PWD/benchmarks/data/sleap
nvidia-smi -L
python3 -c "import torch, av, zmq, sleap_io, posestream.cli; print('torch', torch.__version__, torch.cuda.is_available())" || exit 1
elapsed "phase A: accuracy training beside the inference set-up"
(timeout "${TRAIN_S:-330}" python3 benchmarks/gpu.py --part train --train-minutes "${TRAIN_MIN:-0.75}" \
    >"$OUT/train.log" 2>&1; echo "rc=$?" >>"$OUT/train.log") &
for name in single_instance bottomup; do
    (timeout "${PREP_S:-240}" python3 -c "import gpu, sys
gpu.OUT.mkdir(parents=True, exist_ok=True)
gpu.model_for(sys.argv[1], 0.5, 256, float(sys.argv[2]))" "$name" "${FRACTION:-0.2}" \
        >"$OUT/prep_$name.log" 2>&1; echo "rc=$?" >>"$OUT/prep_$name.log") &
done
wait
elapsed "phase B: throughput benches alone"
timeout "${BENCH_S:-200}" python3 benchmarks/gpu.py --fraction "${FRACTION:-0.2}" >"$OUT/inference.log" 2>&1
echo "rc=$?" >>"$OUT/inference.log"
elapsed "phase C: each stage alone"
timeout "${PROBE_S:-90}" python3 benchmarks/gpu_probe.py >"$OUT/probe.log" 2>&1
echo "rc=$?" >>"$OUT/probe.log"
elapsed "done"
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"
cd benchmarks/data/gpu && tar czf "$OUT/gpu.tgz" $(ls ./*.json accuracy/*.json accuracy/*/training_log.csv \
    accuracy/*/summary.json ./*/training_log.csv ./*/summary.json 2>/dev/null)
