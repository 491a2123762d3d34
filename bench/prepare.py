"""Throughput of ``auhm prepare`` (truth landmarks) against decoding the same videos alone.

Writes a small DISFA-layout corpus (textured frames, a moving landmark set, label files and a
truth sidecar), then times, in the same run: decoding every video with ``VideoReader``, and
``prepare_corpus`` (decode + landmarks + 256×256 crops + JPEG + shards). Prints frames/s of
both and their ratio, the cost of everything prepare adds to decoding.

    python bench/prepare.py --subjects 2 --frames 200 --size 640x480
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from auhm.data import PrepareConfig, prepare_corpus
from auhm.face import CropConfig
from auhm.data.corpora import corpus_spec
from auhm.video import VideoReader, VideoWriter


def write_corpus(root: Path, subjects: int, frames: int, width: int, height: int) -> list[Path]:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (height * 2, width * 2, 3), np.uint8)
    base = rng.uniform(0, 1, (68, 2)) * (0.4 * width, 0.5 * height)
    videos = []
    for i in range(1, subjects + 1):
        sn = f"SN{i:03d}"
        path = root / "Videos_LeftCamera" / f"LeftVideo{sn}_comp.avi"
        with VideoWriter(path, 30.0, width, height) as vw:
            for t in range(frames):
                dx, dy = (3 * t) % width, (2 * t) % height
                vw.write(np.ascontiguousarray(texture[dy : dy + height, dx : dx + width]))
        lm = base[None] + np.stack([0.3 * width + 0.05 * width * np.sin(np.arange(frames) / 20), 0.25 * height + 0 * np.arange(frames)], -1)[:, None]
        cols = {"frame": np.arange(frames)}
        cols |= {f"x_{k}": lm[:, k, 0].astype(np.float32) for k in range(68)}
        cols |= {f"y_{k}": lm[:, k, 1].astype(np.float32) for k in range(68)}
        (root / "auhm_truth").mkdir(parents=True, exist_ok=True)
        pd.DataFrame(cols).to_parquet(root / "auhm_truth" / f"{path.stem}.parquet")
        for au in corpus_spec("disfa").aus:
            f = root / "ActionUnit_Labels" / sn / f"{sn}_au{au}.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text("".join(f"{t + 1},{(t // 10 + au) % 6}\n" for t in range(frames)))
        videos.append(path)
    return videos


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=2)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--size", default="640x480", help="frame size WxH")
    ap.add_argument("--crop", type=int, default=256)
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "corpus"
        videos = write_corpus(root, args.subjects, args.frames, width, height)
        total = args.subjects * args.frames

        t0 = time.perf_counter()
        decoded = sum(len(b) for v in videos for b in VideoReader(v).batches(32))
        t_decode = time.perf_counter() - t0

        t0 = time.perf_counter()
        report = prepare_corpus("synth", root, Path(tmp) / "out", PrepareConfig(crop=CropConfig(size=args.crop)), quiet=True)
        t_prepare = time.perf_counter() - t0
        assert decoded == total and report.frames == total and not report.failures

        print(f"corpus: {args.subjects} videos × {args.frames} frames, {width}×{height}, crops {args.crop}×{args.crop}")
        print(f"decode only : {total / t_decode:8.1f} frames/s  ({t_decode:.2f} s)")
        print(f"prepare     : {total / t_prepare:8.1f} frames/s  ({t_prepare:.2f} s, truth landmarks)")
        print(f"ratio prepare/decode time: {t_prepare / t_decode:.2f}")


if __name__ == "__main__":
    main()
