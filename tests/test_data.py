import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import data, ops
from tf_ada.audio import load_audio
from conftest import tone, write_audio

GOOD = {"mono16k.wav", "stereo44k.flac", os.path.join("sub", "song.mp3"), os.path.join("sub", "notes.ogg"), "float.wav"}
BAD = {"short.wav": "too short", "silent.wav": "all silent", "empty.wav": "empty", "corrupt.flac": "cannot decode"}
SMALL = data.PrepareOptions(eval_fraction=0.2, chunk_samples=8000, shard_samples=20000)


def test_prepare_reports_bad_files_and_writes_manifest(recordings, tmp_path):
    out = str(tmp_path / "out")
    manifest = data.prepare(str(recordings), out, SMALL, log=lambda s: None)
    on_disk = json.load(open(os.path.join(out, "manifest.json")))
    assert on_disk["files"] == manifest["files"]
    assert set(manifest["files"]) == GOOD
    assert {k: v["reason"] for k, v in manifest["skipped"].items()}.keys() == BAD.keys()
    for name, word in BAD.items():
        assert word in manifest["skipped"][name]["reason"]
    info = manifest["files"]["stereo44k.flac"]
    assert info["n_samples"] == 40000 and info["duration_seconds"] == 2.5
    assert len(info["sha256"]) == 64 and info["source"].endswith("stereo44k.flac")
    totals = manifest["totals"]
    assert sum(t["n_files"] for t in totals.values()) == 5 and set(totals) == {"train", "eval"}
    assert sum(t["n_samples"] for t in totals.values()) == sum(f["n_samples"] for f in manifest["files"].values())
    # every stored sample is the mu-law of the decoded recording
    seqs = {}
    for split in ("train", "eval"):
        for path in data.shard_paths(out, split):
            for rec in tf.data.TFRecordDataset(path):
                ex = tf.train.Example.FromString(rec.numpy())
                name = ex.features.feature["source"].bytes_list.value[0].decode()
                off = ex.features.feature["offset"].int64_list.value[0]
                raw = ex.features.feature["data"].bytes_list.value[0]
                seqs.setdefault(name, {})[off] = np.frombuffer(raw, np.uint8)
    flac = np.concatenate([seqs["stereo44k.flac"][k] for k in sorted(seqs["stereo44k.flac"])])
    np.testing.assert_array_equal(flac, ops.mu_law_encode(load_audio(str(recordings / "stereo44k.flac"))).numpy())
    assert sorted(seqs["stereo44k.flac"]) == [0, 8000, 16000, 24000, 32000]


def test_split_is_by_piece_deterministic_and_overridable():
    recs = [data.Recording(name=f"p{i // 2}/take{i % 2}.wav", path="", piece=f"p{i // 2}") for i in range(400)]
    a = data.assign_splits(recs, 0.05, seed=1)
    assert a == data.assign_splits(list(reversed(recs)), 0.05, seed=1)
    for i in range(0, 400, 2):  # both takes of a piece share the split
        assert a[recs[i].name] == a[recs[i + 1].name]
    held = sum(v == "eval" for v in a.values()) / 400
    assert 0.01 < held < 0.12
    assert a != data.assign_splits(recs, 0.05, seed=2)
    b = data.assign_splits(recs, 0.05, seed=1, overrides={"p3": "eval", "p7/take0.wav": "test"})
    assert b["p3/take0.wav"] == b["p3/take1.wav"] == "eval" and b["p7/take0.wav"] == "test"
    two = [data.Recording(name=n, path="", piece=n) for n in ("a", "b")]
    assert sorted(data.assign_splits(two, 0.01, 0).values()) == ["eval", "train"]


