"""The test suite's own lookup of the real test media: a clone anywhere finds them through AUHM_MEDIA."""

from __future__ import annotations

from pathlib import Path

from helpers import TESTS, media_dir


def test_auhm_media_names_the_folder_else_shared_media_beside_the_repository(tmp_path):
    assert media_dir({"AUHM_MEDIA": str(tmp_path)}) == tmp_path
    assert media_dir({}) == TESTS.parent.parent / "shared" / "media" == Path(__file__).resolve().parents[2] / "shared" / "media"
