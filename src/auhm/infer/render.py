"""Overlay video: the predicted AU heatmaps drawn back onto the face, intensities beside it.

Made from the annotate pipeline's pieces (Predictor, the face source, track_and_crop), one
batch at a time: it is for looking at a clip, not for throughput. The video is tracked first and
drawn after, so each face is drawn with the id annotate's table gives it (the tracks of one person
joined at the video's end).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from auhm.console import progress
from auhm.errors import UsageError
from auhm.face.crop import invert_affine
from auhm.infer.annotate import AnnotateConfig
from auhm.face.crop import crop_face
from auhm.infer.chunks import faces_of
from auhm.infer.predictor import Predictor
from auhm.infer.sources import face_source
from auhm.io import check_writable
from auhm.targets import MAX_INTENSITY, au_name
from auhm.video import VideoError, VideoReader, VideoWriter
from auhm.video.inputs import VIDEO_SUFFIXES

PANEL_WIDTH = 220


@dataclass
class RenderConfig:
    model: Path
    out: Path = Path("overlay.mp4")
    landmarks: str = "auto"
    landmark_model: Path | None = None
    device: str = "auto"
    precision: str = "auto"
    max_frames: int | None = None
    batch_size: int = 16
    opacity: float = 0.65  # blend weight of a map at intensity 5
    quiet: bool = False


@dataclass
class RenderResult:
    out: Path
    frames: int
    faces: int  # frames with a face drawn
    landmark_backend: str


def au_colours(n: int) -> np.ndarray:
    """(n, 3) RGB uint8: evenly spaced hues, bright and saturated, one per AU."""
    hsv = np.stack([np.arange(n) * 180 // max(n, 1), np.full(n, 230), np.full(n, 255)], -1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]


def draw_heatmaps(frame: np.ndarray, heatmaps: np.ndarray, affine: np.ndarray, crop_size: int, colours: np.ndarray, opacity: float) -> np.ndarray:
    """Blend (N, h, w) AU maps, cut with the frame → crop ``affine``, back onto the frame."""
    h, w = frame.shape[:2]
    weights = np.clip(heatmaps / MAX_INTENSITY, 0, 1).astype(np.float32)  # (N, mh, mw)
    alpha = weights.max(0)
    dominance = weights**4  # where maps overlap, the strongest AU's colour wins instead of a grey mix
    hue = np.tensordot(dominance, colours.astype(np.float32), axes=(0, 0)) / np.maximum(dominance.sum(0), 1e-12)[..., None]
    # Premultiplied by alpha, so that interpolation does not darken the edges of a map.
    layer = np.dstack([hue * alpha[..., None], alpha]).astype(np.float32)
    layer = cv2.resize(layer, (crop_size, crop_size), interpolation=cv2.INTER_LINEAR)
    back = cv2.warpAffine(layer, invert_affine(affine), (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = back[..., 3:] * opacity
    return (frame.astype(np.float32) * (1 - a) + back[..., :3] * opacity).clip(0, 255).astype(np.uint8)


def draw_panel(height: int, aus, intensities: np.ndarray | None, colours: np.ndarray, width: int = PANEL_WIDTH) -> np.ndarray:
    """Bars of the intensities, with AU names; ``None`` (no face) draws empty bars and says so."""
    panel = np.full((height, width, 3), 24, np.uint8)
    row = max(12, min(28, (height - 30) // max(len(aus), 1)))
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = row / 40
    for j, au in enumerate(aus):
        y = 10 + j * row
        cv2.putText(panel, au_name(au), (6, y + int(row * 0.7)), font, scale, (220, 220, 220), 1, cv2.LINE_AA)
        x0, x1 = 60, width - 40
        cv2.rectangle(panel, (x0, y + 2), (x1, y + row - 3), (60, 60, 60), -1)
        if intensities is not None and np.isfinite(intensities[j]):
            v = float(np.clip(intensities[j], 0, MAX_INTENSITY))
            cv2.rectangle(panel, (x0, y + 2), (x0 + int((x1 - x0) * v / MAX_INTENSITY), y + row - 3), tuple(int(c) for c in colours[j]), -1)
            cv2.putText(panel, f"{v:.1f}", (x1 + 4, y + int(row * 0.7)), font, scale, (220, 220, 220), 1, cv2.LINE_AA)
    if intensities is None:
        cv2.putText(panel, "no face", (6, height - 10), font, 0.5, (230, 120, 120), 1, cv2.LINE_AA)
    return panel


def draw_face_id(canvas: np.ndarray, box: np.ndarray, face: int) -> None:
    """The face's box and its track id, drawn in place."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    cv2.rectangle(canvas, (x0, y0), (x1, y1), (255, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(canvas, f"face {face}", (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def render(video: str | Path, config: RenderConfig) -> RenderResult:
    """Write ``config.out``: each frame with its AU maps on the face and the intensity bars beside it."""
    if not Path(config.model).is_file():
        raise UsageError(f"--model {config.model}: no such checkpoint")
    if config.max_frames is not None and config.max_frames < 1:
        raise UsageError(f"--max-frames must be at least 1, not {config.max_frames}")
    check_writable(config.out)
    if Path(config.out).suffix.lower() not in VIDEO_SUFFIXES:
        raise UsageError(f"--out {config.out}: name a video file (.mp4, .avi …)")
    try:
        reader = VideoReader(video)
        predictor = Predictor.from_checkpoint(config.model, config.device, config.precision)
    except (VideoError, ValueError) as e:
        raise UsageError(str(e)) from None
    if predictor.method == "resnet18" or getattr(predictor.model, "output_kind", "heatmap") != "heatmap":
        raise UsageError(f"{config.model}: a regression model has no heatmaps to draw")
    source = face_source(AnnotateConfig(model=config.model, landmarks=config.landmarks, landmark_model=config.landmark_model), predictor).preload()
    tracker = source.tracker()
    tracker.start(str(video))
    colours = au_colours(len(predictor.aus))
    info = reader.info
    height, width = info.height + info.height % 2, info.width + info.width % 2  # yuv420p: even sides
    frames = faces = 0
    limit = config.max_frames or info.frames_claimed or None
    with VideoWriter(config.out, info.fps or 25.0, width + PANEL_WIDTH, height) as writer, progress(config.quiet) as bar:
        tracked = _tracked(reader, tracker, config, bar, limit)
        people = tracker.people() if hasattr(tracker, "people") else None
        task = bar.add_task("render", total=limit, unit="frames")
        for batch, found in zip(reader.batches(config.batch_size), tracked):
            cut = [crop_face(batch.frames[r], found.landmarks[k], predictor.crop) for k, r in enumerate(found.rows)]
            pred = predictor(np.stack([c[0] for c in cut]), keep_heatmaps=True) if cut else None
            for r in range(len(batch)):
                if config.max_frames is not None and frames >= config.max_frames:
                    break
                canvas = np.zeros((height, width, 3), np.uint8)
                canvas[: info.height, : info.width] = batch.frames[r]
                values = None
                for k in np.flatnonzero(found.rows == r):  # every face, with its id
                    canvas = draw_heatmaps(canvas, pred.heatmaps[k], cut[k][1], predictor.crop.size, colours, config.opacity)
                    face = int(found.ids[k])
                    draw_face_id(canvas, found.boxes[k], face if people is None else people.of(face, int(batch.indices[r])))
                    values = pred.intensities[k] if values is None else values  # the bars: the face of the lowest id
                    faces += 1
                writer.write(np.concatenate([canvas, draw_panel(height, predictor.aus, values, colours)], axis=1))
                frames += 1
                bar.advance(task, 1)
    return RenderResult(Path(config.out), frames, faces, source.name)


def _tracked(reader: VideoReader, tracker, config: RenderConfig, bar, limit: int | None) -> list:
    """Each batch's faces, up to ``max_frames``: the whole clip tracked before a frame is drawn."""
    task = bar.add_task("track", total=limit, unit="frames")
    tracked, frames = [], 0
    for batch in reader.batches(config.batch_size):
        if config.max_frames is not None and frames >= config.max_frames:
            break
        tracked.append(faces_of(tracker, batch))
        frames += len(batch)
        bar.advance(task, len(batch))
    return tracked