def test_prepare_resumes_after_interruption_without_duplicates(recordings, tmp_path, monkeypatch):
    ref = data.prepare(str(recordings), str(tmp_path / "ref"), SMALL, log=lambda s: None)
    out = str(tmp_path / "out")
    calls = {"n": 0}
    real = data.load_audio

    def flaky(path, rate):
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return real(path, rate)

    monkeypatch.setattr(data, "load_audio", flaky)
    with pytest.raises(KeyboardInterrupt):
        data.prepare(str(recordings), out, SMALL, log=lambda s: None)
    partial = data.load_manifest(out)
    assert 0 < len(partial["files"]) < len(GOOD)
    open(os.path.join(out, "notes.tmp"), "w").write("the user's file, not ours")
    monkeypatch.setattr(data, "load_audio", real)
    logs = []
    final = data.prepare(str(recordings), out, SMALL, log=logs.append)
    assert f"{len(partial['files'])} already done" in logs[0]
    assert {k: (v["split"], v["n_samples"], v["sha256"]) for k, v in final["files"].items()} == \
           {k: (v["split"], v["n_samples"], v["sha256"]) for k, v in ref["files"].items()}
    assert [f for f in os.listdir(out) if f.endswith((".tmp", ".partial"))] == ["notes.tmp"]
    assert open(os.path.join(out, "notes.tmp")).read() == "the user's file, not ours"
    stored = sum(len(s) for split in ("train", "eval") for s in data.read_sequences(out, split))
    assert stored == sum(v["n_samples"] for v in ref["files"].values())
    # a third run does nothing
    again = data.prepare(str(recordings), out, SMALL, log=lambda s: None)
    assert again["shards"] == final["shards"]


