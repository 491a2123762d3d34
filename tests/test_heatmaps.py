import math

import numpy as np
import pytest
import torch

from auhm.data.corpora import corpus_spec
from auhm.targets import (
    AU_TABLE,
    attention_maps,
    au_centres,
    au_heatmaps,
    au_target_mask,
    flip_landmarks,
    heatmaps_to_landmarks,
    landmark_heatmaps,
    masked_mse,
)

AUS = corpus_spec("disfa").aus


def reference_au_maps(landmarks: np.ndarray, intensities: np.ndarray, aus, crop=256, size=64) -> np.ndarray:
    """Eq. 1 (sign fixed) written as plain loops, from DESIGN.md's table and convention."""
    s = crop / size
    out = np.zeros((len(landmarks), len(aus), size, size))
    for b, lm in enumerate(landmarks):
        for j, au in enumerate(aus):
            a = intensities[b, j]
            if not a > 0:
                continue
            for idx in AU_TABLE[au]:
                cx, cy = (lm[idx].mean(axis=0) + 0.5) / s - 0.5
                for y in range(size):
                    for x in range(size):
                        g = a * math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / a**2)
                        out[b, j, y, x] = max(out[b, j, y, x], g)
    return out


def grid_landmarks(rng, n=2, size=64, crop=256) -> torch.Tensor:
    """Landmarks at map coordinates that are multiples of 6, so every Table 1 centre (mean of 1–3 points) is a map cell."""
    u = rng.integers(1, 10, size=(n, 68, 2)) * 6
    return torch.tensor((u + 0.5) * (crop / size) - 0.5, dtype=torch.float32)


def test_matches_loop_reference():
    rng = np.random.default_rng(0)
    lm = rng.uniform(40, 216, (2, 68, 2)).astype(np.float32)
    a = rng.uniform(0, 5, (2, len(AUS))).astype(np.float32)
    a[0, 3] = 0
    got = au_heatmaps(torch.from_numpy(lm), torch.from_numpy(a), AUS).numpy()
    np.testing.assert_allclose(got, reference_au_maps(lm, a, AUS), atol=1e-5)


def test_peaks_equal_intensity_at_table1_centres():
    rng = np.random.default_rng(1)
    lm = grid_landmarks(rng)
    a = torch.tensor([[0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 1.2, 2.7]] * 2)
    maps = au_heatmaps(lm, a, AUS)
    assert maps.shape == (2, 12, 64, 64)
    for b in range(2):
        for j, au in enumerate(AUS):
            for idx in AU_TABLE[au]:
                u = ((lm[b, idx].numpy() + 0.5) / 4 - 0.5).mean(axis=0)
                x, y = np.round(u).astype(int)
                assert np.allclose(u, [x, y], atol=1e-4)
                assert maps[b, j, y, x].item() == pytest.approx(a[b, j].item(), rel=1e-6)
            assert maps[b, j].max().item() == pytest.approx(a[b, j].item(), rel=1e-6)


