"""What the command line says to bad input, as Markdown tables for bench/RESULTS.md.

Two parts. The named cases (broken videos, checkpoints, re-runs, kills) run each as a process of
its own: exit code and stderr (progress bars left out). The fuzz (``fuzz_cases``) is generated
from the commands' Click parameters, so that no command or option is forgotten: each numeric
option at 0, -1, nan, a huge value and a word, each path missing, a folder, under a regular file
and under /proc, each name option a word, one at a time over a valid invocation of its command.
The fuzz runs in this process (a process per case would spend most of its time importing torch);
a bug is exit code 3, or an exception that escaped the command.

Generated inputs only (a small synthetic corpus, untrained small checkpoints); with ``--media DIR``
(the project's real test clips) also a truncated real MP4 and a photo with several faces.

    python bench/bad_inputs.py [--media DIR] [--work /tmp/auhm-bad-inputs] [--fuzz-only]
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


# ── the fuzz: generated from the commands' parameters ─────────────────────────────────────────
HUGE_INT, HUGE_FLOAT = "1000000000000", "1e12"


def fuzz_values(kind: str, w: Path, given: str | None, case: str) -> list[tuple[str, str]]:
    """(label, value) pairs for one parameter whose Python type is named ``kind`` ("int", "Path" …);
    ``given`` is its value in the valid invocation (its file suffix is kept for the paths). The
    missing paths and empty folders are the parameter's own (``case``), so that no case reads what
    another wrote."""
    if kind in ("int", "float"):
        return [("0", "0"), ("-1", "-1"), ("nan", "nan"), ("huge", HUGE_INT if kind == "int" else HUGE_FLOAT), ("word", "word")]
    if kind in ("Path", "list[str]"):  # list[str]: the videos, globs and @lists of annotate and landmarks
        suffix = Path(given).suffix if given else ""
        empty = w / "empty" / case
        empty.mkdir(parents=True, exist_ok=True)
        cases = [("missing", str(w / "missing" / case / f"x{suffix}")), ("folder", str(empty)),
                 ("under a file", str(w / "file" / f"x{suffix}")), ("under /proc", f"/proc/auhm-fuzz/x{suffix}")]
        return cases + ([("no suffix", str(w / "fuzz-out" / case / "nosuffix"))] if suffix else [])
    if kind == "str":
        return [("word", "word")]
    return []


def fuzz_cases(w: Path, valid: dict[str, list[list[str]]]) -> list[tuple[str, str, str, list[str]]]:
    """(command, option, label, argv) for every parameter of every command: the parameter set to
    each of :func:`fuzz_values` in the first valid invocation of ``valid[command]`` that gives it
    (else the first one). A command with no valid invocation is an error: none is forgotten."""
    import typer

    from auhm.cli import app

    group = typer.main.get_command(app)
    missing = sorted(set(group.commands) - set(valid))
    if missing:
        raise SystemExit(f"bench/bad_inputs.py: no valid invocation of {', '.join(missing)}")
    cases = []
    for name, command in sorted(group.commands.items()):
        for param in command.params:
            kind = str(param.bare_type())  # the Python type's name: "int", "Path" …
            if getattr(param, "is_flag", False):
                continue
            option = param.opts[0] if param.opts and param.opts[0].startswith("-") else None
            label = option or param.name.upper()
            for argv in valid[name]:
                if option is None or option in argv:
                    break
            else:
                argv = valid[name][0]
            for what, value in fuzz_values(kind, w, _given(command, param, argv), f"{name}-{param.name}"):
                cases.append((name, label, what, _with(command, param, argv, value)))
    return cases


def _given(command, param, argv: list[str]) -> str | None:
    if param.opts and param.opts[0].startswith("-"):
        return next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a in param.opts), None)
    positions = [p for p in command.params if not (p.opts and p.opts[0].startswith("-"))]
    k = positions.index(param)
    return argv[1 + k] if 1 + k < len(argv) else None


def _with(command, param, argv: list[str], value: str) -> list[str]:
    """``argv`` with ``param`` set to ``value`` (an option replaced or added; an argument replaced)."""
    argv = list(argv)
    if param.opts and param.opts[0].startswith("-"):
        for i, a in enumerate(argv[:-1]):
            if a in param.opts:
                argv[i + 1] = value
                return argv
        return argv + [param.opts[0], value]
    positions = [p for p in command.params if not (p.opts and p.opts[0].startswith("-"))]
    argv[1 + positions.index(param)] = value  # argv[0] is the command; arguments come first
    return argv


class CaseTimeout(BaseException):
    """A fuzz case that ran past its time (a BaseException: no ``except Exception`` swallows it)."""


def run_in_process(argv: list[str], timeout: int = 180) -> tuple[int | str, str, bool]:
    """The CLI on ``argv`` in this process: (exit code, what it said, whether an exception escaped)."""
    import signal as sig

    from typer.testing import CliRunner

    from auhm.cli import app

    def expire(*_):
        raise CaseTimeout

    old = sig.signal(sig.SIGALRM, expire)
    sig.alarm(timeout)
    try:
        result = CliRunner().invoke(app, [str(a) for a in argv], env={"COLUMNS": "200"})
    except CaseTimeout:
        return "timeout", "", False
    finally:
        sig.alarm(0)
        sig.signal(sig.SIGALRM, old)
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    text = result.output + ("".join(__import__("traceback").format_exception(result.exception)) if escaped else "")
    return result.exit_code, text, escaped


def fuzz_fixtures(w: Path) -> dict[str, list[list[str]]]:
    """The small inputs the fuzz needs and, per command, the valid invocations it varies."""
    from auhm.face.crop import CropConfig
    from auhm.models import build_model, save_checkpoint

    f = w / "fuzz"
    f.mkdir(parents=True, exist_ok=True)
    au = save_checkpoint(f / "au.pt", build_model("scratch", (1, 2, 12), preset="small"), {"crop": CropConfig(128).to_dict()})
    save_checkpoint(f / "lm.pt", build_model("landmarks", preset="small"), {"task": "landmarks", "crop": CropConfig(128).to_dict()})
    for argv in (["synth", f / "corpus", "--subjects", "3", "--frames", "8", "--size", "96x96", "--quiet"],
                 ["synth", f / "stills", "--layout", "landmarks", "--identities", "4", "--images", "8", "--size", "96x96", "--quiet"],
                 ["prepare", "synth", f / "corpus", "--out", f / "prep", "--size", "128", "--quiet"],
                 ["prepare", "landmarks", f / "stills", "--format", "300w", "--out", f / "lmprep", "--size", "128", "--quiet"]):
        code, text, _ = run_in_process(argv)
        assert code == 0, (argv, text)
    video = str(sorted((f / "corpus").rglob("*.avi"))[0])
    annotate = ["annotate", video, "--model", au, "--landmarks", "truth", "--device", "cpu", "--quiet"]
    code, text, _ = run_in_process([*annotate, "--out", f / "pred.parquet"])
    assert code == 0, text
    o = lambda name: str(w / "fuzz-out" / name)  # noqa: E731 - each command writes its own outputs
    small_train = ["--method", "scratch", "--preset", "small", "--batch-size", "4", "--epochs", "1", "--max-steps", "1",
                   "--workers", "0", "--threads", "1", "--device", "cpu", "--precision", "fp32", "--quiet"]
    return {
        "synth": [["synth", o("synth"), "--subjects", "1", "--frames", "2", "--size", "64x64", "--quiet"],
                  ["synth", o("stills"), "--layout", "landmarks", "--identities", "1", "--images", "2", "--size", "64x64", "--quiet"]],
        "landmarks": [["landmarks", video, "--backend", "truth", "--out", o("l.parquet"), "--quiet"],
                      ["landmarks", video, "--backend", "network", "--model", f / "lm.pt", "--device", "cpu", "--out", o("l.parquet"), "--quiet"]],
        "heatmaps": [["heatmaps", f / "prep", "--out", o("h.png"), "--n", "2"]],
        "models": [["models", "--preset", "small", "--n-aus", "2"]],
        "prepare": [["prepare", "synth", f / "corpus", "--out", o("prep"), "--size", "64", "--quiet"],
                    ["prepare", "landmarks", f / "stills", "--format", "300w", "--out", o("lmprep"), "--size", "64", "--val-fraction", "0.3",
                     "--seed", "0", "--quiet"]],
        "train": [["train", f / "prep", "--out", o("run"), *small_train],
                  ["train", f / "prep", "--out", o("run"), *small_train, "--val-every", "1", "--seed", "0", "--lr", "0.001"]],
        "evaluate": [["evaluate", au, f / "prep", "--split", "all", "--out", o("e.parquet"), "--batch-size", "8", "--device", "cpu",
                      "--precision", "fp32", "--quiet"]],
        "annotate": [[*annotate, "--out", o("a.parquet"), "--batch-size", "8", "--workers", "1", "--every", "1", "--engine", "local",
                      "--precision", "fp32"],
                     [*annotate[:4], "--landmarks", "network", "--landmark-model", f / "lm.pt", "--device", "cpu", "--out", o("a2.parquet"), "--quiet"]],
        "score": [["score", f / "pred.parquet", "--labels", f / "corpus", "--kind", "disfa", "--by", "video", "--threshold", "1",
                   "--ci", "0.9", "--boot", "20", "--json", o("s.json"), "--csv", o("s.csv")]],
        "export": [["export", f / "pred.parquet", "--to", "openface", "--out", o("oface")]],
        "plot": [["plot", f / "pred.parquet", "--labels", f / "corpus", "--kind", "disfa", "--video", video, "--out", o("t.png")]],
        "render": [["render", video, "--model", au, "--landmarks", "truth", "--device", "cpu", "--max-frames", "2", "--out", o("r.mp4")],
                   ["render", video, "--model", au, "--landmarks", "network", "--landmark-model", f / "lm.pt", "--device", "cpu",
                    "--max-frames", "2", "--out", o("r2.mp4")]],
    }


def fuzz(w: Path) -> list[tuple]:
    """Every fuzz case's (command, option, label, exit code, what it said, whether a traceback showed)."""
    valid = {k: [[str(a) for a in argv] for argv in v] for k, v in fuzz_fixtures(w).items()}
    rows = []
    for name, argvs in valid.items():  # the valid invocations themselves, first
        for argv in argvs:
            code, text, escaped = run_in_process(argv)
            rows.append((name, "(valid)", " ".join(argv[1:])[:60], code, said(text), escaped or "Traceback" in text))
    for name, option, what, argv in fuzz_cases(w, valid):
        code, text, escaped = run_in_process(argv)
        rows.append((name, option, what, code, said(text), escaped or "Traceback" in text))
    return rows


