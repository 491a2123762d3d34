"""auhm render: a decodable overlay video with one frame per input frame, maps drawn where predicted."""

from __future__ import annotations

import numpy as np
import pytest

from auhm.face.crop import crop_affine
from auhm.video import VideoReader

from helpers import make_clip, small_checkpoint


def test_draw_heatmaps_puts_the_au_colour_where_the_map_peaks():
    from auhm.infer.render import au_colours, draw_heatmaps

    frame = np.zeros((100, 120, 3), np.uint8)
    affine = crop_affine(np.array([60.0, 50.0, 64.0]), 32)  # a 64-px square around (60, 50) → 32-px crop
    maps = np.zeros((2, 8, 8), np.float32)
    maps[1, 2, 6] = 5.0  # map cell (x=6, y=2) covers crop px 24–28 × 8–12 → frame px 76–84 × 34–42
    colours = au_colours(2)
    out = draw_heatmaps(frame, maps, affine, 32, colours, opacity=1.0)
    y, x = np.unravel_index(out.astype(int).sum(-1).argmax(), out.shape[:2])
    assert abs(x - 80) <= 2 and abs(y - 38) <= 2  # the brightest pixel is the peak, mapped back
    np.testing.assert_allclose(out[y, x] / out[y, x].max(), colours[1] / colours[1].max(), atol=0.05)  # in the AU's hue
    assert out[90, 10].max() == 0 and out[50, 40].max() == 0  # far from the peak: untouched


def test_render_synthetic_clip(tmp_path):
    from auhm.infer.render import PANEL_WIDTH, RenderConfig, render

    face = np.ones(14, bool)
    face[5:7] = False
    clip = make_clip(tmp_path, "r", 14, face)
    ckpt = small_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "overlay.mp4"
    res = render(clip, RenderConfig(model=ckpt, out=out, landmarks="truth", device="cpu", precision="fp32", batch_size=4, quiet=True))
    assert res.frames == 14 and res.faces == 12
    reader = VideoReader(out)
    assert (reader.info.width, reader.info.height) == (96 + PANEL_WIDTH, 80)
    assert sum(len(b) for b in reader.batches(16)) == 14

    limited = render(clip, RenderConfig(model=ckpt, out=tmp_path / "short.mp4", landmarks="truth", device="cpu", max_frames=5, quiet=True))
    assert limited.frames == 5 and sum(len(b) for b in VideoReader(tmp_path / "short.mp4").batches(16)) == 5


@pytest.mark.parametrize("case", ["--max-frames 0", "unwritable --out"])
def test_render_usage_errors_before_any_frame(tmp_path, case):
    from typer.testing import CliRunner
    from auhm.cli import app

    clip = make_clip(tmp_path, "u", 4, np.ones(4, bool))
    ckpt = small_checkpoint(tmp_path / "m.pt")
    (tmp_path / "file").write_text("a file where a folder should be")
    out = tmp_path / "file" / "o.mp4" if case == "unwritable --out" else tmp_path / "o.mp4"
    extra = ["--max-frames", "0"] if case == "--max-frames 0" else []
    res = CliRunner().invoke(app, ["render", str(clip), "--model", str(ckpt), "--out", str(out), "--landmarks", "truth", "--device", "cpu", *extra])
    assert res.exit_code == 2, res.output
    expected = ("usage error --max-frames must be at least 1, not 0" if extra
                else f"usage error --out {out}: {tmp_path / 'file'} is a file, not a folder")
    assert res.output.strip() == expected
    assert not out.exists()


def test_render_real_clip(media, tmp_path):
    from auhm.infer.sources import dlib_available
    from auhm.infer.render import RenderConfig, render

    if not dlib_available():
        pytest.skip("dlib is not installed")
    ckpt = small_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "real.mp4"
    res = render(media / "single_face.mp4", RenderConfig(model=ckpt, out=out, landmarks="dlib", device="cpu", max_frames=6, quiet=True))
    assert res.frames == 6 and res.faces >= 5
    assert sum(len(b) for b in VideoReader(out).batches(16)) == 6


def test_render_draws_each_face_with_the_id_of_annotates_table(tmp_path, monkeypatch):
    """The clip is tracked before it is drawn: what the tracker says at its end (here: its two
    first ids swapped, and one frame of id 0 handed to another id) is the id drawn on every frame
    of those faces."""
    import auhm.infer.render as render_module
    from auhm.face.linking import People
    from auhm.face.multitrack import MultiTracker
    from auhm.infer.render import RenderConfig, render
    from auhm.synth import SynthConfig, make_corpus

    make_corpus(SynthConfig(tmp_path / "crowd", subjects=1, seed=0, layout="crowd", frames=12, width=320, height=180, fps=10.0,
                            contact_sheet=False), quiet=True)
    clip = tmp_path / "crowd" / "videos" / "crowd000.mp4"
    ckpt = small_checkpoint(tmp_path / "m.pt")
    drawn: list[tuple[int, int]] = []  # (frame, id) of each face drawn
    panels = [0]  # frames drawn so far (one panel a frame, drawn after its faces)
    draw_panel = render_module.draw_panel

    def counted(*args, **kwargs):
        panels[0] += 1
        return draw_panel(*args, **kwargs)

    monkeypatch.setattr(render_module, "draw_face_id", lambda canvas, box, face: drawn.append((panels[0], face)))
    monkeypatch.setattr(render_module, "draw_panel", counted)

    def ids(name: str) -> list[int]:
        drawn.clear()
        panels[0] = 0
        render(clip, RenderConfig(model=ckpt, out=tmp_path / name, landmarks="truth", device="cpu", precision="fp32", batch_size=4, quiet=True))
        return list(drawn)

    plain = ids("plain.mp4")
    assert {0, 1} <= {f for _, f in plain}
    first = min(i for i, f in plain if f == 0)  # id 0's face there handed to a new id 7 (a fit that slid), the others swapped
    monkeypatch.setattr(MultiTracker, "people", lambda self: People({face: {0: 1, 1: 0}.get(face, face) for face in self._written.records}, {0: {first: 7}}))
    assert ids("joined.mp4") == [(i, 7 if (i, f) == (first, 0) else {0: 1, 1: 0}.get(f, f)) for i, f in plain]
