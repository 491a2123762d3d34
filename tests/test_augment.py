"""Augmentation: one affine moves pixels and landmarks together; flips relabel left and right."""

from __future__ import annotations

import numpy as np
import pytest

from auhm.targets import IBUG_FLIP_PERMUTATION
from auhm.train.augment import (
    AugmentConfig,
    ShardView,
    augment,
    random_affine,
    resize_affine,
    resize_sample,
    shuffle_patches,
    warp_sample,
)

from helpers import FakeShards

NO_COLOUR = dict(brightness=0.0, contrast=0.0, saturation=0.0, occlusion=0.0)


def dot_image(points: np.ndarray, size: int) -> np.ndarray:
    """Black image with one white pixel at each (rounded) point."""
    img = np.zeros((size, size, 3), np.uint8)
    for x, y in np.round(points).astype(int):
        img[y, x] = 255
    return img


def bright_centroid(img: np.ndarray, near: np.ndarray, radius: float = 4.0) -> np.ndarray:
    """Intensity-weighted centre of the bright pixels within radius of a point."""
    g = img[..., 0].astype(float)
    ys, xs = np.mgrid[: g.shape[0], : g.shape[1]]
    w = g * (((xs - near[0]) ** 2 + (ys - near[1]) ** 2) <= radius**2)
    return np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()


@pytest.mark.parametrize("seed", range(5))
def test_warped_pixels_land_where_the_warped_landmarks_say(seed):
    rng = np.random.default_rng(seed)
    pts = np.array([[40.0, 50.0], [90.0, 60.0], [64.0, 100.0]])
    # a full 68-point set so the flip permutation applies; only the first three are drawn
    lms = np.tile(pts, (23, 1))[:68]
    m, flipped = random_affine(rng, 128, 96, AugmentConfig(rotation=30, scale=(0.8, 1.2), **NO_COLOUR))
    out, warped = warp_sample(dot_image(pts, 128), lms, m, 96, flipped)
    # independent reference: the points through the 2×3 matrix by hand
    expect = pts @ m[:, :2].T + m[:, 2]
    for p in expect:
        assert np.abs(bright_centroid(out, p) - p).max() < 0.75
    if not flipped:
        np.testing.assert_allclose(warped[:3], expect, atol=1e-4)


def test_flip_mirrors_x_and_swaps_left_right_landmarks():
    lms = np.random.default_rng(0).uniform(10, 100, (68, 2)).astype(np.float32)
    cfg = AugmentConfig(flip=1.0, rotation=0.0, scale=(1.0, 1.0), translate=0.0, **NO_COLOUR)
    img = np.zeros((128, 128, 3), np.uint8)
    img[:, :10] = 200  # a bar on the left edge ends up on the right
    out, warped = augment(img, lms, np.random.default_rng(1), 128, cfg)
    assert out[:, -10:].mean() > 150 and out[:, :10].mean() < 50
    expect = lms.copy()[IBUG_FLIP_PERMUTATION]
    expect[:, 0] = 127 - expect[:, 0]
    np.testing.assert_allclose(warped, expect, atol=1e-3)
    # the outer eye corners swap: point 36 now sits where the mirrored 45 was
    np.testing.assert_allclose(warped[36], [127 - lms[45, 0], lms[45, 1]], atol=1e-3)


def test_resize_keeps_pixel_centres_aligned():
    m = resize_affine(256, 128)
    # pixel 0 spans [-0.5, 0.5]: the left edge -0.5 must map to -0.5, the right edge 255.5 to 127.5
    np.testing.assert_allclose(np.array([[-0.5, -0.5], [255.5, 255.5]]) @ m[:, :2].T + m[:, 2], [[-0.5, -0.5], [127.5, 127.5]])
    img = np.zeros((256, 256, 3), np.uint8)
    img[100:110, 50:60] = 255
    small, lm = resize_sample(img, np.full((68, 2), 54.5, np.float32), 128)
    np.testing.assert_allclose(lm[0], [27.0, 27.0])
    np.testing.assert_allclose(bright_centroid(small, [27.0, 52.0], 6), [27.0, 52.0], atol=0.3)


def test_rotation_and_scale_stay_in_range():
    cfg = AugmentConfig(flip=0.0, translate=0.0)
    rng = np.random.default_rng(3)
    for _ in range(200):
        m, _ = random_affine(rng, 128, 128, cfg)
        scale = np.sqrt(abs(np.linalg.det(m[:, :2])))
        angle = np.degrees(np.arctan2(m[1, 0], m[0, 0]))
        assert 0.8 - 1e-9 <= scale <= 1.2 + 1e-9 and abs(angle) <= 30 + 1e-9
        # the crop centre stays the centre
        np.testing.assert_allclose(np.array([63.5, 63.5]) @ m[:, :2].T + m[:, 2], [63.5, 63.5], atol=1e-9)


