"""``auhm synth --layout crowd``: videos of 2–4 people who move, cross and come and go, with truth.

Per video (``videos/crowdNNN.mp4``) one person stays in frame throughout (drifting), one walks
in from off-frame, across the others and out again (so a crossing, an occlusion, an entry and an
exit happen in every video), and a third and fourth, when drawn, stand aside and walk in late or
out early. Nearer people (larger) are drawn last, so they hide those behind them.

Truth, ``auhm_truth/<stem>.parquet``, one row per (frame, visible person): ``frame`` (int32,
0-based), ``face`` (int16, the person's id within the video, 0…), ``x0, y0, x1, y1`` (float32,
the true landmarks' box clipped to the frame), ``visible`` (float32, 0–1: the share of the face
— the landmarks' hull — inside the frame and not hidden by a nearer person), ``x_0…x_67``,
``y_0…y_67`` (float32, frame pixels, may lie outside it), and the continuous intensity drawn for
every rendered AU. ``labels.parquet``: ``video`` (path relative to the root), ``frame`` (int64),
``face`` (int16), one column per rendered AU (float32, the intensity rounded half up, 0–5), on
the truth's rows. Video ``i`` draws from ``SeedSequence([seed, CROWD_STREAM, i])``, apart from
the other layouts' people.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from auhm import __version__
from auhm.console import progress
from auhm.face.truth_backend import TRUTH_DIR
from auhm.io import write_json_atomic, write_parquet_atomic
from auhm.synth.corpus import SynthConfig, SynthResult
from auhm.synth.drawing import DIFFICULTIES, SHIFT, Difficulty, Motion, Renderer, noise_bank
from auhm.synth.episodes import au_trajectories, integer_labels, smooth_signal
from auhm.synth.face_model import RENDERED_AUS, FaceModel, Identity
from auhm.targets import au_name
from auhm.video import VideoWriter

CROWD_STREAM = 0x4352  # "CR": sets the crowd's people apart from the other layouts'
VIDEOS_DIR = "videos"
LABELS_FILE = "labels.parquet"
FACE_SCALE = (0.17, 0.24)  # face half-width as a share of the frame height: boxes ≥ ~90 px wide at 360 p
OFF = 0.2  # a person off-frame stands this share of the width beyond the edge
_ONE = 1 << SHIFT


def video_stem(index: int) -> str:
    return f"crowd{index:03d}"


@dataclass
class Person:
    """One person of a crowd video: the id, its renderer and its AU intensities (F, len(RENDERED_AUS))."""

    face: int
    renderer: Renderer
    intensities: np.ndarray


def _walk(frames: int, start: float, stop: float, t0: float, t1: float) -> np.ndarray:
    """x (share of the width) from ``start`` at frame t0 to ``stop`` at frame t1, held before and after."""
    u = np.clip((np.arange(frames) - t0) / max(t1 - t0, 1.0), 0, 1)
    return start + (stop - start) * u


def crowd_paths(rng: np.random.Generator, n: int, frames: int) -> list[tuple[np.ndarray, float]]:
    """Each person's centre x over time (share of the width) and height (share of the height)."""
    side = rng.choice([-1.0, 1.0])  # where the walker comes from
    anchor_x = 0.5 + rng.uniform(-0.08, 0.08)
    height = 0.42 + rng.uniform(-0.04, 0.04)
    paths = [(np.full(frames, anchor_x), height)]
    t_in, t_out = rng.uniform(0.02, 0.15) * frames, rng.uniform(0.75, 0.92) * frames
    enter, leave = 0.5 - side * (0.5 + OFF), 0.5 + side * (0.5 + OFF)
    paths.append((_walk(frames, enter, leave, t_in, t_out), height + rng.uniform(-0.03, 0.03)))
    for k in range(2, n):  # stand aside, on opposite sides; one walks in late, the other out early
        spot = 0.5 + (1 if k == 2 else -1) * side * rng.uniform(0.3, 0.34)
        edge = 0.5 + np.sign(spot - 0.5) * (0.5 + OFF)
        t_move = rng.uniform(0.25, 0.55) * frames
        length = rng.uniform(0.12, 0.2) * frames
        x = _walk(frames, edge, spot, t_move, t_move + length) if k == 2 else _walk(frames, spot, edge, t_move, t_move + length)
        paths.append((x, height + rng.uniform(-0.06, 0.02)))
    return paths


