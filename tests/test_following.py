"""A followed face's motion: where its crops are cut, and where it is looked for after a gap."""

from __future__ import annotations

import numpy as np

from auhm.face.crop import CropConfig, crop_square
from auhm.face.following import Track

from helpers import inscribed_ring

FACE = np.array([100.0, 50.0, 160.0, 110.0])  # a 60-px face


def test_a_still_face_whose_fits_jitter_is_cut_where_it_is_a_batch_ahead():
    """Fits of a still face that jitter by 2 px either way: its crops a whole batch (32 frames)
    ahead are cut less than a tenth of their side from it, so none is cut again for drifting."""
    track = Track(1, inscribed_ring(FACE), 1.0, 0, live=False)
    for frame in range(1, 17):
        shift = np.array([2.0 if frame % 2 else -2.0, 0.0])
        track.seen(frame, inscribed_ring(FACE + np.concatenate([shift, shift])), 1.0)
    side = crop_square(track.landmarks, CropConfig())[2]
    for ahead in (1, 8, 31):
        moved = np.abs(track.predicted_points(16 + ahead) - track.landmarks).max()
        assert moved < 0.1 * side, (ahead, moved, side)


def test_a_walking_face_is_cut_along_its_motion_and_looked_for_along_it_after_a_gap():
    """A face walking 3 px a frame: its crops follow its motion up to 8 frames ahead; after a gap,
    it is looked for along its motion up to 30 frames on."""
    track = Track(1, inscribed_ring(FACE), 1.0, 0, live=False)
    for frame in range(1, 11):
        track.seen(frame, inscribed_ring(FACE + np.array([3.0, 0.0, 3.0, 0.0]) * frame), 1.0)
    np.testing.assert_allclose(track.velocity, [3.0, 0.0])
    for ahead, cut, looked in ((4, 12, 12), (8, 24, 24), (20, 24, 60), (40, 24, 90)):
        np.testing.assert_allclose(track.predicted_points(10 + ahead) - track.landmarks, np.tile([cut, 0.0], (68, 1)))
        np.testing.assert_allclose(track.predicted_box(10 + ahead) - track.box(), [looked, 0.0, looked, 0.0])
