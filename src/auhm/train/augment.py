"""On-the-fly augmentation of face crops and their landmarks (numpy/cv2, one warp per sample).

Flip, rotation, scale and the resize to the model's input size are composed into a single 2×3
affine, applied once to the image and to the landmarks, so the heatmap targets built later from
the warped landmarks line up with the warped pixels. Pixel centres are the coordinate grid
(cv2's convention): pixel i has coordinate i.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from auhm.face.crop import warp_points
from auhm.targets import IBUG_FLIP_PERMUTATION

_FLIP = np.asarray(IBUG_FLIP_PERMUTATION)


@dataclass(frozen=True)
class AugmentConfig:
    """Paper §5.3: flip, rotation ±30°, scale 0.8–1.2, colour jitter, random occlusion."""

    flip: float = 0.5  # probability of a horizontal flip
    rotation: float = 30.0  # degrees, uniform in ±rotation
    scale: tuple[float, float] = (0.8, 1.2)
    translate: float = 0.05  # fraction of the side, uniform in ±translate
    brightness: float = 0.25  # multiplicative, 1 ± b
    contrast: float = 0.25
    saturation: float = 0.25
    occlusion: float = 0.3  # probability of one random box
    occlusion_size: tuple[float, float] = (0.15, 0.4)  # box side as a fraction of the crop side


def resize_affine(in_size: int, out_size: int) -> np.ndarray:
    """2×3 affine that resizes an in_size square to out_size (pixel centres kept aligned)."""
    s = out_size / in_size
    return np.array([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5]])


def random_affine(rng: np.random.Generator, in_size: int, out_size: int, config: AugmentConfig) -> tuple[np.ndarray, bool]:
    """A random flip∘rotation∘scale∘shift about the crop centre, ending at out_size; and whether it flips.

    x ↦ R·(F(x) − c_in) + c_out + shift, with F the mirror x ↦ in_size − 1 − x when flipped and R
    the scaled rotation; written out in scalars (it runs once per training sample).
    """
    flipped = bool(rng.random() < config.flip)
    angle = np.deg2rad(rng.uniform(-config.rotation, config.rotation))
    scale = rng.uniform(*config.scale) * out_size / in_size
    shift_x, shift_y = rng.uniform(-config.translate, config.translate, size=2) * out_size
    c_in, c_out = (in_size - 1) / 2, (out_size - 1) / 2
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    fx = -1.0 if flipped else 1.0
    ox = (in_size - 1.0 if flipped else 0.0) - c_in  # F(x) − c_in = fx·x + ox
    m = np.array([
        [cos * fx, -sin, cos * ox + sin * c_in + c_out + shift_x],
        [sin * fx, cos, sin * ox - cos * c_in + c_out + shift_y],
    ])
    return m, flipped


def warp_sample(image: np.ndarray, landmarks: np.ndarray, m: np.ndarray, out_size: int, flipped: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Warp a crop and its (68, 2) landmarks by one affine; relabel landmarks if it mirrors."""
    out = cv2.warpAffine(image, m, (out_size, out_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    pts = warp_points(landmarks.astype(np.float64), m)
    if flipped:
        pts = pts[_FLIP]
    return out, pts.astype(np.float32)


def jitter_colour(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Random brightness b, contrast c and saturation s (uint8 in, uint8 out).

    Brightness, contrast about the image mean m, then saturation about each pixel's grey level
    g(x) compose into one linear map, out = s·c·b·x + (1−s)·c·b·g(x) + (1−c)·b·m, applied in a
    single saturating OpenCV pass (far cheaper than the float32 steps one by one; it feeds the DataLoader).
    """
    b = rng.uniform(1 - config.brightness, 1 + config.brightness)
    c = rng.uniform(1 - config.contrast, 1 + config.contrast)
    s = rng.uniform(1 - config.saturation, 1 + config.saturation)
    mean = float(np.mean(cv2.mean(image)[:3]))
    alpha, beta, gamma = s * c * b, (1 - s) * c * b / 3.0, (1 - c) * b * mean
    m = np.full((3, 4), beta, np.float32)
    m[:, :3] += alpha * np.eye(3, dtype=np.float32)
    m[:, 3] = gamma
    return cv2.transform(np.ascontiguousarray(image), m)


def occlude(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Paint one random box of noise (a hand, a microphone…); landmarks are unchanged."""
    size = image.shape[0]
    side = (rng.uniform(*config.occlusion_size, size=2) * size).astype(int).clip(1, size)
    x0, y0 = rng.integers(0, size - side[0] + 1), rng.integers(0, size - side[1] + 1)
    image = image.copy()
    image[y0 : y0 + side[1], x0 : x0 + side[0]] = rng.integers(0, 256, size=(side[1], side[0], 3), dtype=np.uint8)
    return image


def augment(image: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, out_size: int, config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """One training view of a crop: geometric warp (incl. resize to out_size), colour, occlusion."""
    m, flipped = random_affine(rng, image.shape[0], out_size, config)
    image, landmarks = warp_sample(image, landmarks, m, out_size, flipped)
    image = jitter_colour(image, rng, config)
    if rng.random() < config.occlusion:
        image = occlude(image, rng, config)
    return image, landmarks


def resize_sample(image: np.ndarray, landmarks: np.ndarray, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation view: the crop resized to out_size, nothing random."""
    if image.shape[0] == out_size:
        return image, landmarks.astype(np.float32)
    return warp_sample(image, landmarks, resize_affine(image.shape[0], out_size), out_size)


def shuffle_patches(image: np.ndarray, rng: np.random.Generator, grid: int = 4) -> np.ndarray:
    """A no-face negative: the crop cut into grid×grid patches, shuffled and randomly rotated."""
    size = image.shape[0]
    step = size // grid
    core = image[: step * grid, : step * grid]
    patches = core.reshape(grid, step, grid, step, 3).swapaxes(1, 2).reshape(grid * grid, step, step, 3)
    patches = np.stack([np.rot90(p, k) for p, k in zip(patches[rng.permutation(grid * grid)], rng.integers(0, 4, grid * grid))])
    out = np.zeros_like(image)
    out[: step * grid, : step * grid] = patches.reshape(grid, grid, step, step, 3).swapaxes(1, 2).reshape(step * grid, step * grid, 3)
    return out


class ShardView:
    """The items of a ShardDataset as a model sees them: augmented for training, resized otherwise.

    Keys are positions in ``indices`` or (position, epoch) pairs; a training item's randomness
    comes from (seed, epoch, frame index) alone, so it is the same in any worker, on any rank and
    after a resume.
    """

    def __init__(self, shards, indices, input_size: int, augment: AugmentConfig | None = None, seed: int = 0, negative_fraction: float = 0.0):
        self.shards = shards
        self.indices = np.asarray(indices, np.int64)
        self.input_size = int(input_size)
        self.augment = augment
        self.seed = int(seed)
        self.negative_fraction = float(negative_fraction)
        self._reduce: int | None = None  # JPEG decode reduction, from the stored crop size
        self._stored: int | None = None  # the side of the stored crops

    def __len__(self) -> int:
        return len(self.indices)

    def subset(self, positions) -> "ShardView":
        """The same view of the items at ``positions`` only (a rank's share)."""
        view = ShardView(self.shards, self.indices[np.asarray(positions, np.int64)], self.input_size, self.augment, self.seed,
                         self.negative_fraction)
        view._reduce, view._stored = self._reduce, self._stored
        return view

    @property
    def stored_size(self) -> int:
        """The side of the crops as stored (from a JPEG header where the shards read one, else a decode)."""
        if self._stored is None:
            i = int(self.indices[0])
            side = getattr(self.shards, "image_side", None)
            self._stored = side(i) if side is not None else self.shards.image(i).shape[0]
        return self._stored

    def __getitem__(self, key) -> dict:
        """The item, decoded at the smallest JPEG scale still ≥ the model's input size, then warped
        to it (training: with flip, rotation, scale, colour, occlusion and no-face negatives)."""
        pos, epoch = key if isinstance(key, tuple) else (key, 0)
        i = int(self.indices[pos])
        if self._reduce is None:
            from auhm.data.shards import jpeg_reduction

            self._reduce = jpeg_reduction(self.stored_size, self.input_size)
        image, landmarks = self.shards.image(i, self._reduce), self.shards.landmarks[i]
        if self._reduce > 1:
            landmarks = (landmarks + 0.5) / self._reduce - 0.5
        negative = False
        if self.augment is None:
            image, landmarks = resize_sample(image, landmarks, self.input_size)
        else:
            rng = np.random.default_rng((self.seed, int(epoch), i))
            image, landmarks = augment(image, landmarks, rng, self.input_size, self.augment)
            if self.negative_fraction and rng.random() < self.negative_fraction:
                image, negative = shuffle_patches(image, rng), True
        return {
            "image": np.ascontiguousarray(image),
            "landmarks": landmarks,
            "labels": self.shards.labels[i].copy(),
            "negative": negative,
            "index": i,
        }
