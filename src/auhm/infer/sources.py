"""Where annotation gets its faces: the ``--landmarks`` choice turned into a factory of trackers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from auhm.errors import UsageError

if TYPE_CHECKING:
    from auhm.infer.annotate import AnnotateConfig
    from auhm.infer.predictor import Predictor


@dataclass
class FaceSource:
    """How faces are found: a name for the metadata and a factory of per-thread backends."""

    name: str
    make_backend: Callable[[], object]  # -> auhm.face LandmarkBackend
    self_tracking: bool = False  # crops follow the AU model's own backbone landmarks
    spare: object | None = None  # a backend already made (to check the options), handed out first
    forkable: bool = False  # needs neither torch nor the model: tracking may run in forked processes
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def backend(self):
        """A backend of this thread's own (loading one can take a second: dlib's predictor)."""
        with self._lock:
            made, self.spare = self.spare, None
        return made if made is not None else self.make_backend()

    def tracker(self):
        from auhm.face import Tracker

        return Tracker(self.backend())

    def preload(self) -> "FaceSource":
        """Make the first backend now, unless it follows the model: a bad option fails here with
        the backend's own message, and forked tracking processes share it (dlib's predictor is
        70 MB: each of 2 tracking processes held ~75 MiB less of its own)."""
        if self.spare is None and not self.self_tracking:
            try:
                self.spare = self.make_backend()
            except (ValueError, RuntimeError) as e:
                raise UsageError(f"--landmarks {self.name}: {e}") from None
        return self


def dlib_available() -> bool:
    from auhm.face.dlib_backend import check_available

    try:
        check_available()
        return True
    except RuntimeError:
        return False


def face_source(config: "AnnotateConfig", predictor: "Predictor") -> FaceSource:
    """The tracker the options ask for; ``auto`` prefers the model's own backbone landmarks.
    Nothing is loaded yet (dlib: 0.6–0.9 s): :meth:`FaceSource.preload` does it when there is work."""
    from auhm.face import make_backend

    name = config.landmarks
    if name == "auto":
        if predictor.has_landmarks:
            detector = "auhm" if config.landmark_model else "dlib"
            if detector == "dlib" and not dlib_available():
                raise UsageError("--landmarks auto: the backbone tracks, but detection needs dlib or --landmark-model")
            return FaceSource(f"backbone+{detector}", lambda: make_backend(detector, model=config.landmark_model), True)
        if not dlib_available():
            raise UsageError("--landmarks auto: this checkpoint has no landmark backbone and dlib is not installed")
        name = "dlib"
    return FaceSource(name, lambda: make_backend(name, model=config.landmark_model), forkable=name in ("dlib", "truth"))
