"""Full-frame face detectors that answer in milliseconds and need no model download.

``dlib``: dlib's HOG frontal-face detector (no model file: it is built into dlib), on a frame
downscaled to ``detect_side`` pixels. ``opencv``: OpenCV's Haar cascade for frontal faces, the file
shipped inside the opencv-python wheel (``cv2.data``; OpenCV 5 no longer ships it). Both need
neither torch nor a GPU, so they run in the forked tracking processes. Each registers with
:func:`register_detector` (in the generic :class:`auhm.registry.Registry`) with its rank in the
order of preference; :func:`find_detector` takes the first one installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from auhm.face.base import Detection
from auhm.registry import Registry

REGISTRY: Registry[type] = Registry("face detector", order="preference")  # the detectors are defined here


def register_detector(name: str, preference: int):
    """Class decorator: a detector ``cls()`` (a callable frame → [(box, score)]) whose
    ``cls.available()`` says, cheaply, whether it can be made here; the lowest ``preference`` is
    tried first."""

    def deco(cls):
        cls.name = name
        return REGISTRY.register(name, cls, preference=preference)

    return deco


def hog_confidence(score: float) -> float:
    """HOG detector score (≈ −1 … 3, 0 is dlib's default threshold) to (0, 1)."""
    return float(1.0 / (1.0 + np.exp(-2.0 * score)))


def _downscaled(frame: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    h, w = frame.shape[:2]
    scale = min(1.0, side / max(h, w))
    if scale < 1:
        frame = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(frame), scale


@register_detector("dlib", preference=0)
class HogDetector:
    """dlib's HOG frontal-face detector; finds faces of ≥ 80 px at the downscaled size."""

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("dlib") is not None

    def __init__(self, detect_side: int = 480, threshold: float = 0.0):
        import dlib

        self._detector = dlib.get_frontal_face_detector()
        self.detect_side = detect_side
        self.threshold = threshold

    def run(self, image: np.ndarray, scale: float = 1.0, offset=(0.0, 0.0)) -> list[Detection]:
        """Faces in ``image`` (already scaled by ``scale`` and cut at ``offset``), in frame pixels."""
        rects, scores, _ = self._detector.run(image, 0, self.threshold)
        ox, oy = offset
        return [
            (np.array([r.left() / scale + ox, r.top() / scale + oy, r.right() / scale + ox, r.bottom() / scale + oy]), hog_confidence(s))
            for r, s in zip(rects, scores)
        ]

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        small, scale = _downscaled(frame, self.detect_side)
        return self.run(small, scale)


@register_detector("opencv", preference=1)
class HaarDetector:
    """OpenCV's frontal-face Haar cascade (grey frame downscaled to ``detect_side``)."""

    CASCADE = "haarcascade_frontalface_default.xml"

    @staticmethod
    def available() -> bool:
        return cascade_path() is not None

    def __init__(self, detect_side: int = 480, min_neighbours: int = 5):
        path = cascade_path()
        if path is None:
            raise RuntimeError(f"opencv detector: {self.CASCADE} is not shipped with this OpenCV ({cv2.__version__})")
        self._cascade = cv2.CascadeClassifier(str(path))
        self.detect_side = detect_side
        self.min_neighbours = min_neighbours

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        small, scale = _downscaled(frame, self.detect_side)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        boxes, _, weights = self._cascade.detectMultiScale3(grey, 1.1, self.min_neighbours, minSize=(40, 40), outputRejectLevels=True)
        out = []
        for (x, y, w, h), weight in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            box = np.array([x, y, x + w, y + h], np.float64) / scale
            out.append((box, float(1.0 / (1.0 + np.exp(-0.5 * float(weight))))))
        return out


def cascade_path() -> Path | None:
    data = getattr(cv2, "data", None)
    if data is None or not getattr(data, "haarcascades", None):
        return None
    path = Path(data.haarcascades) / HaarDetector.CASCADE
    return path if path.is_file() else None


DETECTORS = tuple(REGISTRY.names())  # in order of preference


def available(name: str) -> bool:
    return name in REGISTRY and REGISTRY.get(name).available()


def find_detector() -> str | None:
    """The first full-frame detector installed here, or None."""
    return next((name for name in DETECTORS if available(name)), None)


def make_detector(name: str):
    """A callable frame → list of (box, score) detections."""
    return REGISTRY.get(name, ValueError)()
