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
