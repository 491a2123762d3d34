"""Where annotation gets its faces: the ``--landmarks`` and ``--faces`` choices turned into trackers.

Every source gives each worker a tracker over a landmark backend built on the run's device: the
multi-face :class:`~auhm.face.multitrack.MultiTracker` (``--faces all``) or the single-face
:class:`~auhm.face.tracking.Tracker` (``--faces largest``). ``auto`` on a checkpoint whose
backbone predicts landmarks tracks with the AU model itself (:mod:`.backbone`): a full-frame
detector finds the faces, the first one installed of dlib's HOG and OpenCV's Haar cascade
(:mod:`auhm.face.detectors`), or, where neither is, the landmark network of ``--landmark-model``
searching the frame itself (hundreds of forwards a frame: the last resort). A video whose
faces the model's landmarks keep rejecting falls back on another tracker: the landmark network
of ``--landmark-model`` when given, else dlib's.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from auhm.errors import UsageError
from auhm.face.base import BackendUnavailable
from auhm.face.multitrack import MultiTrackConfig

if TYPE_CHECKING:
    from auhm.infer.annotate import AnnotateConfig
    from auhm.infer.predictor import Predictor

FACES = ("all", "largest")


@dataclass
class FaceSource:
    """How faces are found: a name for the metadata and factories of per-worker trackers."""

    name: str
    make_backend: Callable[[], object] | None  # -> LandmarkBackend
    self_tracking: bool = False  # the AU model's own backbone landmarks follow the faces
    make_fallback: Callable[[], object] | None = None  # self-tracking: the backend a distrusted video goes on with
    forkable: bool = False  # needs neither torch nor the model: tracking may run in forked processes
    faces: str = "all"  # every face, or the largest one
    tracking: MultiTrackConfig = field(default_factory=MultiTrackConfig)
    spare: object | None = None  # a backend already made (to check the options), handed out first
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def backend(self):
        """A backend of this worker's own (loading one can take a second: dlib's predictor)."""
        with self._lock:
            made, self.spare = self.spare, None
        if made is not None:
            return made
        if self.make_backend is None:
            raise UsageError(f"--landmarks {self.name}: no landmark backend to track with (install dlib, or give --landmark-model)")
        return self.make_backend()

    def _tracker(self, backend):
        from auhm.face.multitrack import MultiTracker
        from auhm.face.tracking import Tracker

        return MultiTracker(backend, self.tracking) if self.faces == "all" else Tracker(backend)

    def tracker(self):
        return self._tracker(self.backend())

    def fallback_tracker(self):
        """The tracker a distrusted self-tracked video goes on with, or None when there is none (or it fails to load)."""
        if self.make_fallback is None:
            return None
        try:
            return self._tracker(self.make_fallback())
        except (UsageError, ValueError, RuntimeError):  # RuntimeError: BackendUnavailable
            return None

    def preload(self) -> "FaceSource":
        """Make the first backend now: a bad option fails here with the backend's own message, and
        forked tracking processes share it (dlib's predictor is large: each process would
        otherwise hold its own copy)."""
        if self.spare is None:
            try:
                self.spare = self.backend()
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


def backbone_presence(config: "AnnotateConfig", predictor: "Predictor") -> float:
    """Landmark confidence below which self-tracking calls a crop no face: ``--min-landmark-confidence``,
    else the checkpoint's calibrated threshold, else the landmark network's default."""
    from auhm.landmarks.network import DEFAULT_PRESENCE

    if config.min_landmark_confidence is not None:
        return float(config.min_landmark_confidence)
    return float(predictor.info.get("backbone_presence_threshold", DEFAULT_PRESENCE))


def check_detector(name: str, landmarks: str) -> None:
    """``--detector`` names an installed detector, and the path that uses one (self-tracking: the
    other backends find faces their own way), as a UsageError."""
    from auhm.face.detectors import REGISTRY, available

    detector = REGISTRY.get(name, UsageError, option="--detector")
    if not available(name):
        raise UsageError(f"--detector {name} is not installed here: {detector.install_hint}")
    if landmarks != "auto":
        raise UsageError(f"--detector is for --landmarks auto (the model's own landmarks follow the faces); "
                         f"--landmarks {landmarks} finds faces its own way")


def tracking_config(config: "AnnotateConfig") -> MultiTrackConfig:
    """The multi-face tracker's settings from the options (``--max-gap`` in seconds: frames by each video's fps)."""
    return MultiTrackConfig(detect_every=config.detect_every, max_gap=config.max_gap)


def face_source(config: "AnnotateConfig", predictor: "Predictor") -> FaceSource:
    """The faces the options ask for; ``auto`` prefers the model's own backbone landmarks.
    Nothing is loaded yet (dlib's predictor takes a while): :meth:`FaceSource.preload` does it when there is work."""
    from auhm.face.detectors import find_detector
    from auhm.landmarks import backend_name, backend_spec, make_backend

    name = backend_name(config.landmarks)
    device = str(predictor.device)
    common = {"faces": config.faces, "tracking": tracking_config(config)}
    if name == "auto":
        if predictor.has_landmarks:
            return _self_tracking(config, predictor, config.detector or find_detector(), device, common)
        if not dlib_available():
            raise UsageError("--landmarks auto: this checkpoint has no landmark backbone and dlib is not installed")
        name = "dlib"
    options = {"min_face": config.min_face} if name == "dlib" else {}
    return FaceSource(name, lambda: make_backend(name, model=config.landmark_model, device=device, **options),
                      forkable=backend_spec(name).forkable, **common)


def _self_tracking(config: "AnnotateConfig", predictor: "Predictor", detector: str | None, device: str, common: dict) -> FaceSource:
    from auhm.face.detectors import make_detector
    from auhm.infer.backbone import BackboneBackend
    from auhm.landmarks import make_backend

    landmark_model = config.landmark_model
    fallback = None
    if landmark_model:
        fallback = lambda: make_backend("network", model=landmark_model, device=device)  # noqa: E731
    elif dlib_available():
        fallback = lambda: make_backend("dlib", min_face=config.min_face)  # noqa: E731
    threshold = backbone_presence(config, predictor)
    if detector is None:
        if not landmark_model:
            raise UsageError("--landmarks auto: the backbone tracks, but finding faces needs dlib (pip install 'auhm[dlib]'), "
                             "OpenCV's Haar cascades, or --landmark-model")
        detector = "network"

        def find():  # the landmark network's sliding search: the last resort
            network = make_backend("network", model=landmark_model, device=device)
            return lambda frame: network.detect(frame[None])[0]
    else:
        find = lambda: make_detector(detector, candidates=config.faces == "all", min_face=config.min_face)  # noqa: E731
    make = lambda: BackboneBackend(predictor, find(), threshold, config.refine_drift)  # noqa: E731
    return FaceSource(f"backbone+{detector}", make, True, fallback, forkable=False, **common)
