"""fan: face-alignment's 2D-FAN-4 landmarks and its S3FD face detector, from local weights only.

face-alignment downloads its weights on first use; auhm never does: it builds face-alignment's
networks itself and loads the files only if they are already in face-alignment's cache,
``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch/hub/checkpoints``); otherwise the
backend stops with a message naming the files and the folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auhm.device import model_input, resolve_device
from auhm.face.base import BackendUnavailable, Detection, LandmarkBackend, region_boxes
from auhm.face.crop import crop_affine, crop_image, invert_affine, warp_points
from auhm.face.registry import register_backend
from auhm.models.fan2d import checkpoint_dirs, fan_weights_path, read_fan_state_dict
from auhm.targets import heatmaps_to_landmarks

# The file names face-alignment 1.4–1.5 looks for in its cache (api.models_urls, sfd.models_urls).
WEIGHT_FILES = {"2DFAN-4": "2DFAN4-11f355bf06.pth.tar", "s3fd": "s3fd-619a316812.pth"}


def weights_path(name: str) -> Path:
    """The local file of face-alignment weights ``name`` ("2DFAN-4" or "s3fd"), found where
    face-alignment and torch.hub cache them (``models.fan2d.fan_weights_path``); else
    BackendUnavailable naming every file the backend needs and the folder to put them in."""
    path = fan_weights_path(name)
    if path is None:
        wanted = ", ".join(WEIGHT_FILES.values())
        raise BackendUnavailable(
            f"fan backend: {WEIGHT_FILES[name]} not found in {checkpoint_dirs()[0]} (face-alignment's cache, "
            f"$TORCH_HOME/hub/checkpoints); put {wanted} there (auhm never downloads weights)"
        )
    return path


@register_backend("fan")
class FanBackend(LandmarkBackend):
    """2D-FAN-4 fitted in face-alignment's crop convention, decoded with auhm's heatmap decoder.

    face-alignment's own ``get_landmarks_from_image`` JIT-compiles its decoder with numba (tens
    of seconds on first call) and fits one face at a time; here crops are cut with
    :mod:`auhm.face.crop` and a batch of frames goes through the network at once.
    """

    name = "fan"
    crop_size = 256  # face-alignment's CROP_RESOLUTION
    reference_scale = 195.0  # SFD box size that face-alignment's crops are scaled to
    centre_y_offset = 0.12  # face-alignment shifts the box centre up by this × box height

    def __init__(self, device: str = "cpu", detector_threshold: float = 0.5):
        device = str(resolve_device(device))
        self.weights = {name: weights_path(name) for name in WEIGHT_FILES}
        fan_file, sfd_file = self.weights["2DFAN-4"], self.weights["s3fd"]
        try:
            import torch
            from face_alignment.detection.sfd.sfd_detector import SFDDetector
            from face_alignment.models import FAN
        except ImportError:
            raise BackendUnavailable("fan backend: face-alignment is not installed (pip install face-alignment)") from None
        self._torch = torch
        self.device = torch.device(device)
        net = FAN(4)
        net.load_state_dict(read_fan_state_dict(fan_file))
        self.net = net.to(self.device).eval()
        self.detector = SFDDetector(device=device, path_to_detector=str(sfd_file), filter_threshold=detector_threshold)

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        out = []
        for frame in frames:
            boxes = self.detector.detect_from_image(np.ascontiguousarray(frame))
            out.append([(np.asarray(b[:4], np.float64), float(b[4])) for b in boxes])
        return out

    def squares(self, boxes: np.ndarray) -> np.ndarray:
        """(n, 3) crop squares cx, cy, side of face-alignment's crop for (n, 4) boxes."""
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        cx = (boxes[:, 0] + boxes[:, 2]) / 2
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 - self.centre_y_offset * h
        side = 200.0 * (w + h) / self.reference_scale
        return np.stack([cx, cy, side], axis=-1)

    def fit(self, frames: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        affines = [crop_affine(sq, self.crop_size) for sq in self.squares(region_boxes(regions))]
        crops = np.stack([crop_image(f, m, self.crop_size) for f, m in zip(frames, affines)])
        with torch.inference_mode():
            x = model_input(crops, self.device)
            out = self.net(x)
            heatmaps = (out[-1] if isinstance(out, (list, tuple)) else out).float()
            points, peaks = heatmaps_to_landmarks(heatmaps, self.crop_size)
        points = points.cpu().numpy()
        landmarks = np.stack([warp_points(p, invert_affine(m)) for p, m in zip(points, affines)]).astype(np.float32)
        confidence = np.clip(peaks.float().mean(dim=1).cpu().numpy(), 0.0, 1.0).astype(np.float32)
        return landmarks, confidence

    def metadata(self) -> dict:
        return {"backend": self.name, "weights": [self.weights[k].name for k in WEIGHT_FILES]}