def person_motion(rng: np.random.Generator, x: np.ndarray, y: float, scale: float, frames: int, fps: float,
                  width: int, height: int, d: Difficulty) -> Motion:
    """Pose and drift around a path; a static camera (no pan) and light shared by the scene."""
    sig = lambda lo=2.0, hi=12.0: smooth_signal(rng, frames, fps, (lo, hi))  # noqa: E731
    yaw = 0.7 * d.yaw * sig()
    pitch = 0.6 * d.pitch * sig()
    roll = 0.6 * d.roll * sig()
    scales = height * scale * (1 + 0.01 * sig(4, 15))
    cx = width * (x + 0.02 * sig(3, 10))
    cy = height * (y + 0.02 * sig(3, 10))
    zero = np.zeros(frames)
    light_angle = rng.uniform(0, 2 * np.pi) + 0.5 * sig(5, 20)
    light_gain = rng.uniform(0.9, 1.05) + 0.05 * sig(3, 10)
    blur = np.clip(0.5 * d.blur * (0.5 * sig(1, 6)), 0, d.blur)
    return Motion(yaw, pitch, roll, scales, cx, cy, light_angle, light_gain, blur, zero, zero.copy())


def simulate_crowd(config: SynthConfig, index: int) -> list[Person]:
    """The people of crowd video ``index`` (nothing drawn yet): 2–4, distinct identities."""
    root = np.random.SeedSequence([config.seed, CROWD_STREAM, index])
    s_plan, s_scene = (np.random.default_rng(s) for s in root.spawn(2))
    d = DIFFICULTIES[config.difficulty]
    n = int(s_plan.integers(2, 5))
    paths = crowd_paths(s_plan, n, config.frames)
    # one size band each, apart by a margin the wobble never crosses: of two people, the nearer stays the nearer
    lo, hi = FACE_SCALE
    scales = lo + (hi - lo) * (s_plan.permutation(n) + s_plan.uniform(0.25, 0.75, n)) / n
    noise = noise_bank(s_scene, 4, config.width, config.height, d.noise)
    people = []
    for k, ((x, y), scale) in enumerate(zip(paths, scales)):
        streams = np.random.SeedSequence([config.seed, CROWD_STREAM, index, k]).spawn(4)
        s_id, s_au, s_motion, s_render = (np.random.default_rng(s) for s in streams)
        intensities = au_trajectories(s_au, config.frames, config.fps)
        motion = person_motion(s_motion, x, y, scale, config.frames, config.fps, config.width, config.height, d)
        renderer = Renderer(FaceModel(Identity.sample(s_id)), intensities, motion, [], config.width, config.height, d,
                            s_render if k else s_scene, noise)
        people.append(Person(k, renderer, intensities))
    return people


