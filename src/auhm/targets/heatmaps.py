"""Heatmap targets built on the fly from landmarks: AU maps (paper Eq. 1), landmark maps, decoding.

Coordinate convention (used by every function here and by the flip): a crop pixel's centre
sits at its integer coordinate, so pixel i spans [i − 0.5, i + 0.5]. A heatmap cell covers
``s = crop_size / map_size`` crop pixels, so crop coordinate x maps to heatmap coordinate
u = (x + 0.5) / s − 0.5 and back through x = (u + 0.5) · s − 0.5. With this convention
mirroring a crop (x → W − 1 − x) mirrors its heatmaps exactly (u → map_size − 1 − u).

Everything is batched, vectorised, and runs on the device of the landmarks given.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from auhm.targets.au_table import AU_TABLE, IBUG_FLIP_PERMUTATION, check_aus


def crop_to_map(points: torch.Tensor, crop_size: int, map_size: int) -> torch.Tensor:
    """Crop pixel coordinates → heatmap coordinates (pixel-centre convention)."""
    s = crop_size / map_size
    return (points + 0.5) / s - 0.5


def map_to_crop(points: torch.Tensor, crop_size: int, map_size: int) -> torch.Tensor:
    """Heatmap coordinates → crop pixel coordinates; the inverse of crop_to_map."""
    s = crop_size / map_size
    return (points + 0.5) * s - 0.5


def _centre_layout(aus: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Averaging matrix (N, 3, 68) over the landmarks of each AU's ≤3 centres, and their mask (N, 3)."""
    aus = check_aus(aus)
    weights = torch.zeros(len(aus), 3, 68)
    valid = torch.zeros(len(aus), 3, dtype=torch.bool)
    for j, au in enumerate(aus):
        for k, idx in enumerate(AU_TABLE[au]):
            weights[j, k, idx] = 1.0 / len(idx)
            valid[j, k] = True
    return weights, valid


