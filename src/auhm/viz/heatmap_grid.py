"""Preview of the AU heatmap targets (paper Figs. 3 and 7): one crop per row, one AU per column.

The first column shows the crop with its landmarks (green) and the Table 1 AU centres (red);
each further column overlays one AU's target map, coloured on the fixed 0–5 intensity scale so
that maps can be compared across rows, captioned with the AU and its label ("–" = unlabelled).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from auhm.errors import UsageError
from auhm.io import atomic_path
from auhm.targets import MAX_INTENSITY, au_centres, au_heatmaps, au_name

CAPTION_H = 16


MAX_CROPS = 1000  # rows of the grid: more would make a picture no one can look at


@dataclass(frozen=True)
class HeatmapGridConfig:
    n: int = 8  # crops (rows)
    mode: str = "paper"  # paper or bmvc targets
    seed: int = 0
    tile: int = 128  # pixels per cell

    def check(self) -> None:
        """Everything that can be checked before any work, as a UsageError naming the option."""
        from auhm import checks

        if self.mode not in ("paper", "bmvc"):
            raise UsageError(f"--mode must be paper or bmvc, not {self.mode!r}")
        checks.between(self.n, 1, MAX_CROPS, "--n")
        checks.seed(self.seed)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((CAPTION_H, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (3, CAPTION_H - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def heatmap_grid(
    images: Sequence[np.ndarray],
    landmarks: np.ndarray,
    intensities: np.ndarray,
    aus: Sequence[int],
    mode: str = "paper",
    tile: int = 128,
    titles: Sequence[str] = (),
) -> np.ndarray:
    """RGB uint8 grid for crops (S×S RGB), their crop landmarks (n, 68, 2) and labels (n, N_aus)."""
    if len(images) == 0:
        raise ValueError("heatmap grid needs at least one crop")
    size = images[0].shape[0]
    lm = torch.as_tensor(np.asarray(landmarks, np.float32))
    maps = au_heatmaps(lm, torch.as_tensor(np.asarray(intensities, np.float32)), aus, size, size // 4, mode=mode).numpy()
    centres, valid = au_centres(lm, aus)
    k = tile / size
    rows = []
    for i, img in enumerate(images):
        base = cv2.resize(img, (tile, tile), interpolation=cv2.INTER_AREA)
        first = base.copy()
        for x, y in lm[i].numpy() * k:
            cv2.circle(first, (int(round(x)), int(round(y))), 1, (0, 200, 0), -1)
        for x, y in centres[i][valid].numpy() * k:
            cv2.circle(first, (int(round(x)), int(round(y))), 3, (230, 0, 0), 1, cv2.LINE_AA)
        cells = [_caption(first, titles[i] if i < len(titles) else f"#{i}")]
        grey = cv2.cvtColor(cv2.cvtColor(base, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        for j, au in enumerate(aus):
            m = cv2.resize(maps[i, j], (tile, tile), interpolation=cv2.INTER_LINEAR)
            colour = cv2.cvtColor(cv2.applyColorMap(np.clip(m / MAX_INTENSITY * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
            alpha = np.clip(m / MAX_INTENSITY, 0, 1)[..., None] ** 0.5 * 0.85  # zero maps stay plain grey
            cell = (grey * (1 - alpha) + colour * alpha).astype(np.uint8)
            a = intensities[i][j]
            cells.append(_caption(cell, f"{au_name(au)} {'-' if np.isnan(a) else f'{a:.1f}'}"))
        rows.append(np.hstack(cells))
    return np.vstack(rows)


def render_heatmap_grid(data_dir: str | os.PathLike, out: str | os.PathLike, config: HeatmapGridConfig = HeatmapGridConfig()) -> Path:
    """Write the target preview of a prepared corpus to a PNG; crops are spread over the label range."""
    from auhm.data.shards import ShardDataset, list_shards
    from auhm.io import check_writable

    config.check()
    check_writable(out)
    shards = list_shards(data_dir)
    if not shards:
        raise UsageError(f"{data_dir}: no shards/*.parquet (run auhm prepare first)")
    try:
        ds = ShardDataset(shards)
    except (OSError, ValueError) as e:  # an unreadable or foreign shard
        raise UsageError(f"{data_dir}: {e}") from None
    # One random crop from each of n bins of total labelled intensity: neutral faces to strong expressions.
    total = np.nansum(ds.labels, axis=1) if ds.labels.size else np.zeros(len(ds))
    order = np.argsort(total, kind="stable")
    rng = np.random.default_rng(config.seed)
    picks = [int(b[rng.integers(len(b))]) for b in np.array_split(order, min(config.n, len(ds)))]
    picks = sorted(set(picks), key=lambda i: total[i])
    grid = heatmap_grid(
        [ds.image(i) for i in picks],
        ds.landmarks[picks],
        ds.labels[picks],
        ds.aus,
        mode=config.mode,
        tile=config.tile,
        titles=[f"{Path(str(ds.video[i])).name}:{ds.frame[i]}" for i in picks],
    )
    out = Path(out)
    with atomic_path(out, suffix=".png") as tmp:
        if not cv2.imwrite(tmp, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{out}: could not write PNG")
    return out