def test_colour_and_occlusion_change_pixels_not_landmarks():
    img = np.full((64, 64, 3), 120, np.uint8)
    lms = np.random.default_rng(0).uniform(5, 60, (68, 2)).astype(np.float32)
    cfg = AugmentConfig(flip=0.0, rotation=0.0, scale=(1.0, 1.0), translate=0.0, occlusion=1.0)
    out, warped = augment(img, lms, np.random.default_rng(2), 64, cfg)
    np.testing.assert_allclose(warped, lms, atol=1e-4)
    assert out.dtype == np.uint8 and out.std() > 5  # the noise box


def test_shuffled_patches_keep_the_pixels_but_not_the_face():
    img = np.arange(64 * 64 * 3, dtype=np.uint32).reshape(64, 64, 3).astype(np.uint8)
    out = shuffle_patches(img, np.random.default_rng(0), grid=4)
    assert sorted(out.ravel().tolist()) == sorted(img.ravel().tolist())
    assert not np.array_equal(out, img)


def test_shard_view_is_reproducible_by_seed_epoch_and_frame():
    shards = FakeShards()
    view = ShardView(shards, [1, 3, 5], 64, AugmentConfig(), seed=7, negative_fraction=0.5)
    a, b = view[(2, 4)], view[(2, 4)]
    np.testing.assert_array_equal(a["image"], b["image"])
    assert a["index"] == 5 and a["image"].shape == (64, 64, 3)
    assert not np.array_equal(view[(2, 5)]["image"], a["image"])  # a new epoch, a new draw
    negatives = [view[(p, e)]["negative"] for p in range(3) for e in range(40)]
    assert 0.3 < np.mean(negatives) < 0.7
    plain = ShardView(shards, [1], 64)[0]
    assert not plain["negative"] and plain["image"].shape == (64, 64, 3)
    np.testing.assert_allclose(plain["landmarks"], (shards.landmarks[1] + 0.5) * 64 / 96 - 0.5, atol=1e-4)


def test_colour_jitter_equals_the_stepwise_float_reference():
    """The one-pass OpenCV map must equal brightness, then contrast, then saturation in float."""
    from auhm.train.augment import AugmentConfig, jitter_colour

    def stepwise(image, rng, config):
        img = image.astype(np.float64) * rng.uniform(1 - config.brightness, 1 + config.brightness)
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - config.contrast, 1 + config.contrast) + mean
        grey = img.mean(axis=2, keepdims=True)
        img = (img - grey) * rng.uniform(1 - config.saturation, 1 + config.saturation) + grey
        return np.clip(img, 0, 255)

    image = np.random.default_rng(1).integers(0, 256, (64, 48, 3)).astype(np.uint8)
    for seed in range(10):
        got = jitter_colour(image, np.random.default_rng(seed), AugmentConfig())
        assert got.dtype == np.uint8 and got.shape == image.shape
        np.testing.assert_allclose(got, stepwise(image, np.random.default_rng(seed), AugmentConfig()), atol=1.0)


def _dot_shards(tmp_path, size=256, n=4):
    """Real shards (JPEG) of crops with one white square each, and its centre as landmark 0."""
    from auhm.data.shards import ShardDataset, ShardRows, list_shards

    rows = ShardRows("v.avi", "S1", "train", (1,))
    rng = np.random.default_rng(0)
    for f in range(n):
        img = np.zeros((size, size, 3), np.uint8)
        x, y = rng.integers(80, size - 80, 2)
        img[y - 3 : y + 3, x - 3 : x + 3] = 255
        lms = np.tile([[x - 0.5, y - 0.5]], (68, 1))
        rows.add(f, img, lms, np.eye(2, 3), np.array([1.0], np.float32))
    rows.write(tmp_path / "shards" / "v.parquet")
    return ShardDataset(list_shards(tmp_path))


@pytest.mark.parametrize("augmented", [False, True])
def test_shard_view_reduced_decode_keeps_pixels_and_landmarks_together(tmp_path, augmented):
    shards = _dot_shards(tmp_path)
    cfg = AugmentConfig(**NO_COLOUR) if augmented else None
    view = ShardView(shards, np.arange(len(shards)), 128, cfg)
    for k in range(len(shards)):
        item = view[(k, 3)]
        assert view._reduce == 2 and item["image"].shape == (128, 128, 3)
        p = item["landmarks"][0]
        np.testing.assert_allclose(bright_centroid(item["image"], p, 5), p, atol=0.6)
