"""The command line's own surface: help that reads like a classic CLI's, messages whole on one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import typer
from typer.testing import CliRunner

from auhm.cli import app

COMMANDS = ("synth", "landmarks", "heatmaps", "models", "prepare", "train", "evaluate", "annotate", "score", "export", "plot", "render")


def help_of(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    return result.output


def test_top_level_help_has_examples_and_the_exit_codes():
    text = help_of()
    assert "auhm annotate 'videos/*.mp4' --model" in text and "auhm score predictions.parquet" in text
    assert "2 usage error" in text and "3 internal error" in text and "<bool>" not in text


def test_every_option_and_argument_of_every_command_says_what_it_is_for():
    group = typer.main.get_command(app)
    assert sorted(group.commands) == sorted(COMMANDS)
    for name, command in group.commands.items():
        for param in command.params:
            assert (param.help or "").strip(), f"auhm {name} {param.opts[0] if param.opts else param.name}: no help"


def test_help_shows_plain_metavars_and_no_python_types():
    for name in COMMANDS:
        text = help_of(name)
        assert "Example" in text, name
        for typed in ("<bool>", "<list[str]>", "<str>", "<int>", "<path>", "{"):
            assert typed not in text, (name, typed)
    annotate = help_of("annotate")
    assert "annotate [OPTIONS] VIDEOS..." in annotate and re.search(r"--model\s+-m\s+CKPT\s+AU checkpoint", annotate)
    assert "--no-overwrite" not in annotate
    for name in ("annotate", "render"):  # --landmark-model serves auto too
        params = {p.name: p for p in typer.main.get_command(app).commands[name].params}
        assert "for --landmarks network; with auto, the tracker a video falls back on" in params["landmark_model"].help
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert "with `auto`, the tracker a video falls back on" in readme  # README and --help say the same


def test_a_long_output_path_is_printed_whole_on_one_line(tmp_path):
    out = tmp_path / ("a-rather-long-folder-name-" * 4) / "timeline-with-a-long-name.png"
    import numpy as np
    import pandas as pd

    pd.DataFrame({"video": "v.mp4", "frame": np.arange(5), "success": True, "AU01": np.linspace(0, 5, 5)}).to_parquet(tmp_path / "p.parquet")
    result = CliRunner().invoke(app, ["plot", str(tmp_path / "p.parquet"), "--out", str(out)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output.splitlines()


def test_an_internal_error_is_one_line_naming_its_log_and_exit_code_3(tmp_path, monkeypatch):
    """A bug (here a ValueError deep inside, which once passed for a usage error) is said as one, with
    no traceback on screen: the traceback goes to a log file, or on screen with --debug."""
    import tempfile

    import auhm.models.complexity as complexity

    def broken(*args, **kwargs):
        raise ValueError("an internal check failed\nsecond line")

    monkeypatch.setattr(complexity, "complexity_table", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "80"})
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    logs = list(tmp_path.glob("auhm-error-*.log"))
    assert len(logs) == 1
    assert lines[0] == (f"internal error ValueError: an internal check failed (a bug in auhm; the traceback is in {logs[0]}; "
                        "run auhm --debug … to print it)")
    log = logs[0].read_text()
    assert "Traceback (most recent call last)" in log and "in broken" in log and "second line" in log

    shown = CliRunner().invoke(app, ["--debug", "models"], env={"COLUMNS": "200"})
    assert shown.exit_code == 3 and "Traceback" in shown.output and "broken" in shown.output
    assert shown.output.strip().splitlines()[-1] == "internal error ValueError: an internal check failed"
    assert len(list(tmp_path.glob("auhm-error-*.log"))) == 1  # --debug writes no log


def test_usage_errors_stay_exit_code_2():
    result = CliRunner().invoke(app, ["models", "--preset", "huge"])
    assert result.exit_code == 2 and result.output.strip() == "usage error --preset huge: choose one of paper, small"
    result = CliRunner().invoke(app, ["models", "--n-aus", "0"])
    assert result.exit_code == 2 and result.output.strip().startswith("usage error --n-aus must be between 1 and")


# ── the exit-code contract: no bad argument or path reaches exit 3 ──────────────────────────
UNDER_A_FILE = "{tmp}/file/x"  # a folder that cannot be made: a regular file stands in its place

BAD = [
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--batch-size", "0"], "--batch-size must be at least 1, not 0"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--batch-size", "-1"], "--batch-size must be at least 1, not -1"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--lr", "-1"], "--lr must be at least 0, not -1"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--lr", "nan"], "--lr must be a finite number, not nan"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--threads", "-1"], "--threads must be between 1 and"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--threads", "0"], "--threads must be between 1 and"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--workers", "-1"], "--workers must be between 0 and"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--threads", "1", "--follow-load"], "--threads 1 with --follow-load: --follow-load chooses"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--folds", "-1"], "--folds must be at least 2, not -1"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--folds", "0"], "--folds must be at least 2, not 0"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--epochs", "-1"], "--epochs must be at least 1, not -1"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--max-steps", "0"], "--max-steps must be at least 1, not 0"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--val-every", "0"], "--val-every must be at least 1, not 0"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--seed", "-1"], "--seed must be between 0 and 4294967295, not -1"),
    (["train", "{tmp}/data", "--out", "{tmp}/run", "--method", "nope"], "--method nope: choose one of adaptation, attention"),
    (["train", "{tmp}/data", "--out", UNDER_A_FILE], "--out {tmp}/file/x: {tmp}/file is a file, not a folder"),
    (["train", "{tmp}/data", "--out", "/proc/auhm/run"], "--out /proc/auhm/run: cannot write in /proc"),
    (["synth", "{tmp}/s", "--fps", "nan"], "--fps must be a finite number, not nan"),
    (["synth", "{tmp}/s", "--fps", "1e9"], "--fps must be between 0 and 1000, not 1000000000"),
    (["synth", "{tmp}/s", "--seed", "-1"], "--seed must be between 0 and 4294967295, not -1"),
    (["synth", "{tmp}/s", "--first-subject", "998", "--subjects", "3"], "--first-subject + --subjects must be between 1 and 999"),
    (["synth", UNDER_A_FILE], "--out {tmp}/file/x: {tmp}/file is a file, not a folder"),
    (["score", "{tmp}/p.parquet", "--labels", "{tmp}/l.parquet", "--threshold", "nan"], "--threshold must be a finite number, not nan"),
    (["score", "{tmp}/p.parquet", "--labels", "{tmp}/l.parquet", "--threshold", "-1"], "--threshold must be greater than 0, not -1"),
    (["score", "{tmp}/p.parquet", "--labels", "{tmp}/l.parquet", "--threshold", "1e12"], "--threshold must be between 0 and 5"),
    (["score", "{tmp}/p.parquet", "--labels", "{tmp}/l.parquet", "--json", UNDER_A_FILE], "--json {tmp}/file/x: {tmp}/file is a file"),
    (["score", "{tmp}/p.parquet", "--labels", "{tmp}/l.parquet", "--csv", "/proc/auhm/s.csv"], "--csv /proc/auhm/s.csv: cannot write in /proc"),
    (["evaluate", "{tmp}/c.pt", "{tmp}/data", "--batch-size", "0"], "--batch-size must be at least 1, not 0"),
]


@pytest.mark.parametrize("argv, said", BAD, ids=[" ".join(a).replace("{tmp}/", "") for a, _ in BAD])
def test_a_bad_argument_or_path_is_a_usage_error_before_any_work(tmp_path, argv, said):
    """Exit 2 and one line that names the option and the value, before anything is read or written
    (the data and checkpoints named here do not even exist)."""
    (tmp_path / "file").write_text("a file where a folder should be")
    result = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in argv], env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"usage error {said.format(tmp=tmp_path)}"), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing written: no config.json, no corpus


def test_messages_print_what_the_user_typed_as_typed(monkeypatch):
    """No rich markup and no emoji codes in user text: `cuda:-1:` is not a thumbs-down."""
    import auhm.models.complexity as complexity
    from auhm.errors import UsageError

    def refuse(*args, **kwargs):
        raise UsageError("--device cuda:-1: [bold]no such device[/bold] :smile:")

    monkeypatch.setattr(complexity, "complexity_table", refuse)
    result = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert result.output.strip() == "usage error --device cuda:-1: [bold]no such device[/bold] :smile:"


def test_a_run_that_diverged_fails_with_exit_code_1_not_as_a_usage_error(monkeypatch, tmp_path):
    import auhm.train.folds as folds
    from auhm.errors import RunFailed

    def diverge(config):
        raise RunFailed("training diverged at step 3 (loss nan); lower --lr or use --precision fp32")

    monkeypatch.setattr(folds, "run_training", diverge)
    result = CliRunner().invoke(app, ["train", str(tmp_path), "--out", str(tmp_path / "run")], env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert result.output.strip() == "error training diverged at step 3 (loss nan); lower --lr or use --precision fp32"


def test_usage_errors_are_mapped_once_in_the_command_group():
    """No command catches UsageError itself: AuhmGroup maps it, for every command alike."""
    import inspect

    import auhm.cli as cli

    assert "except UsageError" not in inspect.getsource(cli).replace(inspect.getsource(cli.AuhmGroup), "")
