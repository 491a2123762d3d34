"""``make_corpus``: a whole synthetic corpus, one subject at a time, in a real dataset's layout.

Each subject's randomness comes from ``SeedSequence([seed, subject index])`` split into
independent streams (identity, AU episodes, motion, scene, unlabelled frames), so a subject is the
same whichever other subjects are made with it (``first_subject`` makes held-out ones apart) and
its labels do not depend on the difficulty.

Sidecar ``auhm_truth/<video stem>.parquet``, one row per frame: ``frame`` (int32, 0-based),
``x_0…x_67``, ``y_0…y_67`` (float32, frame pixels, the true iBUG landmarks), one float32 column
per rendered AU (``AU01…AU26``: the continuous intensity drawn; the label files hold it rounded
half up, or 9 where a layout marks the frame unlabelled; AUs the layout does not label are drawn
too, as real faces do them), ``yaw``/``pitch``/``roll`` (degrees) and ``occluded`` (an occluder
covers ≥ ``OCCLUDED_MIN_LANDMARKS`` landmarks).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from auhm import __version__, checks
from auhm.console import progress
from auhm.data.corpora import synth_layouts
from auhm.data.layout import Layout, SessionPaths
from auhm.errors import UsageError
from auhm.face.truth_backend import TRUTH_DIR
from auhm.io import check_writable, encode_metadata, write_json_atomic, write_parquet_atomic
from auhm.synth.drawing import DIFFICULTIES, OCCLUDED_MIN_LANDMARKS, Motion, Renderer, sample_occluders
from auhm.synth.episodes import au_trajectories, integer_labels
from auhm.synth.face_model import RENDERED_AUS, FaceModel, Identity
from auhm.targets import au_name

LANDMARK_LAYOUT = "landmarks"  # still faces + iBUG .pts, no AU labels (synth/stills.py)
CROWD_LAYOUT = "crowd"  # several people per video, truth tracks and per-person AU labels (synth/crowd.py)
LAYOUTS: dict[str, type[Layout]] = synth_layouts()  # the AU corpora's layouts, each registered with its reader
_SHEET_TILES = 16
MAX_SUBJECTS = 999  # DISFA's SN001 … SN999: corpus subject patterns read three digits
MAX_IDENTITIES = 100_000  # still faces' idNNNNN
MAX_FRAMES = 1_000_000  # per video: 14 hours at 20 frames/s
MAX_IMAGES = 10_000_000
MAX_SIDE = 4096
MAX_FPS = 1000


def parse_size(size: str) -> tuple[int, int]:
    """'320x240' → (320, 240)."""
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {size!r}: expected WIDTHxHEIGHT, e.g. 320x240") from None
    return w, h


@dataclass(frozen=True)
class SynthConfig:
    out: Path
    layout: str = "disfa"
    subjects: int = 3
    frames: int = 120
    width: int = 320
    height: int = 240
    fps: float = 20.0
    seed: int = 0
    difficulty: str = "medium"
    first_subject: int = 0  # layout landmarks: the first identity
    contact_sheet: bool = True
    identities: int = 600  # layout landmarks only
    images: int = 6000  # layout landmarks only

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Everything that can be checked before any work, as a UsageError naming the option."""
        if self.layout not in LAYOUTS and self.layout not in (LANDMARK_LAYOUT, CROWD_LAYOUT):
            raise UsageError(f"layout {self.layout!r}: choose one of {', '.join([*LAYOUTS, LANDMARK_LAYOUT, CROWD_LAYOUT])}")
        if self.identities < 1 or self.images < self.identities:
            raise UsageError(f"--identities must be ≥ 1 and --images ≥ --identities (got {self.identities} and {self.images})")
        if self.difficulty not in DIFFICULTIES:
            raise UsageError(f"difficulty {self.difficulty!r}: choose one of {', '.join(DIFFICULTIES)}")
        if self.width < 64 or self.height < 64 or self.width % 2 or self.height % 2:
            raise UsageError(f"size {self.width}x{self.height}: width and height must be even and at least 64")
        checks.between(self.width, 64, MAX_SIDE, "--size (width)")
        checks.between(self.height, 64, MAX_SIDE, "--size (height)")
        checks.at_least(self.subjects, 1, "--subjects")
        checks.between(self.frames, 1, MAX_FRAMES, "--frames")
        checks.between(self.images, 1, MAX_IMAGES, "--images")
        checks.finite(self.fps, "--fps", above=0)
        checks.between(self.fps, 0, MAX_FPS, "--fps")
        checks.seed(self.seed)
        checks.at_least(self.first_subject, 0, "--first-subject")
        if self.layout == LANDMARK_LAYOUT:
            checks.between(self.first_subject + self.identities, 1, MAX_IDENTITIES, "--first-subject + --identities",
                           "identity ids have five digits")
        else:
            checks.between(self.first_subject + self.subjects, 1, MAX_SUBJECTS, "--first-subject + --subjects",
                           "subject ids have three digits")