def _fill(shape: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    for polygon in polygons:  # one call would XOR the overlaps
        cv2.fillPoly(mask, [np.asarray(polygon, np.int32)], 1, 8, SHIFT)
    return mask


def visibility(people: list[Person], t: int, order: list[int], shape: tuple[int, int]) -> np.ndarray:
    """(people,) share of each face (its landmarks' hull) inside the frame and not behind a nearer person."""
    out = np.zeros(len(people))
    cover = np.zeros(shape, np.uint8)
    for k in reversed(order):  # nearest first: each face is hidden by those drawn after it
        lm = people[k].renderer.landmarks[t]
        hull = cv2.convexHull(lm.astype(np.float32))
        area = cv2.contourArea(hull)
        if area > 1:
            face = _fill(shape, [np.round(hull.reshape(-1, 2) * _ONE)])
            out[k] = min(1.0, float((face & (1 - cover)).sum()) / area)
        cover |= _fill(shape, people[k].renderer.silhouette(t))
    return out


def depth_order(people: list[Person], t: int) -> list[int]:
    """People from farthest to nearest (smallest face first): the order they are drawn in."""
    return sorted(range(len(people)), key=lambda k: people[k].renderer.motion.scale[t])


def render_crowd_frame(people: list[Person], t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t (RGB) and each person's visible share."""
    scene = people[0].renderer
    order = depth_order(people, t)
    seen = visibility(people, t, order, (scene.h, scene.w))
    img = scene.backdrop(t)
    for k in order:
        lm = people[k].renderer.landmarks[t]
        if lm[:, 0].max() > -2 * scene.w * OFF and lm[:, 0].min() < scene.w * (1 + 2 * OFF):  # near enough to show a body
            people[k].renderer.draw(img, t)
    return scene.camera(img, t), seen


def truth_rows(people: list[Person], t: int, seen: np.ndarray, width: int, height: int) -> list[dict]:
    rows = []
    for person, v in zip(people, seen):
        if v <= 0:
            continue
        lm = person.renderer.landmarks[t]
        lo = np.clip(lm.min(0), 0, [width, height])
        hi = np.clip(lm.max(0), 0, [width, height])
        row = {"frame": t, "face": person.face, "x0": lo[0], "y0": lo[1], "x1": hi[0], "y1": hi[1], "visible": v}
        row |= {f"x_{i}": lm[i, 0] for i in range(68)} | {f"y_{i}": lm[i, 1] for i in range(68)}
        row |= {au_name(a): person.intensities[t, j] for j, a in enumerate(RENDERED_AUS)}
        rows.append(row)
    return rows


def truth_frame(rows: list[dict]) -> pd.DataFrame:
    columns = ["frame", "face", "x0", "y0", "x1", "y1", "visible", *(f"x_{i}" for i in range(68)),
               *(f"y_{i}" for i in range(68)), *(au_name(a) for a in RENDERED_AUS)]
    df = pd.DataFrame(rows, columns=columns)
    df["frame"] = df["frame"].astype(np.int32)
    df["face"] = df["face"].astype(np.int16)
    for c in columns[2:]:
        df[c] = df[c].astype(np.float32)
    return df


def label_frame(truth: pd.DataFrame, video: str) -> pd.DataFrame:
    """The coder's view of one video's truth: integer intensities per (frame, face)."""
    aus = [au_name(a) for a in RENDERED_AUS]
    labels = pd.DataFrame({"video": video, "frame": truth["frame"].astype(np.int64), "face": truth["face"].astype(np.int16)})
    codes = integer_labels(truth[aus].to_numpy()).astype(np.float32)
    return pd.concat([labels, pd.DataFrame(codes, columns=aus, index=truth.index)], axis=1)


def make_crowd_corpus(config: SynthConfig, quiet: bool = False) -> SynthResult:
    """Render and write ``config.subjects`` crowd videos with their truth and labels."""
    t0 = time.perf_counter()
    root = Path(config.out)
    result = SynthResult(root)
    quality = DIFFICULTIES[config.difficulty].quality
    label_parts, entries, sheet = [], [], []
    with progress(quiet) as bar:
        task = bar.add_task("synth", total=config.subjects * config.frames, unit="frames")
        for index in range(config.first_subject, config.first_subject + config.subjects):
            people = simulate_crowd(config, index)
            stem = video_stem(index)
            video = f"{VIDEOS_DIR}/{stem}.mp4"
            rows = []
            with VideoWriter(root / video, config.fps, config.width, config.height, quality=quality) as sink:
                for t in range(config.frames):
                    rgb, seen = render_crowd_frame(people, t)
                    sink.write(rgb)
                    rows += truth_rows(people, t, seen, config.width, config.height)
                    if t == config.frames // 2 and len(sheet) < 16:
                        sheet.append((rgb, f"{stem} f{t}: {int((seen > 0).sum())} of {len(people)} faces"))
                    bar.advance(task)
            truth = truth_frame(rows)
            write_parquet_atomic(truth, root / TRUTH_DIR / f"{stem}.parquet")
            label_parts.append(label_frame(truth, video))
            entries.append({"video": video, "truth": f"{TRUTH_DIR}/{stem}.parquet", "people": len(people),
                            "frames": config.frames, "face_frames": len(truth)})
            result.videos.append(video)
            result.frames += config.frames
    write_parquet_atomic(_merged_labels(root, pd.concat(label_parts, ignore_index=True)), root / LABELS_FILE)
    _write_manifest(root, config, entries)
    if config.contact_sheet and sheet:
        from auhm.viz.contact_sheet import write_contact_sheet

        images, captions = zip(*sheet)
        write_contact_sheet(root / TRUTH_DIR / "contact_sheet.png", list(images), list(captions), [None] * len(images),
                            columns=min(4, len(images)), tile_width=min(config.width, 320))
    result.seconds = time.perf_counter() - t0
    return result


def _merged_labels(root: Path, new: pd.DataFrame) -> pd.DataFrame:
    """This run's labels, plus those of other videos written into the same folder before."""
    path = root / LABELS_FILE
    if path.exists():
        old = pd.read_parquet(path)
        new = pd.concat([old[~old["video"].isin(new["video"])], new], ignore_index=True)
    return new.sort_values(["video", "frame", "face"], ignore_index=True)


def _write_manifest(root: Path, config: SynthConfig, entries: list[dict]) -> None:
    path = root / TRUTH_DIR / "manifest.json"
    videos: dict[str, dict] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
            if old.get("layout") == "crowd":
                videos = {v["video"]: v for v in old.get("videos", [])}
        except (ValueError, KeyError, TypeError):
            videos = {}
    videos.update({e["video"]: e for e in entries})
    write_json_atomic({
        "layout": "crowd",
        "seed": config.seed,
        "difficulty": config.difficulty,
        "size": [config.width, config.height],
        "fps": config.fps,
        "frames": config.frames,
        "rendered_aus": list(RENDERED_AUS),
        "labels": LABELS_FILE,
        "auhm_version": __version__,
        "config": json.loads(json.dumps(asdict(config), default=str)),
        "videos": sorted(videos.values(), key=lambda v: v["video"]),
    }, path)
