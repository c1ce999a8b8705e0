"""Loading a collection's features for an experiment: skipped items and duplicates."""

from __future__ import annotations

import logging
import shutil

import pandas as pd
import pytest

from mirsim.datasets import load_collection
from mirsim.errors import DataError
from mirsim.experiments import load_features, run_experiment


def _manifest(path, items: pd.DataFrame, copies: int) -> str:
    table = pd.concat([items[["path", "label", "group"]]] * copies, ignore_index=True)
    table.to_csv(path, index=False)
    return str(path)


def test_a_manifest_listing_every_sound_twice_gives_the_numbers_of_the_sounds_once(
        cyberlioz_dir, tmp_path, feature_cache, caplog):
    items = load_collection("cyberlioz", root=cyberlioz_dir).items
    once = load_features(_manifest(tmp_path / "once.csv", items, 1), "mfcc", cache=feature_cache)
    with caplog.at_level(logging.WARNING, logger="mirsim.experiments.experiment"):
        twice = load_features(_manifest(tmp_path / "twice.csv", items, 2), "mfcc",
                              cache=feature_cache)
    assert once.skipped == [] and len(once.X) == 78
    assert (twice.X == once.X).all() and (twice.labels == once.labels).all()
    assert twice.kept.tolist() == list(range(78))  # the first of each pair is kept
    assert [s["reason"] for s in twice.skipped] == [f"duplicate of {p}" for p in items["path"]]
    assert [s["id"] for s in twice.skipped] == items["path"].tolist()
    assert "78 duplicate item(s) dropped" in caplog.text
    p_at_1 = [run_experiment(fs, "euclidean", "loo").to_json()["metrics"]["p_at_1"]["mean"]
              for fs in (once, twice)]
    assert p_at_1[1] == p_at_1[0] < 0.9  # with the copies in, every query found its copy: 1.0


def test_a_copy_under_another_name_is_a_duplicate_and_error_mode_refuses_it(
        cyberlioz_dir, tmp_path, feature_cache):
    items = load_collection("cyberlioz", root=cyberlioz_dir).items.iloc[:6].copy()
    copy = tmp_path / "renamed copy.mp3"
    shutil.copyfile(items["path"].iloc[0], copy)
    rows = pd.concat([items, pd.DataFrame({"path": [str(copy)], "label": [99],
                                           "group": ["elsewhere"]})], ignore_index=True)
    manifest = _manifest(tmp_path / "m.csv", rows, 1)
    fs = load_features(manifest, "mfcc", cache=feature_cache)
    assert len(fs.X) == 6 and 99 not in fs.labels.tolist()
    assert fs.skipped == [{"id": str(copy), "source": str(copy),
                           "reason": f"duplicate of {items['path'].iloc[0]}"}]
    with pytest.raises(DataError, match=r"1 item\(s\) have the same audio as an earlier item, "
                                        r"e\.g\. .*renamed copy\.mp3: duplicate of "):
        load_features(manifest, "mfcc", cache=feature_cache, duplicates="error")
