"""The AU model at inference: batched uint8 crops in, intensities (and backbone landmarks) out.

:class:`Predictor` holds the device, precision and memory layout; :class:`ModelLanes` runs it as
one single-threaded forward per core side by side on a CPU (one lane on a GPU). On a CPU the
forward runs traced (:func:`traced_forward`): the same operations, bit for bit, without the Python
of the model's modules, which costs more than the convolutions of a few crops.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from auhm.device import autocast_context, model_input, resolve_device, resolve_precision, use_channels_last
from auhm.face.crop import CropConfig
from auhm.models.base import read_intensities
from auhm.targets.heatmaps import heatmaps_to_landmarks


@dataclass
class Prediction:
    intensities: np.ndarray  # (B, N) float32, 0–5
    landmarks: np.ndarray | None = None  # (B, 68, 2) crop pixels (transfer methods)
    landmark_confidence: np.ndarray | None = None  # (B,) mean peak of the landmark maps
    heatmaps: np.ndarray | None = None  # (B, N, h, w) float32, only when asked for


def default_batch_size(device: torch.device) -> int:
    """Frames per model batch when --batch-size is not given.

    On CPUs small batches win (larger ones' activations outgrow the cache); GPUs want large
    batches. The figures behind it are in bench/RESULTS.md.
    """
    return 128 if device.type == "cuda" else 8


class Predictor:
    """An AU checkpoint ready for batched inference on uint8 crops: device, precision, layout."""

    def __init__(self, model: torch.nn.Module, info: dict, device: str = "auto", precision: str = "auto", trace: bool = True):
        self.device = resolve_device(device)
        self.precision = resolve_precision(self.device, precision)
        self.channels_last = use_channels_last(self.device, self.precision)
        model = model.eval().to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.info = info
        self.aus = tuple(int(a) for a in info["aus"])
        self.method = str(info.get("method", "unknown"))
        self.input_size = int(info.get("input_size") or getattr(model, "input_size", 256))
        crop = CropConfig.from_dict(info.get("crop") or {})
        # The crop is cut directly at the model's input size (same square, no second resize).
        self.crop = CropConfig(size=self.input_size, scale=crop.scale, shift_y=crop.shift_y)
        # The backbone's landmarks can track the face only when they come out of a trained
        # landmark network (not the random-backbone ablation).
        probe = {}
        if self.method != "random-backbone":
            with torch.inference_mode():
                probe = self.model(torch.zeros(1, 3, self.input_size, self.input_size, device=self.device))
        self.has_landmarks = probe.get("landmark_heatmaps") is not None
        self.forward = self.model
        if trace and self.device.type == "cpu":  # trace=False: the model's own Python runs (a stand-in that records its calls)
            self.forward = traced_forward(self.model, self.input_size, self.device, self.precision, self.channels_last) or self.model

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "auto", precision: str = "auto") -> "Predictor":
        from auhm.models import load_checkpoint

        model, info = load_checkpoint(path, task="au")
        return cls(model, info, device, precision)

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray, keep_heatmaps: bool = False) -> Prediction:
        x = model_input(np.ascontiguousarray(crops), self.device, self.channels_last)
        with autocast_context(self.device, self.precision):
            out = self.forward(x)
        pred = Prediction(read_intensities(self.model, out).cpu().numpy().astype(np.float32))
        if self.has_landmarks and out.get("landmark_heatmaps") is not None:
            pts, conf = heatmaps_to_landmarks(out["landmark_heatmaps"].float(), self.input_size)
            pred.landmarks = pts.cpu().numpy().astype(np.float32)
            conf = conf.float()
            pred.landmark_confidence = (conf.mean(-1) if conf.ndim > 1 else conf).cpu().numpy()
        if keep_heatmaps:
            pred.heatmaps = out["heatmaps"].float().cpu().numpy()
        return pred


SETTLING_RUNS = 3  # a traced model's runs before the one checked against the eager model


class _Tensors(torch.nn.Module):
    """A model's output dict without its None entries (a trace gives back tensors only)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model(x).items() if v is not None}


def traced_forward(model: torch.nn.Module, input_size: int, device: torch.device, precision: str, channels_last: bool):
    """``model``'s forward traced with TorchScript at this precision, or None where it cannot be, or
    where on crops of another batch size it gives anything but the eager model's outputs bit for bit.

    The trace records the same operations; a network of many small layers then costs on a CPU a
    few milliseconds less a call (figures in bench/RESULTS.md), which the self-tracking path, with
    its many small batches, pays on every fit. The model's parameters are frozen (inference only)."""
    model.requires_grad_(False)  # a trace under autocast keeps each weight's cast, which must need no gradient
    rng = np.random.default_rng(0)
    traced_on, checked_on = (model_input(rng.integers(0, 256, (n, input_size, input_size, 3), dtype=np.uint8), device, channels_last)
                             for n in (2, 3))
    try:
        with torch.inference_mode(False), torch.no_grad(), autocast_context(device, precision), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(_Tensors(model), traced_on, strict=False, check_trace=False)
        with torch.inference_mode(), autocast_context(device, precision):
            eager = model(checked_on)
            for _ in range(SETTLING_RUNS):  # the JIT profiles the graph on its first runs, then runs the plan it made
                ours = traced(checked_on)
    except Exception:  # a forward that cannot be traced (Python control flow on values): run it as it is
        return None
    kept = {k: v for k, v in eager.items() if v is not None}
    same = ours.keys() == kept.keys() and all(torch.equal(v, ours[k]) for k, v in kept.items())
    return traced if same else None


def model_lanes(device: torch.device) -> int:
    """How many model batches run at once: one per torch thread on a CPU, one on a GPU.

    On CPUs, single-threaded forwards side by side beat one forward split over all cores (as
    measured in bench/RESULTS.md), and they leave room for the tracking workers: a thread that
    shares the cores with a multi-threaded forward stalls it at every barrier.
    """
    return 1 if device.type == "cuda" else max(1, torch.get_num_threads())


class ModelLanes:
    """A pool of ``count`` model threads, each forward single-threaded while it is open.

    ``asynchronous`` (a GPU): one lane in a thread of its own, so the calling thread gathers the
    next batch while the device runs this one; the batches are gathered in page-locked host
    memory (:meth:`gather`), from which the copy to the device needs no staging.
    """

    def __init__(self, count: int, asynchronous: bool = False):
        self.count = count
        self.asynchronous = asynchronous
        self.pool: ThreadPoolExecutor | None = None
        self._threads = 0
        self._ring: list[np.ndarray] | None = []  # None: page-locked memory failed
        self._next = 0

    def __enter__(self) -> "ModelLanes":
        if self.count > 1:
            self._threads = torch.get_num_threads()
            torch.set_num_threads(1)
        if self.count > 1 or self.asynchronous:
            self.pool = ThreadPoolExecutor(self.count, thread_name_prefix="auhm-model")
        return self

    def gather(self, pieces: list[np.ndarray], n: int, predictor) -> np.ndarray:
        """The pieces' crops as one (n, S, S, 3) array: page-locked on CUDA, one of a ring of
        buffers (a buffer is used again only after the batches in the lanes are done with it)."""
        if getattr(predictor, "device", torch.device("cpu")).type != "cuda" or self._ring is None:
            return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        shape = pieces[0].shape[1:]
        if not self._ring or self._ring[0].shape[0] < n or self._ring[0].shape[1:] != shape:
            try:
                self._ring = [torch.empty((n, *shape), dtype=torch.uint8, pin_memory=True).numpy() for _ in range(self.count + 2)]
            except RuntimeError:  # no page-locked memory to be had: plain arrays, copied through staging
                self._ring = None
                return np.concatenate(pieces)
        buf = self._ring[self._next % len(self._ring)][:n]
        self._next += 1
        np.concatenate(pieces, out=buf)
        return buf

    def warm_up(self, predictor: Predictor, batch: int) -> None:
        """On a GPU, one forward at the run's batch size while the trackers load (the first one
        at a new size or precision picks its kernels). Not on a CPU: there a blank forward per
        lane takes the cores from the tracking process's start-up, and the first real batches pay
        only a small kernel set-up."""
        if predictor.device.type != "cpu":  # one lane on a GPU
            predictor(np.zeros((batch, predictor.input_size, predictor.input_size, 3), np.uint8))

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            if self.count > 1:
                torch.set_num_threads(self._threads)
            self.pool = None


def template_landmarks(crop: CropConfig) -> np.ndarray:
    """(68, 2) crop-pixel points that the crop convention maps back onto the whole crop: a face
    there is cut again exactly where it already is (no drift)."""
    side = crop.size / crop.scale  # the landmark box's side
    cx = crop.size / 2
    cy = crop.size / 2 - crop.shift_y * side
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    return np.stack([cx + side / 2 * np.cos(t), cy + side / 2 * np.sin(t)], -1).astype(np.float32)


class StubPredictor:
    """A stand-in for :class:`Predictor` that costs nothing: fixed intensities, and fixed landmarks
    that hold the crop still. Measures the pipeline around the model (``bench/annotate.py
    --model-stub``): decoding, tracking, crops, batching and writing."""

    method = "stub"
    precision = "fp32"

    def __init__(self, aus=(1, 2, 4), input_size: int = 256, landmarks: bool = True, device: str = "cpu"):
        self.device = torch.device(device)
        self.aus = tuple(int(a) for a in aus)
        self.input_size = input_size
        self.crop = CropConfig(size=input_size)
        self.info = {"method": self.method, "aus": list(self.aus), "input_size": input_size}
        self.has_landmarks = landmarks
        self._landmarks = template_landmarks(self.crop)
        self._intensities = np.linspace(0.5, 4.5, len(self.aus), dtype=np.float32)

    def __call__(self, crops: np.ndarray, keep_heatmaps: bool = False) -> Prediction:
        n = len(crops)
        pred = Prediction(np.broadcast_to(self._intensities, (n, len(self.aus))).copy())
        if self.has_landmarks:
            pred.landmarks = np.broadcast_to(self._landmarks, (n, 68, 2)).copy()
            pred.landmark_confidence = np.ones(n, np.float32)
        return pred
