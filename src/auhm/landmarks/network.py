"""network: a landmark network of ``auhm train --task landmarks`` as detector and fitter.

No other library is needed: detection searches the frame with the landmark network itself.
A batch of candidate squares (a few scales × a coarse grid of positions) goes through the net;
the square whose heatmap peaks are highest on average holds the face, and its landmarks are
refined by re-cropping around them. A face is present when the mean peak reaches the
checkpoint's ``presence_threshold`` (or :data:`DEFAULT_PRESENCE`). Crops follow the
checkpoint's own crop convention, so the net sees faces cut as in training. One face per
frame: the best-scoring square. ``auhm``, the backend's earlier name, is still accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from auhm.device import model_input, resolve_device
from auhm.face.base import Detection, LandmarkBackend, landmark_boxes
from auhm.face.crop import CropConfig, crop_affine, crop_image, crop_square, invert_affine, warp_points
from auhm.face.registry import register_backend
from auhm.models import load_checkpoint
from auhm.targets import heatmaps_to_landmarks

DEFAULT_PRESENCE = 0.35  # mean heatmap peak of a face crop, when the checkpoint does not say


@dataclass(frozen=True)
class SearchConfig:
    scales: tuple[float, ...] = (0.95, 0.7, 0.5, 0.35)  # candidate crop side / shorter frame side
    overlap: float = 0.5  # grid stride = side × (1 − overlap)
    refine: int = 2  # re-crops around the found landmarks after the search
    batch_size: int = 64  # crops per forward pass


def candidate_squares(height: int, width: int, config: SearchConfig = SearchConfig()) -> np.ndarray:
    """(k, 3) cx, cy, side of the search grid covering a height × width frame."""
    squares = []
    for scale in config.scales:
        side = scale * min(height, width)
        stride = max(side * (1 - config.overlap), 1.0)
        xs = np.linspace(side / 2, width - side / 2, max(1, int(np.ceil((width - side) / stride)) + 1))
        ys = np.linspace(side / 2, height - side / 2, max(1, int(np.ceil((height - side) / stride)) + 1))
        squares += [(x, y, side) for y in ys for x in xs]
    return np.asarray(squares, np.float64)


class NetworkBackend(LandmarkBackend):
    name = "network"
    batched_fit = True  # fit re-crops around its own first estimate

    def __init__(self, model: torch.nn.Module, info: dict, device: str = "cpu", search: SearchConfig = SearchConfig()):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.info = info
        self.crop = CropConfig.from_dict(info.get("crop", {"size": int(info.get("input_size", 256))}))
        self.search = search
        self.min_confidence = float(info.get("presence_threshold", DEFAULT_PRESENCE))
        self.checkpoint: str | None = None

    @classmethod
    def from_checkpoint(cls, path: Path, device: str = "cpu") -> "NetworkBackend":
        model, info = load_checkpoint(path, task="landmarks")
        backend = cls(model, info, device=device)
        backend.checkpoint = str(path)
        return backend

    # ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def _run(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks (k, 68, 2) in crop pixels and mean peak (k,) for uint8 (k, S, S, 3) crops."""
        points, peaks = [], []
        for start in range(0, len(crops), self.search.batch_size):
            x = model_input(crops[start : start + self.search.batch_size], self.device)
            heatmaps = self.model(x)["heatmaps"].float()
            p, peak = heatmaps_to_landmarks(heatmaps, self.crop.size)
            points.append(p.cpu().numpy())
            peaks.append(peak.float().mean(dim=1).cpu().numpy())
        return np.concatenate(points).astype(np.float32), np.concatenate(peaks).astype(np.float32)

    def _fit_squares(self, frames: list[np.ndarray], squares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks in frame pixels and mean peak for one square per frame (frames may repeat)."""
        size = self.crop.size
        affines = [crop_affine(s, size) for s in squares]
        crops = np.stack([crop_image(f, m, size) for f, m in zip(frames, affines)])
        points, score = self._run(crops)
        frame_points = np.stack([warp_points(p, invert_affine(m)) for p, m in zip(points, affines)]).astype(np.float32)
        return frame_points, score

    def _refine(self, frames: list[np.ndarray], landmarks: np.ndarray, score: np.ndarray, rounds: int) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(rounds):
            landmarks, score = self._fit_squares(frames, crop_square(landmarks, self.crop))
        return landmarks, score

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        out = []
        for frame in frames:
            squares = candidate_squares(*frame.shape[:2], self.search)
            points, score = self._fit_squares([frame] * len(squares), squares)
            best = int(np.argmax(score))
            landmarks, peak = self._refine([frame], points[best : best + 1], score[best : best + 1], self.search.refine)
            found = np.isfinite(landmarks).all() and peak[0] >= self.min_confidence
            out.append([(landmark_boxes(landmarks[0]).astype(np.float64), float(min(peak[0], 1.0)))] if found else [])
        return out

    def fit(self, frames: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        regions = np.asarray(regions, np.float64)
        # A box is squared with the same convention as landmarks (its corners stand for them).
        points = regions if regions.ndim == 3 else regions.reshape(-1, 2, 2)
        frames_list = list(frames)
        landmarks, score = self._fit_squares(frames_list, crop_square(points, self.crop))
        landmarks, score = self._refine(frames_list, landmarks, score, 1)
        return landmarks, np.clip(score, 0.0, 1.0)

    def metadata(self) -> dict:
        return {"backend": self.name, "checkpoint": self.checkpoint, "presence_threshold": self.min_confidence}


@register_backend("network", aliases=("auhm",), needs_model=True)
def network(model: Path, device: str = "cpu") -> NetworkBackend:
    """The backend of a landmark checkpoint; "auto" picks CUDA when present, and a device this
    machine lacks is a UsageError before any weights are read."""
    return NetworkBackend.from_checkpoint(model, device=str(resolve_device(device)))
