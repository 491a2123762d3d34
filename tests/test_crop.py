import numpy as np

from auhm.face.crop import CropConfig, crop_affine, crop_face, crop_square, invert_affine, warp_points


def _face_points(cx=100.0, cy=80.0, w=60.0, h=70.0):
    rng = np.random.default_rng(0)
    pts = rng.uniform([-0.5, -0.5], [0.5, 0.5], size=(68, 2)) * [w, h] + [cx, cy]
    pts[0] = [cx - w / 2, cy]
    pts[1] = [cx + w / 2, cy]
    pts[2] = [cx, cy - h / 2]
    pts[3] = [cx, cy + h / 2]
    return pts


def test_square_covers_landmarks_with_margin():
    cfg = CropConfig(size=128, scale=1.3, shift_y=0.0)
    pts = _face_points()
    cx, cy, side = crop_square(pts, cfg)
    assert np.isclose(side, 70 * 1.3) and np.isclose(cx, 100) and np.isclose(cy, 80)
    m = crop_affine(np.array([cx, cy, side]), cfg.size)
    inside = warp_points(pts, m)
    assert inside.min() > 0 and inside.max() < cfg.size


def test_affine_round_trip_and_pixels_land_where_points_do():
    cfg = CropConfig(size=64)
    frame = np.zeros((200, 240, 3), np.uint8)
    frame[78:83, 118:123] = 255  # a bright dot at (120, 80)
    pts = _face_points(cx=120, cy=85)
    crop, m = crop_face(frame, pts, cfg)
    assert crop.shape == (64, 64, 3)
    p = warp_points(np.array([[120.0, 80.0]]), m)[0]
    y, x = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    assert abs(x - p[0]) <= 1.5 and abs(y - p[1]) <= 1.5
    back = warp_points(warp_points(pts, m), invert_affine(m))
    np.testing.assert_allclose(back, pts, atol=1e-6)


def test_batched_square():
    """(…, 68, 2) landmarks: a square per face, centred on its box raised by shift_y × the box
    height, its side the larger box side × scale (8 px at least), whatever the leading dimensions."""
    faces = np.stack([_face_points(), _face_points(cx=50), _face_points(w=90, h=50), np.full((68, 2), 7.0)])
    want = np.array([[100, 80 - 0.08 * 70, 1.3 * 70], [50, 80 - 0.08 * 70, 1.3 * 70], [100, 80 - 0.08 * 50, 1.3 * 90], [7, 7, 8]])
    np.testing.assert_allclose(crop_square(faces, CropConfig()), want)
    np.testing.assert_allclose(crop_square(faces.reshape(2, 2, 68, 2), CropConfig()), want.reshape(2, 2, 3))
