"""Faces: crops in one convention, landmark backends (dlib, fan, auhm, truth), tracking, the landmarks job."""

from auhm.face.base import BACKENDS, BackendUnavailable, FaceTrack, LandmarkBackend, landmark_boxes, make_backend
from auhm.face.crop import CropConfig, crop_affine, crop_face, crop_image, crop_square, invert_affine, warp_points
from auhm.face.tracking import Tracker, TrackerConfig

__all__ = [
    "BACKENDS",
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
    "make_backend",
    "warp_points",
]
