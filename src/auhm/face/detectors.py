"""Full-frame face detectors that answer in milliseconds and need no model download.

``dlib``: dlib's HOG frontal-face detector (no model file: it is built into dlib). ``opencv``:
OpenCV's Haar cascade for frontal faces, the file shipped inside the opencv-python wheel
(``cv2.data``; OpenCV 5 no longer ships it). ``dlib-cnn``: dlib's CNN (MMOD) face detector, the
weights shipped by face-recognition-models; it finds more turned and small faces but costs seconds
per frame on a CPU, so it is never chosen unless asked for. These need no torch, so they run in
the forked tracking processes. ``mtcnn`` (:mod:`auhm.face.mtcnn`, only when named) runs small
torch nets, in the self-tracking path's threads. Each registers with :func:`register_detector`
(in the generic :class:`auhm.registry.Registry`) with its rank in the order of preference;
:func:`find_detector` takes the first one installed.

``min_face`` is the side, in pixels of the original frame, of the smallest face to find: each
detector scales the frame so that such a face fills its smallest window (up for small faces, down
for large ones), which sets both what it finds and what it costs.

Every detector answers with boxes drawn as dlib's HOG draws them (:class:`BoxConvention`): a fit
seeded from a box starts from the same crop whichever detector found the face, and dlib's shape
predictor was trained on HOG's boxes.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from auhm.face.base import Detection
from auhm.registry import Registry

REGISTRY: Registry[type] = Registry("face detector", ("auhm.face.mtcnn",), order="preference")  # and defined here

MIN_FACE = 80  # default smallest face side, original frame pixels (figures in bench/RESULTS.md)
MIN_SHORT_SIDE = 120  # a frame is never shrunk below this short side: a face filling it still fits the window


@dataclass(frozen=True)
class BoxConvention:
    """Where dlib's HOG would draw the box of a face another detector boxed: its centre lower by
    ``shift_y`` of the detector's box height, its height and width ``height`` and ``width`` times
    the detector's (each detector's figures measured by bench/box_convention.py)."""

    shift_y: float = 0.0
    height: float = 1.0
    width: float = 1.0

    def __call__(self, box: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = np.asarray(box, np.float64)[:4]
        w, h = x1 - x0, y1 - y0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + self.shift_y * h
        half_w, half_h = self.width * w / 2, self.height * h / 2
        return np.array([cx - half_w, cy - half_h, cx + half_w, cy + half_h])


def register_detector(name: str, preference: int | None = None):
    """Class decorator: a detector ``cls()`` (a callable frame → [(box, score)]) whose
    ``cls.available()`` says, cheaply, whether it can be made here; the lowest ``preference`` is
    tried first, and one without a preference is made only when named."""

    def deco(cls):
        cls.name = name
        cls.preference = preference
        return REGISTRY.register(name, cls, preference=1_000 if preference is None else preference)

    return deco


def candidate_settings() -> dict[str, dict]:
    """Each registered detector's settings for a tracker that confirms its finds (``CANDIDATES``)."""
    return {name: dict(getattr(REGISTRY.get(name), "CANDIDATES", {})) for name in REGISTRY.names()}


def hog_confidence(score: float) -> float:
    """HOG detector score (≈ −1 … 3, 0 is dlib's default threshold) to (0, 1)."""
    return float(1.0 / (1.0 + np.exp(-2.0 * score)))


def detection_scale(shape: tuple[int, ...], min_face: float, window: float) -> float:
    """The factor that brings a ``min_face`` face to the detector's smallest ``window``, limited so
    that the frame's short side stays ≥ ``MIN_SHORT_SIDE`` (or its own size, when smaller)."""
    if min_face <= 0:
        raise ValueError(f"min_face must be a positive number of pixels, not {min_face}")
    short = min(shape[:2])
    floor = min(1.0, MIN_SHORT_SIDE / max(short, 1))
    return max(window / float(min_face), floor)


def scaled_frame(frame: np.ndarray, scale: float) -> np.ndarray:
    """``frame`` resized by ``scale`` (area-averaged down, bilinear up), C-contiguous."""
    if abs(scale - 1.0) > 1e-3:
        h, w = frame.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return np.ascontiguousarray(frame)


def _frame_boxes(rects, scale: float, offset=(0.0, 0.0)) -> list[np.ndarray]:
    ox, oy = offset
    return [np.array([r.left() / scale + ox, r.top() / scale + oy, r.right() / scale + ox, r.bottom() / scale + oy]) for r in rects]


@register_detector("dlib", preference=0)
class HogDetector:
    """dlib's HOG frontal-face detector; its smallest window holds an 80-px face."""

    WINDOW = 80
    CANDIDATES = {"threshold": -0.8}  # for a tracker that confirms its finds: HOG's low scorers too (faces it scores under 0: bench/RESULTS.md)
    sure_score = hog_confidence(0.0)  # a find under dlib's own threshold (0) is a candidate, whatever threshold this one runs at
    install_hint = "pip install 'auhm[dlib]'"

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("dlib") is not None

    def __init__(self, min_face: float = MIN_FACE, threshold: float = 0.0):
        import dlib

        detection_scale((100, 100), min_face, self.WINDOW)  # a bad min_face fails here, not at the first frame
        self._detector = dlib.get_frontal_face_detector()
        self.min_face = min_face
        self.threshold = threshold

    def run(self, image: np.ndarray, scale: float = 1.0, offset=(0.0, 0.0), threshold: float | None = None) -> list[Detection]:
        """Faces in ``image`` (already scaled by ``scale`` and cut at ``offset``), in frame pixels,
        scoring at least ``threshold`` (None: the detector's own)."""
        rects, scores, _ = self._detector.run(image, 0, self.threshold if threshold is None else threshold)
        return [(box, hog_confidence(s)) for box, s in zip(_frame_boxes(rects, scale, offset), scores)]

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        scale = detection_scale(frame.shape, self.min_face, self.WINDOW)
        return self.run(scaled_frame(frame, scale), scale)