def test_zero_intensity_zero_map_and_nan_masked():
    lm = grid_landmarks(np.random.default_rng(2), n=1)
    a = torch.tensor([[0.0, float("nan"), 3.0] + [0.0] * 9])
    maps = au_heatmaps(lm, a, AUS)
    assert torch.isfinite(maps).all()
    assert maps[0, 0].abs().max() == 0 and maps[0, 1].abs().max() == 0 and maps[0, 2].max() > 2.9
    mask = au_target_mask(a)
    assert mask.tolist() == [[True, False, True] + [True] * 9]
    pred = torch.zeros_like(maps)
    pred[0, 1] = 100.0  # an unlabelled AU: whatever the net says there costs nothing
    loss = masked_mse(pred, maps, mask)
    expected = ((maps[0, [0, 2, *range(3, 12)]]) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert masked_mse(pred, maps, torch.zeros_like(mask)).item() == 0.0


def test_width_grows_with_intensity():
    lm = grid_landmarks(np.random.default_rng(3), n=1)
    au = (25,)  # one centre: clean radius
    areas = []
    for a in (1.0, 2.0, 3.0, 4.0, 5.0):
        m = au_heatmaps(lm, torch.tensor([[a]]), au)[0, 0]
        half = (m >= a / 2).sum().item()
        areas.append(half)
        # half-maximum radius of a·exp(−d²/a²) is a·√ln2: the disc area on the grid is about π·a²·ln2
        assert half == pytest.approx(math.pi * a * a * math.log(2), rel=0.5, abs=3)
    assert areas == sorted(areas) and len(set(areas)) == 5


def test_bmvc_mode_fixed_sigma_truncated_window():
    lm = grid_landmarks(np.random.default_rng(4), n=1)
    m = au_heatmaps(lm, torch.tensor([[0.5]]), (25,), mode="bmvc", sigma=3.0)[0, 0]
    u = ((lm[0, [61, 64]] + 0.5) / 4 - 0.5).mean(0)
    x, y = int(round(u[0].item())), int(round(u[1].item()))
    assert m[y, x].item() == pytest.approx(0.5)
    assert m[y, x + 3].item() == pytest.approx(0.5 * math.exp(-9 / 18), rel=1e-5)  # inside 6·a = 3
    assert m[y, x + 4].item() == 0.0  # outside the window though the Gaussian is still 0.21
    big = au_heatmaps(lm, torch.tensor([[4.0]]), (25,), mode="bmvc", sigma=3.0)[0, 0]
    assert big[y, x + 4].item() == pytest.approx(4 * math.exp(-16 / 18), rel=1e-5)


def test_attention_maps_are_unit_intensity_targets():
    lm = grid_landmarks(np.random.default_rng(5), n=2)
    att = attention_maps(lm, AUS)
    assert torch.equal(att, au_heatmaps(lm, torch.ones(2, len(AUS)), AUS))
    assert att.amax(dim=(-2, -1)).allclose(torch.ones(2, len(AUS)))


def test_flip_mirrors_image_landmarks_and_targets():
    rng = np.random.default_rng(6)
    crop = 256
    cells = rng.choice(190 * 190, 68, replace=False)  # distinct integer pixels, so dots never collide
    lm = torch.tensor(np.stack([cells % 190, cells // 190], -1)[None] + 30, dtype=torch.float32)
    # An image with one coloured dot per landmark: flipping the image must carry each dot to the flipped landmark.
    img = np.zeros((crop, crop, 3), np.uint8)
    px = np.round(lm[0].numpy()).astype(int)
    img[px[:, 1], px[:, 0], 0] = np.arange(68) + 1
    flipped_img = img[:, ::-1]
    flm = flip_landmarks(lm, crop)
    fpx = np.round(flm[0].numpy()).astype(int)
    from auhm.targets import IBUG_FLIP_PERMUTATION

    assert (flipped_img[fpx[:, 1], fpx[:, 0], 0] == np.array(IBUG_FLIP_PERMUTATION) + 1).all()
    a = torch.tensor(rng.uniform(0.5, 5, (1, len(AUS))), dtype=torch.float32)
    lm = lm + torch.tensor(rng.uniform(-0.5, 0.5, lm.shape), dtype=torch.float32)  # sub-pixel for the targets
    flm = flip_landmarks(lm, crop)
    maps = au_heatmaps(lm, a, AUS)
    # Table 1's AU 25/26 centre (landmarks 61, 64) is not mirror-symmetric (61 ↔ 63, 64 ↔ 60 under
    # the flip), so only the other ten DISFA AUs can mirror exactly.
    sym = [j for j, au in enumerate(AUS) if au not in (25, 26)]
    torch.testing.assert_close(au_heatmaps(flm, a, AUS)[:, sym], maps.flip(-1)[:, sym], atol=1e-5, rtol=1e-5)
    # left and right centres trade places (mirrored), the midline centre stays
    c, _ = au_centres(lm, (6, 9))
    fc, _ = au_centres(flm, (6, 9))
    mirror = lambda p: torch.stack([crop - 1 - p[..., 0], p[..., 1]], -1)  # noqa: E731
    torch.testing.assert_close(fc[:, :, 0], mirror(c[:, :, 1]))
    torch.testing.assert_close(fc[:, :, 1], mirror(c[:, :, 0]))
    torch.testing.assert_close(fc[:, 1, 2], mirror(c[:, 1, 2]))
    assert isinstance(flip_landmarks(lm.numpy(), crop), np.ndarray)
    np.testing.assert_allclose(flip_landmarks(flip_landmarks(lm.numpy(), crop), crop), lm.numpy(), atol=1e-4)


@pytest.mark.parametrize("crop,size", [(256, 64), (128, 32)])
def test_heatmaps_to_landmarks_inverts_landmark_heatmaps(crop, size):
    lm = torch.tensor(np.random.default_rng(7).uniform(8, crop - 8, (3, 68, 2)), dtype=torch.float32)
    maps = landmark_heatmaps(lm, crop, size, sigma=1.0)
    assert maps.shape == (3, 68, size, size)
    pts, conf = heatmaps_to_landmarks(maps, crop)
    assert (pts - lm).norm(dim=-1).max().item() < 0.5
    assert conf.shape == (3, 68) and conf.min().item() > 0.6 and conf.max().item() <= 1.0
    # plain argmax alone is off by up to half a cell (2 px): the refinement is what makes it sub-pixel
    idx = maps.flatten(2).argmax(-1)
    coarse = torch.stack([idx % size, idx // size], -1).float()
    assert ((coarse + 0.5) * crop / size - 0.5 - lm).norm(dim=-1).max().item() > 1.0


def test_intensities_are_the_maps_maxima_clipped():
    from auhm.models.base import read_intensities

    maps = torch.zeros(1, 3, 8, 8)
    maps[0, 0, 2, 3] = 2.5
    maps[0, 1] = -1.0
    maps[0, 2, 1, 1] = 7.0
    assert read_intensities(torch.nn.Identity(), {"heatmaps": maps}).tolist() == [[2.5, 0.0, 5.0]]


def test_bad_shapes_fail_clearly():
    with pytest.raises(ValueError, match="intensities"):
        au_heatmaps(torch.zeros(2, 68, 2), torch.zeros(2, 3), AUS)
    with pytest.raises(ValueError, match="Table 1"):
        au_heatmaps(torch.zeros(1, 68, 2), torch.zeros(1, 1), (3,))


# ── `auhm heatmaps`: the target preview grid ───────────────────────────────────────────────
def template_face(size: int = 256) -> np.ndarray:
    """A symmetric 68-point iBUG face (0 = the subject's right jaw end, image left)."""
    t = np.linspace(-0.1, np.pi + 0.1, 17)
    jaw = np.stack([-0.9 * np.cos(t), np.sin(t)], -1)
    brow_r = np.stack([np.linspace(-0.75, -0.15, 5), -0.45 - 0.08 * np.sin(np.linspace(0, np.pi, 5))], -1)
    brow_l = brow_r[::-1] * [-1, 1]
    bridge = np.stack([np.zeros(4), np.linspace(-0.3, 0.05, 4)], -1)
    nostrils = np.stack([np.linspace(-0.2, 0.2, 5), np.full(5, 0.15)], -1)

    def eye(cx):
        a = np.array([np.pi, 2 * np.pi / 3, np.pi / 3, 0, -np.pi / 3, -2 * np.pi / 3])
        return np.stack([cx + 0.15 * np.cos(a), -0.25 - 0.06 * np.sin(a)], -1)

    def lip(a_, b_, n_upper):
        up = np.pi - np.arange(n_upper + 2) * np.pi / (n_upper + 1)  # left corner … right corner
        low = -np.arange(1, n_upper + 1) * np.pi / (n_upper + 1)  # right → left along the bottom
        ang = np.concatenate([up, low])
        return np.stack([a_ * np.cos(ang), 0.5 - b_ * np.sin(ang)], -1)

    pts = np.concatenate([jaw, brow_r, brow_l, bridge, nostrils, eye(-0.4), eye(0.4), lip(0.35, 0.12, 5), lip(0.25, 0.05, 3)])
    assert pts.shape == (68, 2)
    return (pts * [0.3, 0.33] * size + [(size - 1) / 2, size * 0.47]).astype(np.float32)


def draw_face(lm: np.ndarray, size: int, tone: int) -> np.ndarray:
    import cv2

    img = np.full((size, size, 3), 30, np.uint8)
    centre = lm[:17].mean(0)
    cv2.ellipse(img, (int(centre[0]), int(lm[:, 1].mean())), (int(size * 0.3), int(size * 0.4)), 0, 0, 360, (tone, int(tone * 0.8), int(tone * 0.65)), -1)
    for group, closed in ((range(0, 17), False), (range(17, 22), False), (range(22, 27), False), (range(27, 31), False), (range(31, 36), False),
                          (range(36, 42), True), (range(42, 48), True), (range(48, 60), True), (range(60, 68), True)):
        cv2.polylines(img, [np.round(lm[list(group)]).astype(np.int32)], closed, (60, 20, 20), 2, cv2.LINE_AA)
    return img


def test_template_face_is_flip_consistent():
    lm = template_face()
    np.testing.assert_allclose(flip_landmarks(lm, 256), lm, atol=1e-4)


def write_corpus(root, aus, frames=6, size=128):
    from auhm.data.shards import ShardRows

    rng = np.random.default_rng(0)
    for v in range(2):
        rows = ShardRows(video=f"clips/v{v}.avi", subject=f"S{v}", split="train", aus=aus)
        for f in range(frames):
            lm = template_face(size) + rng.normal(0, 1.0, (68, 2)).astype(np.float32)
            labels = rng.integers(0, 6, len(aus)).astype(np.float32)
            labels[aus.index(12)] = 5.0
            labels[aus.index(25)] = np.nan
            rows.add(f, draw_face(lm, size, 150 + 30 * v), lm, np.eye(2, 3), labels)
        rows.write(root / "shards" / f"v{v}.parquet")
    return root


def test_heatmaps_command_writes_grid(tmp_path):
    import cv2
    from typer.testing import CliRunner

    from auhm.cli import app

    aus = (1, 2, 4, 6, 12, 25)
    write_corpus(tmp_path / "corpus", aus)
    out = tmp_path / "grid.png"
    res = CliRunner().invoke(app, ["heatmaps", str(tmp_path / "corpus"), "--out", str(out), "--n", "4"])
    assert res.exit_code == 0, res.output
    grid = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    tile, cap = 128, 16
    assert grid.shape == (4 * (tile + cap), (1 + len(aus)) * tile, 3)
    sat = lambda cell: (cell.max(-1).astype(int) - cell.min(-1)).mean()  # noqa: E731
    row0 = grid[cap : cap + tile]
    labelled = row0[:, 5 * tile : 6 * tile]  # AU12 at 5.0: a strong coloured blob on each mouth corner
    unlabelled = row0[:, 6 * tile : 7 * tile]  # AU25 NaN: a zero map, near grey
    assert sat(labelled) > 2 * sat(unlabelled)
    # the blob sits on the mouth corners (landmarks 48, 54), i.e. in the lower third of the crop
    red = (labelled[..., 0].astype(int) - labelled[..., 2]) > 100
    ys, xs = np.nonzero(red)
    assert len(ys) > 50 and 0.55 * tile < ys.mean() < 0.85 * tile
    bad = CliRunner().invoke(app, ["heatmaps", str(tmp_path / "empty"), "--out", str(out)])
    assert bad.exit_code == 2 and "no shards" in bad.output
