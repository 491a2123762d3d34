"""Faces: crops in one convention, the landmark-backend interface and registry (the dlib and truth
backends; those that run a network are in :mod:`auhm.landmarks`), full-frame detectors, tracking."""

from auhm.face.base import BackendUnavailable, FaceTrack, LandmarkBackend, landmark_boxes
from auhm.face.crop import CropConfig, crop_affine, crop_face, crop_image, crop_square, invert_affine, warp_points
from auhm.face.registry import register_backend
from auhm.face.tracking import Tracker, TrackerConfig

__all__ = [
    "BackendUnavailable",
    "CropConfig",
    "FaceTrack",
    "LandmarkBackend",
    "Tracker",
    "TrackerConfig",
    "crop_affine",
    "crop_face",
    "crop_image",
    "crop_square",
    "invert_affine",
    "landmark_boxes",
    "register_backend",
    "warp_points",
]
