"""Where annotation gets its faces: the ``--landmarks`` choice turned into factories for the workers.

A tracker source (dlib, fan, network, truth) gives each worker a :class:`~auhm.face.Tracker`. The
self-tracking source (``auto`` on a checkpoint whose backbone predicts landmarks) gives each
worker a full-frame detector, and the landmark backend that a video falls back on when the
model's own landmarks cannot be trusted there. The detector is the first one installed of dlib's
HOG and OpenCV's Haar cascade (:mod:`auhm.face.detectors`); only when neither is, and
``--landmark-model`` is given, the landmark network searches the frame itself, a sliding search
that costs hundreds of forwards a frame: the last resort.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from auhm.errors import UsageError
from auhm.face.base import BackendUnavailable

if TYPE_CHECKING:
    from auhm.infer.annotate import AnnotateConfig
    from auhm.infer.predictor import Predictor

DEFAULT_PRESENCE = 0.25  # landmark confidence of a face, when the checkpoint does not say


@dataclass
class FaceSource:
    """How faces are found: a name for the metadata and factories of per-worker parts."""

    name: str
    make_backend: Callable[[], object] | None  # -> LandmarkBackend; self-tracking: the one a video falls back on
    self_tracking: bool = False  # crops follow the AU model's own backbone landmarks
    make_detector: Callable[[], Callable] | None = None  # self-tracking: frame -> [(box, score)]
    spare: object | None = None  # a backend already made (to check the options), handed out first
    forkable: bool = False  # needs neither torch nor the model: tracking may run in forked processes
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def backend(self):
        """A backend of this thread's own (loading one can take a second: dlib's predictor)."""
        with self._lock:
            made, self.spare = self.spare, None
        if made is not None:
            return made
        if self.make_backend is None:
            raise UsageError(f"--landmarks {self.name}: no landmark backend to track with (install dlib, or give --landmark-model)")
        return self.make_backend()

    def fallback(self):
        """The backend a self-tracked video falls back on, or None when there is none (or it fails to load)."""
        try:
            return self.backend()
        except (UsageError, ValueError, RuntimeError):  # RuntimeError: BackendUnavailable
            return None

    def tracker(self):
        from auhm.face import Tracker

        return Tracker(self.backend())

    def preload(self) -> "FaceSource":
        """Make the first backend now, unless it follows the model: a bad option fails here with
        the backend's own message, and forked tracking processes share it (dlib's predictor is
        large: each process would otherwise hold its own copy)."""
        if self.spare is None and not self.self_tracking:
            try:
                self.spare = self.make_backend()
            except (ValueError, FileNotFoundError, BackendUnavailable) as e:  # a checkpoint of no use, a library or weights not installed
                raise UsageError(f"--landmarks {self.name}: {e}") from None
        return self


def dlib_available() -> bool:
    """dlib and its 68-point predictor are installed (the ``dlib`` landmark backend can load)."""
    from auhm.face.dlib_backend import check_available

    try:
        check_available()
        return True
    except BackendUnavailable:
        return False


def presence_threshold(config: "AnnotateConfig", predictor: "Predictor") -> float:
    """Landmark confidence below which self-tracking calls a crop no face."""
    if config.min_landmark_confidence is not None:
        return float(config.min_landmark_confidence)
    return float(predictor.info.get("backbone_presence_threshold", DEFAULT_PRESENCE))


def face_source(config: "AnnotateConfig", predictor: "Predictor") -> FaceSource:
    """The faces the options ask for; ``auto`` prefers the model's own backbone landmarks.
    Nothing is loaded yet (dlib's predictor takes a while): :meth:`FaceSource.preload` does it when there is work."""
    from auhm.face.detectors import find_detector, make_detector
    from auhm.landmarks import backend_name, backend_spec, make_backend

    name = backend_name(config.landmarks)
    if name == "auto":
        if predictor.has_landmarks:
            return _self_tracking(config, make_backend, find_detector(), make_detector)
        if not dlib_available():
            raise UsageError("--landmarks auto: this checkpoint has no landmark backbone and dlib is not installed")
        name = "dlib"
    return FaceSource(name, lambda: make_backend(name, model=config.landmark_model), forkable=backend_spec(name).forkable)


def _self_tracking(config, make_backend, detector: str | None, make_detector) -> FaceSource:
    landmark_model = config.landmark_model
    fallback, forkable = None, True
    if dlib_available():
        fallback = lambda: make_backend("dlib")  # noqa: E731
    elif landmark_model:
        fallback, forkable = (lambda: make_backend("network", model=landmark_model)), False  # torch: not in a forked process
    if detector is None:
        if not landmark_model:
            raise UsageError("--landmarks auto: the backbone tracks, but finding faces needs dlib (pip install 'auhm[dlib]'), "
                             "OpenCV's Haar cascades, or --landmark-model")
        detector, forkable = "network", False

        def search():  # the landmark network's sliding search: the last resort
            backend = make_backend("network", model=landmark_model)
            return lambda frame: backend.detect(frame[None])[0]

        return FaceSource(f"backbone+{detector}", fallback, True, search, forkable=forkable)
    return FaceSource(f"backbone+{detector}", fallback, True, lambda: make_detector(detector), forkable=forkable)
