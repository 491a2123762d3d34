"""What several test modules build their cases from: small generated videos and sidecars, stand-in
models whose answers are known functions of their input, and small data sets. Fixtures are in
``conftest.py``; test modules import from here, never from each other."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from auhm.face.base import LandmarkBackend
from auhm.face.crop import CropConfig
from auhm.video import VideoWriter

TESTS = Path(__file__).resolve().parent


def media_dir(environ=os.environ) -> Path:
    """Where the project's real test clips are: $AUHM_MEDIA (a clone anywhere), else the
    ``shared/media`` folder beside the repository."""
    given = environ.get("AUHM_MEDIA")
    return Path(given).expanduser() if given else TESTS.parent.parent / "shared" / "media"


# ── videos ──────────────────────────────────────────────────────────────────────────────────
def write_test_video(path: Path, n: int = 24, size: tuple[int, int] = (96, 64), fps: float = 10.0) -> Path:
    """A short real compressed video whose every frame differs (a moving bar)."""
    w, h = size
    with VideoWriter(path, fps, w, h) as vw:
        for i in range(n):
            vw.write(bar_frame(i, w, h))
    return path


def bar_frame(i: int, w: int = 96, h: int = 64) -> np.ndarray:
    """Frame ``i`` of :func:`write_test_video`: a bar at x = 3i (mod w − 8) and a stripe i rows long."""
    f = np.full((h, w, 3), 40, np.uint8)
    x = (i * 3) % (w - 8)
    f[:, x : x + 8] = (255, 128, 0)
    f[: (i % h), :4] = 200
    return f


def side_by_side_clip(left: Path, right: Path, out: Path, hide: tuple[int, int] | None = None, side: str = "right",
                      frames: int | None = None, blank: int = 90) -> Path:
    """Two real clips side by side in one video (the right one scaled to the left's height), as long
    as the shorter (or ``frames``); frames ``hide[0] ≤ i < hide[1]`` of one ``side`` painted flat
    grey: a face that leaves and comes back, to test that its id holds through the gap."""
    from auhm.video import VideoReader

    a, b = VideoReader(left).frames(), VideoReader(right).frames()
    writer = None
    for i, ((_, _, fa), (_, _, fb)) in enumerate(zip(a, b)):
        if frames is not None and i >= frames:
            break
        h = fa.shape[0]
        fb = cv2.resize(fb, (round(fb.shape[1] * h / fb.shape[0]) // 2 * 2, h), interpolation=cv2.INTER_AREA)
        if hide is not None and hide[0] <= i < hide[1]:
            (fa if side == "left" else fb)[:] = blank
        frame = np.ascontiguousarray(np.concatenate([fa, fb], axis=1))
        if writer is None:
            writer = VideoWriter(out, 10.0, frame.shape[1] // 2 * 2, frame.shape[0] // 2 * 2)
        writer.write(frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2])
    if writer is None:
        raise ValueError(f"{left}, {right}: no frames to compose")
    writer.close()
    return out


def write_truncated_video(path: Path, n: int = 60, keep: float = 0.8, frame=None) -> Path:
    """An MP4 of ``n`` 96×64 frames (index first, so it still opens) cut to its first ``keep`` of
    bytes: the container claims ``n`` frames, fewer decode. ``frame(i)`` draws frame i (default:
    noise)."""
    import av

    rng = np.random.default_rng(0)
    frame = frame or (lambda i: rng.integers(0, 255, (64, 96, 3), dtype=np.uint8))
    full = path.with_name(f"full-{path.name}")
    with av.open(str(full), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(n):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame(i), format="rgb24")))
        container.mux(stream.encode())
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    full.unlink()
    return path


# ── annotation: a stand-in model and clips with truth sidecars ─────────────────────────────
AUS = (1, 2, 12)
SIZE = 32
INFO = {"method": "scratch", "aus": list(AUS), "preset": "small", "crop": CropConfig(256, 1.3, -0.08).to_dict(), "input_size": SIZE}


class StandInAU(torch.nn.Module):
    """Heatmap peak of AU j = 5 × mean of colour channel j of the crop (independently checkable)."""

    output_kind = "heatmap"
    input_size = SIZE

    def __init__(self, landmarks: bool = False):
        super().__init__()
        self.landmarks = landmarks
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        b = x.shape[0]
        means = x.float().mean(dim=(2, 3)) * 5 * self.scale  # (B, 3)
        maps = torch.zeros(b, len(AUS), SIZE // 4, SIZE // 4)
        maps[:, :, 3, 5] = means[:, : len(AUS)]
        out = {"heatmaps": maps}
        if self.landmarks:
            out["landmark_heatmaps"] = torch.zeros(b, 68, SIZE // 4, SIZE // 4)
        return out


def hold_until(gate: str | os.PathLike, deadline_s: float = 120.0) -> None:
    """Wait until the file ``gate`` exists: a run held at a known point for as long as a test needs
    (the test writes the gate, or kills the run); a test that failed before opening it does not
    leave the run waiting forever."""
    end = time.monotonic() + deadline_s
    while not os.path.exists(gate):
        if time.monotonic() > end:
            raise TimeoutError(f"{gate} never opened")
        time.sleep(0.01)


class GatedAU(StandInAU):
    """The stand-in, holding every batch after the first forward (the predictor's probe) until
    the file ``gate`` exists."""

    def __init__(self, gate: str):
        super().__init__()
        self.gate, self.calls = gate, 0

    def forward(self, x):
        self.calls += 1
        if self.calls > 1:
            hold_until(self.gate)
        return super().forward(x)


def make_clip(root: Path, name: str, n: int, face: np.ndarray, size=(96, 80), seed: int = 0, still_end: int = 0) -> Path:
    """A video of coloured noise and its truth sidecar: a face on frames where ``face`` is true.

    ``still_end`` repeats the last frame that many times (the reader then checks with PyAV that
    such a run of identical frames really decodes).
    """
    rng = np.random.default_rng(seed)
    w, h = size
    path = root / f"{name}.avi"
    with VideoWriter(path, 10.0, w, h) as vw:
        for i in range(n):
            if i < n - still_end:
                f = np.zeros((h, w, 3), np.uint8)
                f[:] = (40 + 5 * i % 200, 90, 160)
                f[20:60, 30:70] = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            vw.write(f)
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    rows = []
    for i in range(n):
        if not face[i]:
            continue
        xs = 50 + 15 * np.cos(t) + 0.2 * i
        ys = 40 + 18 * np.sin(t)
        rows.append({"frame": i, **{f"x_{k}": xs[k] for k in range(68)}, **{f"y_{k}": ys[k] for k in range(68)}})
    side = root / "auhm_truth"
    side.mkdir(exist_ok=True)
    pd.DataFrame(rows, columns=["frame"] + [f"x_{k}" for k in range(68)] + [f"y_{k}" for k in range(68)]).to_parquet(side / f"{name}.parquet")
    return path


def annotate_config(checkpoint: Path, out: Path, **kw):
    """A quiet CPU annotation with truth landmarks, batches of 8 (``kw`` overrides any of it)."""
    from auhm.infer.annotate import AnnotateConfig

    settings = dict(landmarks="truth", batch_size=8, device="cpu", precision="fp32", quiet=True)
    return AnnotateConfig(model=checkpoint, out=out, **{**settings, **kw})


def small_checkpoint(path: Path, aus=(1, 2, 12)) -> Path:
    """A real (small, untrained) scratch checkpoint with 128-px crops."""
    from auhm.models import build_model, save_checkpoint

    model = build_model("scratch", aus, preset="small")
    return save_checkpoint(path, model, {"crop": CropConfig(128).to_dict()})


_STANDIN_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import helpers as h
    from auhm.infer.predictor import Predictor
    Predictor.from_checkpoint = classmethod(lambda cls, p, device="auto", precision="auto": cls({model}, h.INFO, "cpu", "fp32", trace=False))
    {setup}
    from auhm.cli import app
    app(sys.argv[1:], prog_name="auhm")
    """
)


def standin_script(path: Path, model: str = "h.StandInAU()", setup: str = "") -> Path:
    """A script that runs the real CLI in a process of its own, with a stand-in model (an
    expression over this module, ``h``, run as it is, untraced: its Python may hold or count
    batches) and ``setup``, a line run before the CLI."""
    path.write_text(_STANDIN_SCRIPT.format(tests=str(TESTS), model=model, setup=setup))
    return path


def crowd_view(tmp_path: Path, frames: int = 40, seed: int = 0):
    """The people of a synthetic crowd video (``auhm synth --layout crowd``, 640×360), rendered
    without encoding: a function t → (RGB frame, truth rows of the faces in full view)."""
    from auhm.synth import SynthConfig
    from auhm.synth.crowd import render_crowd_frame, simulate_crowd, truth_frame, truth_rows

    config = SynthConfig(tmp_path, layout="crowd", subjects=1, frames=frames, width=640, height=360, seed=seed, contact_sheet=False)
    people = simulate_crowd(config, 0)

    def view(t: int) -> tuple[np.ndarray, pd.DataFrame]:
        rgb, seen = render_crowd_frame(people, t)
        truth = truth_frame(truth_rows(people, t, seen, config.width, config.height))
        return rgb, truth[truth["visible"] > 0.99]

    return view


def faces_found(detections: list, truth: pd.DataFrame) -> int:
    """The true faces (truth rows) that ``detections`` [(box, score)] match one to one at IoU ≥ 0.5."""
    from auhm.face.boxes import match_boxes

    boxes = np.array([b for b, _ in detections], np.float64).reshape(-1, 4)
    return len(match_boxes(truth[["x0", "y0", "x1", "y1"]].to_numpy(np.float64), boxes))


def interruptible() -> None:
    """In a run's own process: Ctrl-C raises KeyboardInterrupt, as in a terminal, even where the
    process started with SIGINT ignored (a test run a non-interactive shell put in the background)."""
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc; none elsewhere)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def still_running(pids: list[int], within_s: float = 10.0) -> list[int]:
    """Of ``pids``, those still running once ``within_s`` has passed (sooner when all are gone); a
    zombie, exited and waiting to be reaped, is gone. Reads process states from Linux /proc."""
    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except (OSError, IndexError):
            return False

    deadline = time.monotonic() + within_s
    while (left := [p for p in pids if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def hold_after_first_video(gate: str | os.PathLike, reached: str | os.PathLike) -> None:
    """In a run's own process: once the first video's rows are committed, write ``reached`` and
    hold the run until ``gate`` exists (a test kills it there: one video done, the others not)."""
    from auhm.io import ParquetStream

    commit = ParquetStream.commit

    def commit_then_hold(self, metadata=None, rewrite=None):
        commit(self, metadata, rewrite)
        tmp = Path(f"{reached}.tmp")
        tmp.write_text(str(self.path))
        tmp.replace(reached)  # whole or absent: a test polling for it never reads it half written
        hold_until(gate)

    ParquetStream.commit = commit_then_hold


# ── a world of bright squares: faces for self-tracking ─────────────────────────────────────
TRACK_SIZE = 64
SQUARE = 36


def bright_box(img: np.ndarray):
    ys, xs = np.nonzero(img.mean(-1) > 128)
    return None if len(xs) < 4 else np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float64)


def inscribed_ring(box: np.ndarray) -> np.ndarray:
    """68 points on the ellipse inscribed in ``box`` (x0, y0, x1, y1)."""
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    c, r = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2
    return np.stack([c[0] + r[0] * np.cos(t), c[1] + r[1] * np.sin(t)], -1)


class SquareBackend(LandmarkBackend):
    """Detects the bright square; its 'landmarks' are the ellipse inscribed in it."""

    name = "square"
    detections = 0

    def detect(self, frames):
        SquareBackend.detections += 1
        box = bright_box(frames[0])
        return [[(box, 1.0)]] if box is not None else [[]]

    def fit(self, frames, regions):
        box = bright_box(frames[0])
        if box is None:  # as real backends do: no face in the region → NaN points, zero confidence
            return np.full((1, 68, 2), np.nan, np.float32), np.zeros(1, np.float32)
        return inscribed_ring(box)[None], np.ones(1, np.float32)


def square_detector():
    """A full-frame detector of the bright square (frame -> [(box, score)])."""
    backend = SquareBackend()
    return lambda frame: backend.detect(frame[None])[0]


class SquareAU(torch.nn.Module):
    """A transfer-method stand-in: landmark maps of the ellipse inscribed in the bright part of the crop."""

    output_kind = "heatmap"
    input_size = TRACK_SIZE

    def forward(self, x):
        from auhm.targets.heatmaps import landmark_heatmaps

        imgs = (x.permute(0, 2, 3, 1).float() * 255).numpy()
        lmh = torch.zeros(len(x), 68, TRACK_SIZE // 4, TRACK_SIZE // 4)
        for b, img in enumerate(imgs):
            box = bright_box(img)
            if box is not None:
                lmh[b] = landmark_heatmaps(torch.from_numpy(inscribed_ring(box)).float()[None], TRACK_SIZE, TRACK_SIZE // 4)[0]
        au = torch.zeros(len(x), len(AUS), TRACK_SIZE // 4, TRACK_SIZE // 4)
        au[:, :, 0, 0] = x.mean(dim=(1, 2, 3))[:, None] * 5
        return {"heatmaps": au, "landmark_heatmaps": lmh}


def square_clip(path, n: int, present, x0=lambda i: 20 + 2 * i, size=(160, 96)) -> list:
    """A video with a bright square on the frames where ``present(i)``; its true boxes (None: absent)."""
    w, h = size
    boxes = []
    with VideoWriter(path, 10.0, w, h) as vw:
        for i in range(n):
            f = np.full((h, w, 3), 30, np.uint8)
            box = None
            if present(i):
                x = int(x0(i))
                f[30 : 30 + SQUARE, x : x + SQUARE] = 230
                box = [x, 30, x + SQUARE - 1, 30 + SQUARE - 1]
            boxes.append(box)
            vw.write(f)
    return boxes


# ── training data ───────────────────────────────────────────────────────────────────────────
class FakeShards:
    """What ShardView reads of a shard set: random crops, landmarks and labels."""

    def __init__(self, n=6, size=96):
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
        self.landmarks = rng.uniform(10, size - 10, (n, 68, 2)).astype(np.float32)
        self.labels = rng.uniform(0, 5, (n, 3)).astype(np.float32)

    def image(self, i, reduce=1):
        assert reduce == 1  # crops under twice the input size: never a reduced decode
        return self.images[i]


class FailsOn(torch.utils.data.Dataset):
    """Items {"i": i}, and a corrupt-JPEG error on item ``bad``."""

    def __init__(self, bad: int):
        self.bad = bad

    def __len__(self):
        return 10

    def __getitem__(self, i):
        if i == self.bad:
            raise ValueError(f"corrupt JPEG in shard (item {i})")
        return {"i": i}


# ── landmark annotation files ───────────────────────────────────────────────────────────────
DOTS = (30, 36, 45)  # landmarks marked by a bright pixel in every image of write_dots_image


def face_points(shift: tuple[float, float] = (0.0, 0.0), seed: int = 0) -> np.ndarray:
    """A plausible 68-point face about 50 px wide in a 96×96 image, on whole pixels (0-based)."""
    from auhm.synth import FaceModel, Identity

    identity = Identity.sample(np.random.default_rng(seed))
    p = FaceModel(identity).points[:68, :2] * 26 + np.array([48.0, 40.0]) + np.asarray(shift)
    return np.round(p)


def write_pts_file(path: Path, points: np.ndarray) -> Path:
    """A .pts file as iBUG writes them (1-based), written here, not by the code under test."""
    rows = "".join(f"{x + 1:.6f} {y + 1:.6f}\n" for x, y in points)
    path.write_text(f"version: 1\nn_points:  {len(points)}\n{{\n{rows}}}")
    return path


def write_dots_image(path: Path, *faces: np.ndarray, size: int = 96) -> Path:
    """A dark image with one bright pixel at each of the DOTS landmarks of each face (inside it)."""
    img = np.full((size, size, 3), 30, np.uint8)
    for points in faces:
        for i in DOTS:
            x, y = (int(v) for v in points[i])
            if 0 <= x < size and 0 <= y < size:
                img[y, x] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 100] if path.suffix == ".jpg" else [])
    return path


# ── image-sequence corpora ──────────────────────────────────────────────────────────────────
def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_sequence(folder: Path, names: list[str], truth: Path | None = None, size: int = 96) -> list[Path]:
    """Frames ``names`` (grey level = 20 + 20 × position) in ``folder``, and with ``truth`` the
    true-landmark sidecar counting them from 0 (the same face in each)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(names):
        img = np.full((size, size, 3), 20 + 20 * k, np.uint8)
        assert cv2.imwrite(str(folder / name), img)
        paths.append(folder / name)
    if truth is not None:
        points = face_points()
        rows = {"frame": np.arange(len(names))}
        rows |= {f"x_{i}": np.full(len(names), points[i, 0]) for i in range(68)}
        rows |= {f"y_{i}": np.full(len(names), points[i, 1]) for i in range(68)}
        truth.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_parquet(truth)
    return paths


def prepare_cli(kind: str, root: Path, out: Path, *extra: str):
    """``auhm prepare KIND ROOT --out OUT`` as the README gives it (truth landmarks, 64-px crops): the CLI result."""
    from typer.testing import CliRunner

    from auhm.cli import app

    return CliRunner().invoke(app, ["prepare", kind, str(root), "--out", str(out), "--size", "64", "-q", *extra])


# ── DDP on the CPU ──────────────────────────────────────────────────────────────────────────
def spawn_ranks(world: int, fn, *args) -> None:
    """``fn(*args)`` in ``world`` processes forming one gloo process group on the CPU, as torchrun
    would start them (torch.multiprocessing spawn; a rank that fails fails the call)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:  # a free port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_rank, args=(world, port, fn, args), nprocs=world, join=True)


def _rank(rank: int, world: int, port: int, fn, args) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    fn(*args)


def logged_training(config, log_dir) -> None:
    """``run_training(config)``, each rank writing how many crops every prediction pass of it ran
    (``log_dir/rank<R>.log``, one number a line)."""
    import auhm.train.evaluate as evaluate
    from auhm.train.folds import run_training

    predict, log = evaluate.predict, Path(log_dir) / f"rank{os.environ.get('RANK', '0')}.log"

    def logged(model, view, *args, **kwargs):
        with open(log, "a") as f:
            f.write(f"{len(view)}\n")
        return predict(model, view, *args, **kwargs)

    evaluate.predict = logged
    run_training(config)
