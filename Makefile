# Two commands do all the set-up: `make demo` and `make test`. Both create .venv and install into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
AUHM := $(VENV)/bin/auhm
DEMO_OUT ?= demo_out
export OMP_NUM_THREADS ?= 2

.PHONY: install test demo sample-data bench clean

install: $(VENV)/.installed

# torch is pinned in the install step (constraints.txt): a CPU build, never an unpinned CUDA one.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dlib,ray,test]"
	# MTCNN's weights (--detector mtcnn): auhm reads facenet-pytorch's data files only; its own
	# requirements pin an old torch and torchvision, so it is installed without them. It is optional:
	# without it --detector mtcnn says what to install, and its tests skip.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps "facenet-pytorch==2.6.0" \
		|| echo "facenet-pytorch could not be installed: --detector mtcnn will be unavailable"
	touch $@

test: install
	$(PY) -m pytest

# The whole job on data auhm makes itself: a synthetic DISFA-layout corpus (16 training subjects,
# 3 held out), a synthetic landmark corpus of 600 other people (the stand-in for LS3D-W), the
# landmark network pretrained on it, the paper's adaptation layers over it and the AU-Net from
# scratch with the same budget, annotation of the held-out videos with only the checkpoints,
# scores of both, a timeline and an overlay video.
DEMO_TRAIN := --preset small --batch-size 16 --quiet
demo: install
	rm -rf $(DEMO_OUT)
	$(AUHM) synth $(DEMO_OUT)/corpus --subjects 16 --frames 250 --seed 11 --quiet
	$(AUHM) synth $(DEMO_OUT)/heldout --subjects 3 --first-subject 16 --frames 250 --seed 11 --quiet
	$(AUHM) synth $(DEMO_OUT)/faces --layout landmarks --identities 600 --images 3000 --seed 11 --quiet
	$(AUHM) prepare synth $(DEMO_OUT)/corpus --out $(DEMO_OUT)/prepared --size 128 --quiet
	$(AUHM) prepare landmarks $(DEMO_OUT)/faces --format 300w --out $(DEMO_OUT)/faces_prepared --size 128 --quiet
	$(AUHM) train $(DEMO_OUT)/faces_prepared --task landmarks --epochs 4 --out $(DEMO_OUT)/runs/landmarks $(DEMO_TRAIN)
	$(AUHM) train $(DEMO_OUT)/prepared --method adaptation --backbone $(DEMO_OUT)/runs/landmarks/best.pt --epochs 8 --out $(DEMO_OUT)/runs/adaptation $(DEMO_TRAIN)
	$(AUHM) train $(DEMO_OUT)/prepared --method scratch --epochs 8 --out $(DEMO_OUT)/runs/scratch $(DEMO_TRAIN)
	$(AUHM) annotate '$(DEMO_OUT)/heldout/Videos_LeftCamera/*.avi' --model $(DEMO_OUT)/runs/adaptation/best.pt --landmark-model $(DEMO_OUT)/runs/landmarks/best.pt --out $(DEMO_OUT)/predictions.parquet --quiet
	$(AUHM) annotate '$(DEMO_OUT)/heldout/Videos_LeftCamera/*.avi' --model $(DEMO_OUT)/runs/scratch/best.pt --landmarks network --landmark-model $(DEMO_OUT)/runs/landmarks/best.pt --out $(DEMO_OUT)/predictions_scratch.parquet --quiet
	@echo "== adaptation layers over the pretrained landmark network, held-out subjects"
	COLUMNS=160 $(AUHM) score $(DEMO_OUT)/predictions.parquet --labels $(DEMO_OUT)/heldout --kind disfa --json $(DEMO_OUT)/scores.json
	@echo "== AU-Net from scratch, the same budget, held-out subjects"
	COLUMNS=160 $(AUHM) score $(DEMO_OUT)/predictions_scratch.parquet --labels $(DEMO_OUT)/heldout --kind disfa --json $(DEMO_OUT)/scores_scratch.json
	$(AUHM) plot $(DEMO_OUT)/predictions.parquet --video LeftVideoSN021_comp.avi --labels $(DEMO_OUT)/heldout --kind disfa --out $(DEMO_OUT)/timeline.png
	$(AUHM) render $(DEMO_OUT)/heldout/Videos_LeftCamera/LeftVideoSN021_comp.avi --model $(DEMO_OUT)/runs/adaptation/best.pt --landmarks network --landmark-model $(DEMO_OUT)/runs/landmarks/best.pt --out $(DEMO_OUT)/overlay.mp4
	@echo "demo: predictions (adaptation, scratch), scores.json, scores_scratch.json, timeline.png and overlay.mp4 are in $(DEMO_OUT)/"

sample-data: install
	rm -rf sample_data/synth_clip
	$(AUHM) synth sample_data/synth_clip --subjects 1 --frames 80 --size 240x180 --seed 4 --quiet

# The quick benchmarks (a few minutes on 2 cores); bench/RESULTS.md lists every one with its command.
bench: install
	$(PY) bench/synth.py
	$(PY) bench/metrics.py
	$(PY) bench/models.py
	$(PY) bench/prepare.py
	$(PY) bench/landmarks.py
	$(PY) bench/annotate.py
	$(PY) bench/annotate_synth.py
	$(PY) bench/train.py --presets small --methods scratch adaptation --batch-sizes 16

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