def au_centres(landmarks: torch.Tensor, aus: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Table 1 centres (B, N, 3, 2) in the landmarks' coordinates, and which of the 3 slots exist (N, 3)."""
    weights, valid = _centre_layout(aus)
    weights = weights.to(landmarks.device, landmarks.dtype)
    return torch.einsum("nkl,bld->bnkd", weights, landmarks), valid.to(landmarks.device)


def au_target_mask(intensities: torch.Tensor) -> torch.Tensor:
    """(B, N) True where an AU is labelled; unlabelled (NaN) AUs are left out of the loss."""
    return ~torch.isnan(intensities)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the labelled maps (or values) only; 0 when nothing is labelled.

    pred/target are (B, N, …); mask is (B, N). The mean is over every element of every labelled map.
    """
    m = mask.to(pred.dtype).reshape(mask.shape + (1,) * (pred.dim() - mask.dim()))
    err = (pred - target.to(pred.dtype)) ** 2 * m
    per_map = float(np.prod(pred.shape[mask.dim():])) if pred.dim() > mask.dim() else 1.0
    denom = m.sum() * per_map
    return err.sum() / denom.clamp_min(1.0)


def _grid(map_size: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    r = torch.arange(map_size, device=device, dtype=dtype)
    return r.view(1, -1), r.view(-1, 1)  # x along columns, y along rows


def au_heatmaps(
    landmarks: torch.Tensor,
    intensities: torch.Tensor,
    aus: Sequence[int],
    crop_size: int = 256,
    map_size: int = 64,
    mode: str = "paper",
    sigma: float = 2.0,
) -> torch.Tensor:
    """AU heatmap targets (B, N, map, map) from crop landmarks (B, 68, 2) and intensities (B, N).

    ``paper``: g = a·exp(−‖x − p‖² / a²) (Eq. 1 with its sign fixed: amplitude and width grow
    with the intensity a, distances in heatmap pixels), H = max over the AU's centres, H ≡ 0
    when a = 0. ``bmvc``: a·exp(−‖x − p‖² / 2σ²) with fixed σ (heatmap pixels), cut to a square
    window of half-width 6·a. NaN intensities give all-zero maps; mask them with au_target_mask.
    """
    if mode not in ("paper", "bmvc"):
        raise ValueError(f"unknown heatmap mode {mode!r} (paper or bmvc)")
    landmarks = torch.as_tensor(landmarks)
    if not landmarks.is_floating_point():
        landmarks = landmarks.float()
    a = torch.as_tensor(intensities, device=landmarks.device, dtype=landmarks.dtype)
    if landmarks.dim() != 3 or landmarks.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (B, 68, 2), got {tuple(landmarks.shape)}")
    if a.shape != (landmarks.shape[0], len(aus)):
        raise ValueError(f"intensities must be (B, {len(aus)}), got {tuple(a.shape)}")
    centres, valid = au_centres(crop_to_map(landmarks, crop_size, map_size), aus)  # (B,N,3,2)
    a = torch.nan_to_num(a, nan=0.0).clamp_min(0.0)[:, :, None, None, None]  # (B,N,1,1,1)
    gx, gy = _grid(map_size, landmarks.device, landmarks.dtype)
    dx = gx - centres[..., 0, None, None]  # (B,N,3,1,M)
    dy = gy - centres[..., 1, None, None]  # (B,N,3,M,1)
    d2 = dx**2 + dy**2
    if mode == "paper":
        g = a * torch.exp(-d2 / a.clamp_min(1e-6) ** 2)
    else:
        inside = (dx.abs() <= 6 * a) & (dy.abs() <= 6 * a)
        g = a * torch.exp(-d2 / (2 * sigma**2)) * inside
    g = torch.where(a > 0, g, torch.zeros((), dtype=g.dtype, device=g.device))
    g = g * valid[None, :, :, None, None]
    return g.amax(dim=2)


def attention_maps(landmarks: torch.Tensor, aus: Sequence[int], crop_size: int = 256, map_size: int = 64) -> torch.Tensor:
    """AU attention maps (paper §4.4): the AU targets with intensity 1 everywhere."""
    ones = torch.ones(landmarks.shape[0], len(aus), device=landmarks.device, dtype=landmarks.dtype)
    return au_heatmaps(landmarks, ones, aus, crop_size, map_size, mode="paper")


def landmark_heatmaps(landmarks: torch.Tensor, crop_size: int = 256, map_size: int = 64, sigma: float = 1.0) -> torch.Tensor:
    """Landmark-network targets (B, 68, map, map): unit-peak Gaussians of σ heatmap pixels."""
    p = crop_to_map(torch.as_tensor(landmarks).float() if not torch.is_tensor(landmarks) else landmarks, crop_size, map_size)
    gx, gy = _grid(map_size, p.device, p.dtype)
    d2 = (gx - p[..., 0, None, None]) ** 2 + (gy - p[..., 1, None, None]) ** 2
    return torch.exp(-d2 / (2 * sigma**2))


def _subpixel_offset(left: torch.Tensor, centre: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Peak offset in (−0.5, 0.5): log-parabola fit (exact on Gaussians), else the quarter-pixel rule."""
    eps = 1e-12
    positive = (left > eps) & (centre > eps) & (right > eps)
    ll, lc, lr = (torch.log(v.clamp_min(eps)) for v in (left, centre, right))
    curvature = ll - 2 * lc + lr
    fit = 0.5 * (ll - lr) / torch.where(curvature < -eps, curvature, torch.full_like(curvature, -1.0))
    quarter = 0.25 * torch.sign(right - left)
    use_fit = positive & (curvature < -eps)
    return torch.where(use_fit, fit, quarter).clamp(-0.5, 0.5)


def heatmaps_to_landmarks(heatmaps: torch.Tensor, crop_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (B, K, 2) in crop pixels from (B, K, h, w) maps, and each map's peak value (B, K).

    Argmax, then a sub-pixel refinement along x and y from the peak's neighbours; inverts
    landmark_heatmaps to a small fraction of a pixel.
    """
    b, k, h, w = heatmaps.shape
    flat = heatmaps.detach().float().reshape(b, k, h * w)
    peak, idx = flat.max(dim=-1)
    y, x = idx // w, idx % w
    hm = flat.reshape(b, k, h, w)

    def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
        return hm.gather(2, yy.clamp(0, h - 1)[..., None, None].expand(b, k, 1, w)).squeeze(2).gather(2, xx.clamp(0, w - 1)[..., None]).squeeze(2)

    ox = _subpixel_offset(at(y, x - 1), peak, at(y, x + 1))
    oy = _subpixel_offset(at(y - 1, x), peak, at(y + 1, x))
    ox = torch.where((x > 0) & (x < w - 1), ox, torch.zeros_like(ox))
    oy = torch.where((y > 0) & (y < h - 1), oy, torch.zeros_like(oy))
    pts = torch.stack([x.float() + ox, y.float() + oy], dim=-1)
    return map_to_crop(pts, crop_size, w), peak.to(heatmaps.dtype)


def flip_landmarks(landmarks, width: int):
    """Mirror (…, 68, 2) landmarks of an image of the given width, relabelled left ↔ right.

    Works on numpy arrays and torch tensors; x → width − 1 − x (pixel centres), then the iBUG
    flip permutation so that index 36 is still the subject's right eye corner.
    """
    perm = IBUG_FLIP_PERMUTATION
    if torch.is_tensor(landmarks):
        out = landmarks[..., perm, :].clone()
    else:
        out = np.array(landmarks, copy=True)[..., perm, :]
    out[..., 0] = (width - 1) - out[..., 0]
    return out