@dataclass
class SynthResult:
    out: Path
    videos: list[str] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0


@dataclass
class SubjectVideo:
    """One subject's rendered session, before anything is written."""

    session: SessionPaths
    renderer: Renderer
    intensities: np.ndarray  # (F, len(RENDERED_AUS)) continuous
    labelled: np.ndarray  # (F,) bool


def simulate_subject(config: SynthConfig, index: int, layout: Layout) -> SubjectVideo:
    """Identity, AU trajectories, motion and scene of the index-th subject (nothing drawn yet)."""
    s_id, s_au, s_motion, s_scene, s_gaps = (np.random.default_rng(s) for s in np.random.SeedSequence([config.seed, index]).spawn(5))
    d = DIFFICULTIES[config.difficulty]
    model = FaceModel(Identity.sample(s_id))
    intensities = au_trajectories(s_au, config.frames, config.fps)
    motion = Motion.sample(s_motion, config.frames, config.fps, config.width, config.height, d)
    occluders = sample_occluders(s_motion, config.frames, config.fps, d)
    renderer = Renderer(model, intensities, motion, occluders, config.width, config.height, d, s_scene)
    labelled = np.ones(config.frames, bool)
    if layout.marks_unlabelled:
        labelled[0] = False
        run = int(s_gaps.integers(2, 5))
        start = int(s_gaps.integers(0, max(config.frames - run, 1)))
        labelled[start:start + run] = False
    return SubjectVideo(layout.session(index), renderer, intensities, labelled)


def label_matrix(video: SubjectVideo, aus: tuple[int, ...]) -> np.ndarray:
    """(F, len(aus)) integer codes: the rounded continuous intensity, 9 where unlabelled."""
    cols = [RENDERED_AUS.index(a) for a in aus]
    labels = integer_labels(video.intensities[:, cols])
    labels[~video.labelled] = 9
    return labels


def truth_table(video: SubjectVideo, occluded: np.ndarray, meta: dict) -> pa.Table:
    """The sidecar: true landmarks, continuous intensities, pose and occlusion per frame."""
    r = video.renderer
    lm = r.landmarks
    cols: dict[str, np.ndarray] = {"frame": np.arange(len(lm), dtype=np.int32)}
    cols.update({f"x_{i}": lm[:, i, 0] for i in range(68)})
    cols.update({f"y_{i}": lm[:, i, 1] for i in range(68)})
    cols.update({au_name(a): video.intensities[:, k].astype(np.float32) for k, a in enumerate(RENDERED_AUS)})
    for name in ("yaw", "pitch", "roll"):
        cols[name] = getattr(r.motion, name).astype(np.float32)
    cols["occluded"] = np.asarray(occluded, bool)
    table = pa.table(cols)
    return table.replace_schema_metadata(encode_metadata(meta))


def _sheet_frames(intensities: np.ndarray, n: int) -> list[int]:
    """A neutral frame, then the apex frames of the strongest different AUs."""
    picks = [int(np.argmin(intensities.sum(1)))]
    order = np.argsort(-intensities.max(0))
    for k in order:
        if len(picks) >= n or intensities[:, k].max() < 1:
            break
        f = int(np.argmax(intensities[:, k]))
        if all(abs(f - p) > 3 for p in picks):
            picks.append(f)
    return picks