def test_maestro_layout_keeps_csv_splits(tmp_path):
    src = tmp_path / "maestro"
    (src / "2004").mkdir(parents=True)
    rows = []
    for i, split in enumerate(["train", "train", "validation", "test"]):
        name = f"2004/piece{i}.wav"
        write_audio(str(src / name), tone(1.2, 16000, 200 + 50 * i), 16000)
        rows.append({"canonical_composer": "X", "canonical_title": f"T{i}", "split": split,
                     "audio_filename": name, "midi_filename": name.replace("wav", "midi")})
    with open(src / "maestro-v3.0.0.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    m = data.prepare(str(src), str(tmp_path / "out"), log=lambda s: None)
    assert {k: v["split"] for k, v in m["files"].items()} == {r["audio_filename"]: r["split"] for r in rows}
    assert m["eval_split"] == "validation"


def test_missing_folder_and_empty_folder_errors(tmp_path):
    with pytest.raises(data.DataError, match="not a folder"):
        data.prepare(str(tmp_path / "nope"), str(tmp_path / "o"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="no recordings"):
        data.prepare(str(tmp_path / "empty"), str(tmp_path / "o"))
    with pytest.raises(data.DataError, match="tf-ada prepare"):
        data.load_manifest(str(tmp_path / "empty"))


@pytest.fixture
def code_shards(tmp_path):
    """Integer sequences with known content: record i of length n_i holds (i * 1000 + t) % 300."""
    w = data.ShardWriter(str(tmp_path / "codes"), kind="codes", dtype="int16", n_classes=300, sample_rate=2000,
                         chunk_samples=500, shard_samples=1500)
    lengths = [1200, 700, 333, 2500]
    for i, n in enumerate(lengths):
        w.add(f"seq{i}", "eval" if i == 3 else "train", (i * 1000 + np.arange(n)) % 300, {})
    w.close()
    return str(tmp_path / "codes"), lengths


def test_excerpts_are_contiguous_slices_with_context(code_shards):
    path, _ = code_shards
    ds = data.excerpt_dataset(path, n_samples=96, left_context=32, batch_size=8, seed=3)
    batches = list(ds.take(20).as_numpy_iterator())
    assert all(b.shape == (8, 128) and b.dtype == np.int32 for b in batches)
    x = np.concatenate(batches)
    diffs = (x[:, 1:] - x[:, :-1]) % 300
    assert np.all(diffs == 1)  # every excerpt is a contiguous slice of one record
    again = data.excerpt_dataset(path, 96, 8, left_context=32, seed=3).take(20)
    again = np.concatenate(list(again.as_numpy_iterator()))
    np.testing.assert_array_equal(x, again)
    assert len(np.unique(x[:, 0])) > 20  # offsets vary


def test_excerpt_errors_name_the_problem(code_shards):
    path, _ = code_shards
    with pytest.raises(data.DataError, match="longer than its records"):
        data.excerpt_dataset(path, n_samples=600, batch_size=2)
    with pytest.raises(data.DataError, match="no shards for split 'test'"):
        data.excerpt_dataset(path, n_samples=10, batch_size=2, split="test")


def test_eval_dataset_covers_split_exactly_once(code_shards):
    path, lengths = code_shards
    L, C = 128, 40
    seen = []
    for x, mask in data.eval_dataset(path, n_samples=L, batch_size=3, left_context=C).as_numpy_iterator():
        assert x.shape[1] == C + L and mask.shape[1] == L
        seen.append(x[:, C:][mask > 0])
    seen = np.concatenate(seen)
    want = (3 * 1000 + np.arange(lengths[3])) % 300
    np.testing.assert_array_equal(seen, want)  # each target once, in order
    x, mask = next(data.eval_dataset(path, n_samples=L, batch_size=2, left_context=C).as_numpy_iterator())
    np.testing.assert_array_equal(x[1, :C], want[L - C:L])  # second window's context is real data
    assert np.all(x[0, :C] == 0)  # first window: padded context


def test_codes_out_of_range_rejected(tmp_path):
    w = data.ShardWriter(str(tmp_path / "c"), kind="codes", dtype="int16", n_classes=8, sample_rate=1)
    with pytest.raises(data.DataError, match="outside"):
        w.add("s", "train", np.array([1, 9]), {})


def test_corpus_hash_depends_on_works_splits_and_audio_not_formatting():
    files = {"a.wav": {"split": "train", "piece": "w1", "sha256": "00ff", "n_samples": 10, "shard": "train-00000"},
             "b.wav": {"split": "eval", "piece": "w2", "sha256": "11ee", "n_samples": 20, "shard": "eval-00000"}}
    base = data.corpus_hash({"files": files})
    # formatting, shard layout and unrelated fields do not matter
    reordered = {k: dict(reversed(list(v.items())), shard="x", n_samples=0) for k, v in reversed(list(files.items()))}
    assert data.corpus_hash({"files": reordered, "format": "other", "created": "now"}) == base
    moved = {**files, "a.wav": dict(files["a.wav"], split="eval")}
    assert data.corpus_hash({"files": moved}) != base
    changed = {**files, "b.wav": dict(files["b.wav"], sha256="11ef")}
    assert data.corpus_hash({"files": changed}) != base
    regrouped = {**files, "b.wav": dict(files["b.wav"], piece="w1")}
    assert data.corpus_hash({"files": regrouped}) != base


def test_prepare_splits_by_the_works_it_is_given(tmp_path):
    """PrepareOptions.pieces names the works: movements of one work share a split and a cluster."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        for m in range(2):
            write_audio(str(src / f"w{i}_m{m}.wav"), tone(1.2, 16000, 200 + 50 * i), 16000)
    pieces = {f"w{i}_m{m}.wav": f"work{i}" for i in range(6) for m in range(2)}
    options = data.PrepareOptions(eval_fraction=0.3, seed=3, min_seconds=0.5, pieces=pieces)
    manifest = data.prepare(str(src), str(tmp_path / "out"), options, log=lambda s: None)
    files = manifest["files"]
    for i in range(6):
        assert files[f"w{i}_m0.wav"]["split"] == files[f"w{i}_m1.wav"]["split"]
        assert files[f"w{i}_m0.wav"]["piece"] == f"work{i}"
    assert {f["split"] for f in files.values()} == {"train", "eval"}