@register_detector("opencv", preference=1)
class HaarDetector:
    """OpenCV's frontal-face Haar cascade on the grey frame, its smallest window 40 px."""

    CASCADE = "haarcascade_frontalface_default.xml"
    WINDOW = 40
    AS_HOG = BoxConvention(shift_y=0.09, height=0.89, width=0.89)  # its boxes sit higher and are larger than HOG's: drawn as HOG's
    install_hint = "an opencv-python before 5 (OpenCV 5 ships no Haar cascades)"

    @staticmethod
    def available() -> bool:
        return cascade_path() is not None

    def __init__(self, min_face: float = MIN_FACE, min_neighbours: int = 5, convention: BoxConvention = AS_HOG):
        path = cascade_path()
        if path is None:
            raise RuntimeError(f"opencv detector: {self.CASCADE} is not shipped with this OpenCV ({cv2.__version__})")
        detection_scale((100, 100), min_face, self.WINDOW)
        self._cascade = cv2.CascadeClassifier(str(path))
        self.min_face = min_face
        self.min_neighbours = min_neighbours
        self.convention = convention  # BoxConvention(): the cascade's own boxes

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        scale = detection_scale(frame.shape, self.min_face, self.WINDOW)
        grey = cv2.cvtColor(scaled_frame(frame, scale), cv2.COLOR_RGB2GRAY)
        window = (self.WINDOW, self.WINDOW)
        boxes, _, weights = self._cascade.detectMultiScale3(grey, 1.1, self.min_neighbours, minSize=window, outputRejectLevels=True)
        out = []
        for (x, y, w, h), weight in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1)):
            box = self.convention(np.array([x, y, x + w, y + h], np.float64) / scale)
            out.append((box, float(1.0 / (1.0 + np.exp(-0.5 * float(weight))))))
        return out


@register_detector("dlib-cnn")
class CnnDetector:
    """dlib's CNN (MMOD) face detector, weights from face-recognition-models; like HOG, it misses
    faces under ~80 px at the scale it runs. Seconds per frame on a CPU: chosen only by name."""

    WEIGHTS = "mmod_human_face_detector.dat"
    WINDOW = 80
    AS_HOG = BoxConvention(shift_y=0.09, height=1.09, width=1.09)  # MMOD's boxes sit higher and are smaller than HOG's: drawn as HOG's
    install_hint = "pip install 'auhm[dlib]'"

    @staticmethod
    def available() -> bool:
        return importlib.util.find_spec("dlib") is not None and cnn_weights() is not None

    def __init__(self, min_face: float = MIN_FACE, threshold: float = 0.0, convention: BoxConvention = AS_HOG):
        import dlib

        path = cnn_weights()
        if path is None:
            raise RuntimeError(f"dlib-cnn detector: {self.WEIGHTS} not found; pip install face-recognition-models")
        detection_scale((100, 100), min_face, self.WINDOW)
        self._detector = dlib.cnn_face_detection_model_v1(str(path))
        self.min_face = min_face
        self.threshold = threshold
        self.convention = convention  # BoxConvention(): MMOD's own boxes

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        scale = detection_scale(frame.shape, self.min_face, self.WINDOW)
        found = [d for d in self._detector(scaled_frame(frame, scale), 0) if d.confidence > self.threshold]
        return [(self.convention(box), hog_confidence(d.confidence)) for box, d in zip(_frame_boxes([d.rect for d in found], scale), found)]


def installed_file(package: str, relative: str) -> Path | None:
    """A file or folder inside an installed package, found by its spec without importing it (the
    weight packages' own code needs what auhm does not install), or None."""
    spec = importlib.util.find_spec(package)
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / relative
        if path.exists():
            return path
    return None


def cnn_weights() -> Path | None:
    """The MMOD weights inside face-recognition-models (its __init__ needs pkg_resources)."""
    return installed_file("face_recognition_models", f"models/{CnnDetector.WEIGHTS}")


def cascade_path() -> Path | None:
    data = getattr(cv2, "data", None)
    if data is None or not getattr(data, "haarcascades", None):
        return None
    path = Path(data.haarcascades) / HaarDetector.CASCADE
    return path if path.is_file() else None


def detector_names() -> tuple[str, ...]:
    """Every detector registered, in order of preference (those made only when named last)."""
    return tuple(REGISTRY.names())


def available(name: str) -> bool:
    return name in REGISTRY and REGISTRY.get(name).available()


def find_detector() -> str | None:
    """The first full-frame detector installed here, or None."""
    return next((name for name in detector_names() if REGISTRY.get(name).preference is not None and available(name)), None)


def make_detector(name: str, candidates: bool = False, **options):
    """A callable frame → list of (box, score) detections; ``options`` (``min_face``: the smallest face side to find, in frame pixels) where given.

    ``candidates``: for a tracker that confirms what it finds itself (several hits, a plausible
    fit: the multi-face tracker), with the detector's ``CANDIDATES`` settings where it has them
    (a lower threshold: more faces found, the false ones make no track)."""
    cls = REGISTRY.get(name, ValueError)
    settings = {**(getattr(cls, "CANDIDATES", {}) if candidates else {}), **{k: v for k, v in options.items() if v is not None}}
    return cls(**settings)
