"""``auhm synth --layout landmarks``: a landmark-only corpus of still faces in the 300-W layout.

::

    faces/id00000_0000.jpg, faces/id00000_0000.pts …   JPEG + iBUG .pts (68 points, 1-based)
    auhm_truth/stills.parquet                           per image: identity, pose, occlusion, AU intensities
    auhm_truth/manifest.json, auhm_truth/contact_sheet.png

``auhm prepare landmarks OUT --format 300w`` reads it like any 300-W folder; an identity's images
share a split (``photo_group``: ``id00042_0003`` → ``id00042``).

Identity ``i`` draws from ``SeedSequence([seed, IDENTITY_STREAM, i])``, where the AU layouts'
subject ``i`` draws from ``SeedSequence([seed, i])``: no landmark identity is an AU subject, for
any seeds, so a landmark network pretrained here never saw the people it is later tested on.
Every image draws its own head pose (wider than the videos': yaw up to where the flat-backed face
model still reads as a face), expression (AU episodes, as the AU subjects move), size and place in
the frame (faces may be cut by the border), light, blur and, at some rate, an occluder; an
identity's images share its background scene, seen through a different pan each time, and its
colour cast.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from auhm import __version__
from auhm.console import progress
from auhm.data.ibug300w import write_pts
from auhm.data.layout import write_jpeg
from auhm.face.truth_backend import TRUTH_DIR
from auhm.io import write_json_atomic, write_parquet_atomic
from auhm.synth.corpus import LANDMARK_LAYOUT, SynthConfig, SynthResult
from auhm.synth.drawing import DIFFICULTIES, Motion, Renderer, noise_bank, random_occluder
from auhm.synth.episodes import au_trajectories
from auhm.synth.face_model import RENDERED_AUS, FaceModel, Identity
from auhm.targets import au_name

FACES_DIR = "faces"
IDENTITY_STREAM = 0x4C4D  # "LM": sets landmark identities' seeds apart from the AU subjects'
# Largest |yaw|, |pitch|, |roll| in degrees per difficulty; past ~55° yaw the face model's flat
# back shows (the far cheek no longer hides the far jaw line).
STILL_POSE: dict[str, tuple[float, float, float]] = {"easy": (25, 15, 20), "medium": (45, 30, 40), "hard": (55, 35, 60)}
NOISE_FRAMES = 8  # sensor-noise frames shared by all identities of a run
OCCLUDER_RATE = 3.0  # share of stills with an occluder, per unit of the difficulty's occlusion
_SHEET_TILES = 16


def identity_seed(seed: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, IDENTITY_STREAM, index])


def image_name(index: int, k: int) -> str:
    return f"id{index:05d}_{k:04d}"


def still_motion(rng: np.random.Generator, n: int, width: int, height: int, difficulty: str) -> Motion:
    """Independent placement, pose, light and focus for n stills."""
    d = DIFFICULTIES[difficulty]
    yaw, pitch, roll = (rng.uniform(-m, m, n) for m in STILL_POSE[difficulty])
    scale = height * rng.uniform(0.6 * d.scale[0], 1.3 * d.scale[1], n)
    cx = width * rng.uniform(0.25, 0.75, n)
    cy = height * rng.uniform(0.3, 0.7, n)
    light_angle = rng.uniform(0, 2 * np.pi, n)
    light_gain = rng.uniform(0.65, 1.25, n)
    blur = np.where(rng.uniform(size=n) < 0.5, 0.0, rng.uniform(0, d.blur, n))
    pan = 0.2 * min(width, height)
    return Motion(yaw, pitch, roll, scale, cx, cy, light_angle, light_gain, blur, rng.uniform(-pan, pan, n), rng.uniform(-pan, pan, n))


def identity_renderer(seed: int, index: int, n: int, width: int, height: int, difficulty: str, noise: list) -> Renderer:
    """The renderer of identity ``index``'s n stills (frame t is still t), with sensor noise from ``noise``."""
    s_id, s_au, s_pose, s_occ, s_scene = (np.random.default_rng(s) for s in identity_seed(seed, index).spawn(5))
    d = DIFFICULTIES[difficulty]
    model = FaceModel(Identity.sample(s_id))
    intensities = au_trajectories(s_au, n, fps=1.0)  # one still a second: an episode spans a few stills
    motion = still_motion(s_pose, n, width, height, difficulty)
    # an occluder in view over stills t-1..t+1 reaches the face at t (mid-way) and hovers beside it at t±1
    occluded = np.flatnonzero(s_occ.uniform(size=n) < min(1.0, OCCLUDER_RATE * d.occlusion))
    occluders = [random_occluder(s_occ, 3, (t - 1, t)) for t in occluded]
    return Renderer(model, intensities, motion, occluders, width, height, d, s_scene, noise)


