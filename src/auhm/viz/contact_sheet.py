"""A grid of frames with their captions and landmarks: the quickest way to eyeball a corpus."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np


def contact_sheet(
    images: Sequence[np.ndarray],
    captions: Sequence[str] = (),
    points: Sequence[np.ndarray | None] = (),
    columns: int = 4,
    tile_width: int = 320,
) -> np.ndarray:
    """RGB uint8 grid: each image scaled to ``tile_width``, its points dotted, its caption below.

    Captions may hold several lines separated by ``\\n``.
    """
    if not images:
        raise ValueError("contact sheet needs at least one image")
    captions = list(captions) + [""] * (len(images) - len(captions))
    points = list(points) + [None] * (len(images) - len(points))
    h0, w0 = images[0].shape[:2]
    k = tile_width / w0
    th = int(round(h0 * k))
    lines = max(c.count("\n") + 1 for c in captions) if any(captions) else 0
    cap_h = 4 + 14 * lines
    rows = -(-len(images) // columns)
    sheet = np.full((rows * (th + cap_h), columns * tile_width, 3), 255, np.uint8)
    for i, (img, cap, pts) in enumerate(zip(images, captions, points)):
        tile = cv2.resize(img, (tile_width, th), interpolation=cv2.INTER_AREA)
        if pts is not None:
            for x, y in np.asarray(pts, np.float64) * k:
                if np.isfinite(x) and np.isfinite(y):
                    cv2.circle(tile, (int(round(x)), int(round(y))), 1, (0, 255, 0), -1)
        r, c = divmod(i, columns)
        y0, x0 = r * (th + cap_h), c * tile_width
        sheet[y0:y0 + th, x0:x0 + tile_width] = tile
        for j, line in enumerate(cap.split("\n") if cap else []):
            cv2.putText(sheet, line, (x0 + 3, y0 + th + 13 + 14 * j), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return sheet


def write_contact_sheet(path: str | os.PathLike, images: Sequence[np.ndarray], captions: Sequence[str] = (),
                        points: Sequence[np.ndarray | None] = (), columns: int = 4, tile_width: int = 320) -> Path:
    """Write :func:`contact_sheet` as a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet = contact_sheet(images, captions, points, columns, tile_width)
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: cannot write PNG")
    return path