def make_corpus(config: SynthConfig, quiet: bool = False) -> SynthResult:
    """Render and write the corpus; returns what was written. Subjects already there are replaced."""
    check_writable(config.out, directory=True)
    if config.layout == LANDMARK_LAYOUT:
        from auhm.synth.stills import make_still_corpus  # it builds on this module

        return make_still_corpus(config, quiet)
    if config.layout == CROWD_LAYOUT:
        from auhm.synth.crowd import make_crowd_corpus  # it builds on this module

        return make_crowd_corpus(config, quiet)
    t0 = time.perf_counter()
    root = Path(config.out)
    layout = LAYOUTS[config.layout]()
    result = SynthResult(root)
    per_video = max(1, min(4, _SHEET_TILES // config.subjects))
    sheet_images, sheet_captions, sheet_points = [], [], []
    entries = []
    quality = DIFFICULTIES[config.difficulty].quality
    with progress(quiet) as bar:
        task = bar.add_task("synth", total=config.subjects * config.frames, unit="frames")
        for index in range(config.first_subject, config.first_subject + config.subjects):
            video = simulate_subject(config, index, layout)
            labels = label_matrix(video, layout.aus)
            shown = video.intensities[:, [RENDERED_AUS.index(a) for a in layout.aus]]
            picks = set(_sheet_frames(shown, per_video)) if len(sheet_images) < _SHEET_TILES else set()
            occluded = np.zeros(config.frames, bool)
            with layout.frame_sink(root, video.session, config.fps, config.width, config.height, quality) as sink:
                for t in range(config.frames):
                    rgb, occluded[t] = video.renderer.frame(t)
                    sink.write(rgb)
                    if t in picks:
                        sheet_images.append(rgb)
                        sheet_points.append(video.renderer.landmarks[t])
                        active = [f"{a}:{v}" for a, v in zip(layout.aus, labels[t]) if v]
                        sheet_captions.append(f"{video.session.stem} f{t}" + (" occl" if occluded[t] else "")
                                              + "\n" + (" ".join(active) or "neutral"))
                    bar.advance(task)
            label_files = layout.write_labels(root, video.session, labels)
            meta = {"layout": layout.name, "subject": video.session.subject, "video": video.session.video,
                    "seed": config.seed, "difficulty": config.difficulty}
            truth = f"{TRUTH_DIR}/{video.session.stem}.parquet"
            write_parquet_atomic(truth_table(video, occluded, meta), root / truth)
            entries.append({"subject": video.session.subject, "task": video.session.task, "video": video.session.video,
                            "truth": truth, "labels": label_files, "frames": config.frames, "seed": config.seed,
                            "difficulty": config.difficulty, "occluded_frames": int(occluded.sum()),
                            "unlabelled_frames": int((~video.labelled).sum())})
            result.videos.append(video.session.video)
            result.frames += config.frames
    _write_manifest(root, config, layout, entries)
    if config.contact_sheet and sheet_images:
        from auhm.viz.contact_sheet import write_contact_sheet

        write_contact_sheet(root / TRUTH_DIR / "contact_sheet.png", sheet_images[:_SHEET_TILES],
                            sheet_captions[:_SHEET_TILES], sheet_points[:_SHEET_TILES], columns=4, tile_width=min(config.width, 320))
    result.seconds = time.perf_counter() - t0
    return result


def _write_manifest(root: Path, config: SynthConfig, layout: Layout, entries: list[dict]) -> None:
    """manifest.json; subjects made earlier into the same folder (same layout) are kept."""
    path = root / TRUTH_DIR / "manifest.json"
    videos: dict[str, dict] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
            if old.get("layout") == layout.name:
                videos = {v["video"]: v for v in old.get("videos", [])}
        except (ValueError, KeyError, TypeError):
            videos = {}
    videos.update({e["video"]: e for e in entries})
    ordered = sorted(videos.values(), key=lambda v: v["video"])
    manifest = {
        "layout": layout.name,
        "seed": config.seed,
        "difficulty": config.difficulty,
        "size": [config.width, config.height],
        "fps": config.fps,
        "frames": config.frames,
        "first_subject": config.first_subject,
        "subjects": sorted({v["subject"] for v in ordered}),
        "aus": list(layout.aus),
        "rendered_aus": list(RENDERED_AUS),
        "occluded_min_landmarks": OCCLUDED_MIN_LANDMARKS,
        "auhm_version": __version__,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "videos": ordered,
    }
    write_json_atomic(manifest, path)