def images_per_identity(images: int, identities: int) -> list[int]:
    """``images`` dealt as evenly as possible over ``identities`` (the first ones get one more)."""
    base, extra = divmod(images, identities)
    return [base + (i < extra) for i in range(identities)]


def make_still_corpus(config: SynthConfig, quiet: bool = False) -> SynthResult:
    """Render and write the landmark corpus of ``config`` (layout landmarks); files of the same
    names are replaced, others (identities of an earlier run) kept."""
    t0 = time.perf_counter()
    root = Path(config.out)
    faces = root / FACES_DIR
    faces.mkdir(parents=True, exist_ok=True)
    quality = 100 - 3 * DIFFICULTIES[config.difficulty].quality
    counts = images_per_identity(config.images, config.identities)
    # one bank for the run (drawing four noise frames per identity took longer than its images),
    # the same for every first identity: an identity's images do not depend on the others made with it
    noise = noise_bank(np.random.default_rng(np.random.SeedSequence([config.seed, IDENTITY_STREAM])), NOISE_FRAMES, config.width,
                       config.height, DIFFICULTIES[config.difficulty].noise)
    rows: list[dict] = []
    sheet: list[tuple[np.ndarray, str, np.ndarray]] = []
    with progress(quiet) as bar:
        task = bar.add_task("synth", total=config.images, unit="images")
        for offset, n in enumerate(counts):
            index = config.first_subject + offset
            renderer = identity_renderer(config.seed, index, n, config.width, config.height, config.difficulty, noise)
            m = renderer.motion
            for k in range(n):
                rgb, occluded = renderer.frame(k)
                name = image_name(index, k)
                write_jpeg(faces / f"{name}.jpg", rgb, quality)
                write_pts(faces / f"{name}.pts", renderer.landmarks[k])
                rows.append({"image": f"{FACES_DIR}/{name}.jpg", "identity": f"id{index:05d}", "yaw": m.yaw[k], "pitch": m.pitch[k],
                             "roll": m.roll[k], "occluded": bool(occluded),
                             **{au_name(a): renderer.intensities[k, j] for j, a in enumerate(RENDERED_AUS)}})
                if k == 0 and len(sheet) < _SHEET_TILES:
                    sheet.append((rgb, f"{name} yaw {m.yaw[k]:+.0f}" + (" occl" if occluded else ""), renderer.landmarks[k]))
                bar.advance(task)
    table = _merged_truth(root, pd.DataFrame(rows))
    write_parquet_atomic(table, root / TRUTH_DIR / "stills.parquet")
    _write_manifest(root, config, table)
    if config.contact_sheet and sheet:
        from auhm.viz.contact_sheet import write_contact_sheet

        images, captions, points = zip(*sheet)
        write_contact_sheet(root / TRUTH_DIR / "contact_sheet.png", list(images), list(captions), list(points), columns=4,
                            tile_width=min(config.width, 320))
    return SynthResult(root, frames=config.images, seconds=time.perf_counter() - t0)


def _merged_truth(root: Path, new: pd.DataFrame) -> pd.DataFrame:
    """This run's rows, plus those of earlier runs into the same folder that it did not replace."""
    path = root / TRUTH_DIR / "stills.parquet"
    if path.exists():
        old = pd.read_parquet(path)
        new = pd.concat([old[~old["image"].isin(new["image"])], new], ignore_index=True)
    new = new.sort_values("image", ignore_index=True)
    for c in ("yaw", "pitch", "roll", *(au_name(a) for a in RENDERED_AUS)):
        new[c] = new[c].astype(np.float32)
    return new


def _write_manifest(root: Path, config: SynthConfig, table: pd.DataFrame) -> None:
    write_json_atomic({
        "layout": LANDMARK_LAYOUT,
        "seed": config.seed,
        "difficulty": config.difficulty,
        "size": [config.width, config.height],
        "identities": int(table["identity"].nunique()),
        "images": len(table),
        "identity_seed": f"SeedSequence([seed, {IDENTITY_STREAM}, identity index])",
        "pose_max_degrees": dict(zip(("yaw", "pitch", "roll"), STILL_POSE[config.difficulty])),
        "rendered_aus": list(RENDERED_AUS),
        "auhm_version": __version__,
        "config": json.loads(json.dumps(asdict(config), default=str)),
    }, root / TRUTH_DIR / "manifest.json")
