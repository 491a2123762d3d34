import numpy as np

from auhm.data.shards import ShardDataset, ShardRows, list_shards


def test_shard_round_trip(tmp_path):
    rows = ShardRows(video="v.avi", subject="SN001", split="part1", aus=(1, 12))
    rng = np.random.default_rng(0)
    for i in range(5):
        img = np.full((32, 32, 3), i * 40, np.uint8)
        lm = rng.uniform(0, 32, (68, 2))
        labels = np.array([i % 6, np.nan if i == 2 else 1.0], np.float32)
        rows.add(i * 2, img, lm, np.eye(2, 3), labels)
    rows.write(tmp_path / "shards" / "v.parquet")
    (tmp_path / "shards" / ".v2.parquet.123.tmp").write_bytes(b"half")
    paths = list_shards(tmp_path)
    assert [p.name for p in paths] == ["v.parquet"]
    ds = ShardDataset(paths)
    assert ds.aus == [1, 12] and len(ds) == 5
    item = ds[2]
    assert item["image"].shape == (32, 32, 3) and abs(int(item["image"].mean()) - 80) <= 2
    assert np.isnan(item["labels"][1]) and item["labels"][0] == 2
    assert ds.frame.tolist() == [0, 2, 4, 6, 8]
    np.testing.assert_array_equal(ds.affines[3], np.eye(2, 3))
    assert ShardDataset(paths, splits=["part1"]).__len__() == 5
    try:
        ShardDataset(paths, splits=["part2"])
    except ValueError as e:
        assert "no frames" in str(e)
    else:
        raise AssertionError("empty split selection must fail")


def test_reduced_decode_is_an_area_downscale_with_shifted_pixel_centres():
    import cv2

    from auhm.data.shards import decode_jpeg, encode_jpeg, jpeg_reduction

    assert [jpeg_reduction(256, s) for s in (256, 200, 128, 64, 32, 20)] == [1, 1, 2, 4, 8, 8]
    rng = np.random.default_rng(1)
    img = cv2.resize(rng.integers(0, 100, (16, 16, 3), dtype=np.uint8), (256, 256), interpolation=cv2.INTER_CUBIC)  # dark
    img[100:104, 60:64] = 255  # a 4-px white square: centre (61.5, 101.5)
    data = encode_jpeg(img, quality=95)
    full = decode_jpeg(data)
    for r in (2, 4):
        small = decode_jpeg(data, r)
        assert small.shape == (256 // r, 256 // r, 3)
        # independent reference: an area average of the full decode
        area = cv2.resize(full, (256 // r, 256 // r), interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - area.astype(int)).mean() < 3
    small = decode_jpeg(data, 2).astype(float)
    w = (small[..., 0] > 200) * small[..., 0]
    ys, xs = np.nonzero(w)
    centroid = np.array([(xs * w[ys, xs]).sum(), (ys * w[ys, xs]).sum()]) / w[ys, xs].sum()
    np.testing.assert_allclose(centroid, (np.array([61.5, 101.5]) + 0.5) / 2 - 0.5, atol=0.3)
