#!/usr/bin/env bash
# One short, prepared run of the GPU checks (the project's device tool), each step time-boxed so a
# hang costs its timeout, not the session's device budget. A hang dumps every thread's stack
# (faulthandler on SIGABRT).
#
#   run: bash bench/gpu_check.sh          (carry .whl/ with the decord and PyAV wheels, if any)
#
# 1. auhm train for 2 epochs with DataLoader workers + pinned memory: crosses an epoch boundary
#    (two bench/train.py runs of 2026-11-26 stopped in the loader's warm-up on an H200);
# 2. bench/train.py, paper preset, short: full vs model-only step, and the loader alone;
# 3. bench/annotate_synth.py: annotation with tracking in worker processes (annotate's default count).
set -u
cd "$(dirname "$0")/.."
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl >/dev/null 2>&1
fi
export PYTHONPATH="$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
py="python3 -X faulthandler -u"
step() { local limit=$1; shift; echo "== $* (limit ${limit} s)"; timeout -s ABRT "$limit" "$@" 2>&1 | grep -v -i "warn" | tail -25; echo "== exit ${PIPESTATUS[0]}"; }

nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
tmp=$(mktemp -d)
step 60 $py -m auhm synth "$tmp/corpus" --subjects 4 --frames 120 --quiet
step 60 $py -m auhm prepare synth "$tmp/corpus" --out "$tmp/prep" --size 128 --quiet
step 120 $py -m auhm train "$tmp/prep" --method scratch --preset small --epochs 2 --batch-size 32 --workers 4 --out "$tmp/run" --quiet
step 180 $py bench/train.py --device cuda --presets paper --methods scratch resnet18 --precisions bf16 --batch-sizes 48 --steps 30
step 150 $py bench/annotate_synth.py --videos 8 --frames 300 --batch-size 256 --reference-frames 60
