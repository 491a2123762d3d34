#!/usr/bin/env bash
# One short, prepared run of the GPU checks of `auhm annotate` (the project's device tool), each
# step time-boxed so a hang costs its timeout, not the session's device budget (a hang dumps every
# thread's stack: faulthandler on SIGABRT). About 3–4 minutes on an H100/H200. Figures go to
# $OUT (log.txt, annotate.json, history_landmarks.csv).
#
#   run on the GPU machine:  bash bench/gpu_check.sh            (carry .whl/, see below)
#   dry run on a CPU:        SCALE=0 bash bench/gpu_check.sh    (tiny: catches a typo before the GPU does)
#
# The GPU machine has Python 3.12, torch with CUDA, OpenCV 5 (without Haar cascades), pandas,
# pyarrow, typer and rich, but no decord, PyAV or dlib: carry their wheels in .whl/ (ignored by
# git), made beforehand with
#   pip download --dest .whl --only-binary=:all: --no-deps --python-version 3.12 \
#       --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 decord av dlib-bin
#   pip download --dest .whl --no-deps facenet-pytorch==2.6.0      (MTCNN's weights, for --detector mtcnn: 1.9 MB)
# dlib's HOG detector needs no model file; its 68-point predictor (face-recognition-models, ~100 MB)
# does not fit the carry, so the dlib path is skipped there and said so.
#
# 1. a landmark network, paper size, trained for a few epochs on a small synthetic corpus (auto
#    tracks with it: its landmarks must be good enough to hold a face);
# 2. bench/annotate_synth.py: the paper-size adaptation model built on it, 16 synthetic 640×360
#    videos, default options; (a) annotate with --landmarks auto, truth and dlib, (b) the per-frame
#    loop, (c) the model alone; a/b, a/c and the model thread's time per stage.
#    Goals: auto ≥ 3,000 frames/s; truth and dlib ≥ 0.5 of the model alone.
set -u
cd "$(dirname "$0")/.."
O=${OUT:-/tmp/auhm-gpu-check}; mkdir -p "$O"
exec > >(tee -a "$O/log.txt") 2>&1
SCALE=${SCALE:-1}
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || echo "wheel install failed"
fi
export PYTHONPATH="$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
py="python3 -X faulthandler -u"
T0=$SECONDS
step() { local limit=$1 name=$2; shift 2; local t=$SECONDS; echo "== [$((SECONDS - T0)) s] $name (limit $limit s)"
         timeout -s ABRT -k 5 "$limit" "$@"; local rc=$?; echo "== $name: exit $rc in $((SECONDS - t)) s"; }

if [ "$SCALE" = 1 ]; then SUBJ=8; FR=100; SZ=256; PRE=paper; EP=3; BS=64; DEV=auto; VID=16; VFR=300; REF=60
else SUBJ=2; FR=12; SZ=128; PRE=small; EP=1; BS=8; DEV=cpu; VID=2; VFR=12; REF=4; fi

echo "commit $(git rev-parse --short HEAD 2>/dev/null), nproc $(nproc), SCALE=$SCALE"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no GPU"
$py -c "import torch, cv2, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cv2', cv2.__version__, 'numpy', numpy.__version__)"
$py -c "
import importlib.util as u
from auhm.face.detectors import find_detector
from auhm.infer.sources import dlib_available
print('decord', bool(u.find_spec('decord')), 'av', bool(u.find_spec('av')), 'detector', find_detector(), 'dlib predictor', dlib_available())"

W=$(mktemp -d)
step 60 synth $py -m auhm synth "$W/corpus" --subjects $SUBJ --frames $FR --seed 5 --quiet
step 60 prepare $py -m auhm prepare synth "$W/corpus" --out "$W/prep" --size $SZ --quiet
step 100 train-landmarks $py -m auhm train "$W/prep" --task landmarks --preset $PRE --epochs $EP --batch-size $BS --device $DEV \
    --out "$W/landmarks" --quiet
cp "$W/landmarks/history.csv" "$O/history_landmarks.csv" 2>/dev/null && tail -2 "$O/history_landmarks.csv"
step 240 annotate $py bench/annotate_synth.py --videos $VID --frames $VFR --device $DEV --preset $PRE --method adaptation \
    --backbone "$W/landmarks/best.pt" --paths auto truth dlib --reference-frames $REF --json "$O/annotate.json"
# several faces: crowd videos tracked from their truth landmarks, every face (--faces all) against the largest, the stub model on the device
step 120 crowd $py bench/tracking.py "$W/crowd" --make $VID --frames $VFR --model-stub --landmarks truth --device $DEV \
    --variant all:faces=all --variant largest:faces=largest --json "$O/tracking.json"
echo "== total $((SECONDS - T0)) s; figures in $O"
rm -rf "$W"