def fuzz_table(rows: list[tuple], w: Path) -> str:
    """One line per option (its exit code for each value), then every case that hit a bug, in full."""
    bugs = [r for r in rows if r[3] in (3, "timeout") or r[5]]
    by_option: dict[tuple[str, str], list[str]] = {}
    for name, option, what, code, _, traceback in rows:
        if option != "(valid)":
            by_option.setdefault((name, option), []).append(f"{what} {code}{'!' if traceback else ''}")
    lines = [f"{len(rows)} cases: {sum(r[3] == 3 for r in rows)} exit 3, {sum(bool(r[5]) for r in rows)} tracebacks, "
             f"{sum(r[3] == 'timeout' for r in rows)} timeouts; exit codes "
             + ", ".join(f"{c}: {sum(r[3] == c for r in rows)}" for c in sorted({r[3] for r in rows}, key=str)), "",
             "| command | option | exit code per value |", "|---|---|---|"]
    lines += [f"| {name} | {option} | {', '.join(codes)} |" for (name, option), codes in by_option.items()]
    lines += ["", "| command | option | value | exit | what it says |", "|---|---|---|---|---|"]
    shown = bugs + [r for r in rows if r[1] == "(valid)"]
    lines += [f"| {n} | {o} | {v} | {c}{' (traceback!)' if t else ''} | {x.replace(str(w) + '/', '')[:300]} |" for n, o, v, c, x, t in shown]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=Path("/tmp/auhm-bad-inputs"))
    parser.add_argument("--fuzz-only", action="store_true", help="only the fuzz generated from the commands' parameters")
    args = parser.parse_args()
    w = args.work
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    (w / "emptydir").mkdir()
    (w / "file").write_text("a file where a folder should be")
    if args.fuzz_only:
        print(fuzz_table(fuzz(w), w))
        return

    from auhm.face.crop import CropConfig
    from auhm.models import build_model, save_checkpoint

    au = save_checkpoint(w / "au.pt", build_model("scratch", (1, 2, 12), preset="small"), {"crop": CropConfig(128).to_dict()})
    lm = save_checkpoint(w / "lm.pt", build_model("landmarks", preset="small"), {"task": "landmarks", "crop": CropConfig(128).to_dict()})
    auhm("synth", w / "corpus", "--subjects", "3", "--frames", "24", "--size", "160x120", "--quiet")
    videos = sorted(str(p) for p in (w / "corpus").rglob("*.avi"))
    a, b, c = videos[:3]
    (w / "empty.mp4").write_bytes(b"")
    (w / "random.mp4").write_bytes(os.urandom(5000))
    (w / "garbage.pt").write_bytes(os.urandom(3000))
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
    print()
    print(fuzz_table(fuzz(w), w))


if __name__ == "__main__":
    main()
