"""What the command line says to bad input: each case run as a process of its own, its exit code
and its stderr (progress bars left out), as a Markdown table for bench/RESULTS.md.

Generated inputs only (a small synthetic corpus, untrained small checkpoints); with ``--media DIR``
(the project's real test clips) also a truncated real MP4 and a photo with several faces.

    python bench/bad_inputs.py [--media DIR] [--work /tmp/auhm-bad-inputs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path


def auhm(*args: str, env: dict | None = None, timeout: float = 300) -> tuple[int, str]:
    done = subprocess.run([sys.executable, "-m", "auhm", *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})
    return done.returncode, done.stdout + done.stderr


def said(text: str) -> str:
    """The lines a user reads, progress bars left out, joined for a table cell."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and "━" not in line]
    return " / ".join(lines).replace("|", "\\|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/auhm-bad-inputs"))
    args = parser.parse_args()
    w = args.work
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)

    from auhm.face.crop import CropConfig
    from auhm.models import build_model, save_checkpoint

    au = save_checkpoint(w / "au.pt", build_model("scratch", (1, 2, 12), preset="small"), {"crop": CropConfig(128).to_dict()})
    lm = save_checkpoint(w / "lm.pt", build_model("landmarks", preset="small"), {"task": "landmarks", "crop": CropConfig(128).to_dict()})
    auhm("synth", w / "corpus", "--subjects", "3", "--frames", "24", "--size", "160x120", "--quiet")
    videos = sorted(str(p) for p in (w / "corpus").rglob("*.avi"))
    a, b, c = videos[:3]
    good = w / "corpus" / "auhm_truth"
    (w / "empty.mp4").write_bytes(b"")
    (w / "random.mp4").write_bytes(os.urandom(5000))
    (w / "garbage.pt").write_bytes(os.urandom(3000))
    (w / "emptydir").mkdir()
    (w / "file").write_text("a file where a folder should be")
    (w / "empty.txt").write_text("# no videos\n")
    run = ["--model", au, "--landmarks", "truth", "--device", "cpu"]
    cases = [
        ("empty file", ["annotate", w / "empty.mp4", *run, "--out", w / "o1.parquet"]),
        ("random bytes", ["annotate", w / "random.mp4", a, *run, "--out", w / "o2.parquet"]),
        ("missing path", ["annotate", w / "missing.mp4", a, *run, "--out", w / "o3.parquet"]),
        ("glob matching nothing", ["annotate", str(w / "none*.mp4"), a, *run, "--out", w / "o4.parquet"]),
        ("folder without videos, among good inputs", ["annotate", w / "emptydir", a, *run, "--out", w / "o5.parquet"]),
        ("folder without videos, alone", ["annotate", w / "emptydir", *run, "--out", w / "o6.parquet"]),
        ("missing @list", ["annotate", f"@{w / 'nolist.txt'}", *run, "--out", w / "o7.parquet"]),
        ("@list naming no video", ["annotate", f"@{w / 'empty.txt'}", *run, "--out", w / "o7.parquet"]),
        ("every input fails", ["annotate", w / "random.mp4", w / "missing.mp4", *run, "--out", w / "o8.parquet"]),
        ("missing --model", ["annotate", a, "--model", w / "none.pt", "--out", w / "o9.parquet"]),
        ("garbage .pt as --model", ["annotate", a, "--model", w / "garbage.pt", "--landmarks", "truth", "--out", w / "o9.parquet"]),
        ("landmark checkpoint as --model", ["annotate", a, "--model", lm, "--landmarks", "truth", "--out", w / "o9.parquet"]),
        ("AU checkpoint as --landmark-model", ["annotate", a, "--model", au, "--landmarks", "auhm", "--landmark-model", au,
                                                "--out", w / "o9.parquet"]),
        ("--landmarks auhm without --landmark-model", ["annotate", a, "--model", au, "--landmarks", "auhm", "--out", w / "o9.parquet"]),
        ("unknown --landmarks", ["annotate", a, "--model", au, "--landmarks", "openface", "--out", w / "o9.parquet"]),
        ("--device cuda without CUDA (annotate)", ["annotate", a, *run[:-2], "--device", "cuda", "--out", w / "o9.parquet"]),
        ("--device cuda without CUDA (landmarks, auhm)", ["landmarks", a, "--backend", "auhm", "--model", lm, "--device", "cuda",
                                                          "--out", w / "l9.parquet"]),
        ("--device tpu", ["annotate", a, *run[:-2], "--device", "tpu", "--out", w / "o9.parquet"]),
        ("--every 0", ["annotate", a, *run, "--every", "0", "--out", w / "o9.parquet"]),
        ("--engine spark", ["annotate", a, *run, "--engine", "spark", "--out", w / "o9.parquet"]),
        ("--per-video with a .parquet --out", ["annotate", a, *run, "--per-video", "--out", w / "o9.parquet"]),
        ("--out that cannot be written (annotate)", ["annotate", a, *run, "--out", w / "file" / "o.parquet"]),
        ("--out that cannot be written (--per-video)", ["annotate", a, *run, "--per-video", "--out", w / "file" / "dir"]),
        ("--out that cannot be written (landmarks)", ["landmarks", a, "--backend", "truth", "--out", w / "file" / "l.parquet"]),
        ("--out that cannot be written (render)", ["render", a, "--model", au, "--landmarks", "truth", "--device", "cpu",
                                                   "--out", w / "file" / "r.mp4"]),
        ("render --max-frames 0", ["render", a, "--model", au, "--landmarks", "truth", "--device", "cpu", "--max-frames", "0",
                                   "--out", w / "r.mp4"]),
        ("missing option value", ["annotate", a, "--model"]),
    ]
    media = args.media
    if media is not None:
        data = (media / "WolfgangLanger_Pexels.mp4").read_bytes()
        (w / "first30.mp4").write_bytes(data[: len(data) * 30 // 100])
        cases += [
            ("first 30 % of a real MP4", ["annotate", w / "first30.mp4", "--model", au, "--landmarks", "dlib", "--device", "cpu",
                                           "--every", "4", "--out", w / "t.parquet"]),
            ("a photo with several faces", ["annotate", media / "multi_face.jpg", "--model", au, "--landmarks", "dlib",
                                            "--device", "cpu", "--out", w / "faces.parquet"]),
        ]
    rows = []
    for name, case in cases:
        code, text = auhm(*case)
        rows.append((name, code, said(text), "Traceback" in text))

    # Re-runs into one output: another video into a finished file, then other settings.
    out = w / "z.parquet"
    auhm("annotate", a, b, *run, "--out", out, "--quiet")
    code, text = auhm("annotate", c, *run, "--out", out)
    rows.append(("another video into a finished single file", code, said(text), "Traceback" in text))
    code, text = auhm("annotate", a, "--model", au, "--landmarks", "dlib", "--device", "cpu", "--out", out)
    rows.append(("other --landmarks, the file's other videos not redone", code, said(text), "Traceback" in text))
    code, text = auhm("annotate", a, b, c, "--model", au, "--landmarks", "dlib", "--device", "cpu", "--out", out)
    rows.append(("other --landmarks, every video redone", code, said(text), "Traceback" in text))

    # Two runs on one output, the second started while the first works on a long clip; then kill -9 and resume.
    auhm("synth", w / "long", "--subjects", "1", "--frames", "3000", "--size", "160x120", "--quiet")
    long = next(str(p) for p in (w / "long").rglob("*.avi"))
    both = w / "both.parquet"
    logs = [open(w / f"run{k}.log", "w+") for k in range(2)]
    runs = [subprocess.Popen([sys.executable, "-m", "auhm", "annotate", long, *map(str, run), "--batch-size", "1", "--out", str(both)],
                             stderr=logs[0])]
    while "annotate: 1 video(s)" not in (w / "run0.log").read_text():  # said once it holds the lock
        time.sleep(0.02)
    runs.append(subprocess.Popen([sys.executable, "-m", "auhm", "annotate", c, *map(str, run), "--out", str(both)], stderr=logs[1]))
    codes = [r.wait() for r in runs]
    import pandas as pd

    held = pd.read_parquet(both).video.nunique()
    for k, code in enumerate(codes):
        text = (w / f"run{k}.log").read_text()
        rows.append((f"two runs on one --out, run {k + 1} (the file then holds {held} videos)", code, said(text),
                     "Traceback" in text))
    killed = subprocess.Popen([sys.executable, "-m", "auhm", "annotate", a, b, c, *map(str, run), "--batch-size", "1",
                               "--out", str(w / "k.parquet")], stderr=subprocess.DEVNULL)
    parts = w / "k.parquet.parts"
    while not (parts.is_dir() and any(p.suffix == ".parquet" and not p.name.startswith(".") for p in parts.iterdir())):
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    code, text = auhm("annotate", a, b, c, *run, "--out", w / "k.parquet")
    rows.append(("kill -9 during a run, then the same run again", code, said(text), "Traceback" in text))

    print("| case | exit | what it says (stderr) |")
    print("|---|---|---|")
    for name, code, text, traceback in rows:
        print(f"| {name} | {code}{' (traceback!)' if traceback else ''} | {text.replace(str(w) + '/', '')} |")


if __name__ == "__main__":
    main()
