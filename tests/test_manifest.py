"""The typed manifest (issue 14): `data.Manifest.read(folder).to_dict()` is the folder's manifest.json
unchanged (keys this version does not know included), and a manifest that cannot be read names the
file and the key."""
import dataclasses
import json
import os

import numpy as np
import pytest

from tf_ada import data, fileio

SMALL = data.PrepareOptions(eval_fraction=0.2, chunk_samples=8000, shard_samples=20000)


def on_disk(folder):
    with open(os.path.join(folder, data.MANIFEST)) as f:
        return f.read()


def assert_round_trip(folder):
    m = data.Manifest.read(str(folder))
    text = on_disk(folder)
    assert m.to_dict() == json.loads(text)
    assert json.dumps(m.to_dict(), indent=1, sort_keys=True) == text  # the bytes the writer writes
    return m


@pytest.fixture
def prepared(recordings, tmp_path):
    out = str(tmp_path / "out")
    returned = data.prepare(str(recordings), out, SMALL, log=lambda s: None)
    return out, returned


@pytest.fixture
def code_corpus(tmp_path):
    """A code corpus as `tf_ada.encode.encode_corpus` writes one (its provenance keys; a null step,
    as from a model card without `steps`)."""
    out = str(tmp_path / "codes")
    w = data.ShardWriter(out, kind="codes", dtype="int16", n_classes=16, sample_rate=2000.0, chunk_samples=300,
                         shard_samples=500)
    w.update(source_checkpoint="pretrained:x", source_step=None, source_weights_sha256="ab" * 32,
             source_experiment="table1_1_2_tiny", source_weights="polyak", hop=8, source_data="/data",
             source_kind="audio", source_corpus_hash="0" * 64, source_sample_rate=16000,
             encoding="codes of table1_1_2_tiny (hop 8)", eval_split="eval")
    rng = np.random.default_rng(0)
    for i, n in enumerate([400, 250, 700]):
        w.add(f"r{i}.wav", "eval" if i == 2 else "train", rng.integers(0, 16, n),
              {"piece": f"w{i}", "sha256": "", "duration_seconds": n / 2000})
    w.close()
    return out


def test_prepared_folder_round_trips_and_reads_typed(prepared):
    out, returned = prepared
    m = assert_round_trip(out)
    assert returned == m and returned.to_dict() == m.to_dict()
    assert m.format == data.FORMAT and m.kind == "audio" and m.dtype == "uint8" and m.pad_value == 128
    assert m.source and m.encoding == "mu-law" and m.split_settings["seed"] == 0 and m.writing == ()
    assert all(isinstance(e, data.RecordingEntry) and e.shard in m.shards for e in m.files.values())
    assert all(isinstance(e, data.SkippedEntry) and e.reason for e in m.skipped.values())
    assert set(m.totals) == set(m.splits) and all(isinstance(t, data.SplitTotals) for t in m.totals.values())
    assert sum(t.n_samples for t in m.totals.values()) == sum(s.n_samples for s in m.shards.values())
    assert m.corpus_hash == data.corpus_hash(m) == data.corpus_hash(m.to_dict()) == data.corpus_hash(out)
    assert m.extra == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.kind = "codes"


def test_code_corpus_round_trips_with_its_provenance(code_corpus):
    m = assert_round_trip(code_corpus)
    raw = json.loads(on_disk(code_corpus))
    assert "source_step" in raw and raw["source_step"] is None  # an explicit null stays one
    assert "writing" in raw and "seed" not in raw and "source" not in raw  # absent keys stay absent
    assert m.kind == "codes" and m.hop == 8 and m.sample_rate == 2000.0 and m.source_step is None
    assert m.source_checkpoint == "pretrained:x" and m.files["r0.wav"].piece == "w0"
    assert [n for n in m.split_files("train")] == ["r0.wav", "r1.wav"]


def test_unknown_keys_are_kept_through_read_and_through_a_writer(code_corpus):
    path = os.path.join(code_corpus, data.MANIFEST)
    raw = json.loads(on_disk(code_corpus))
    raw["added_by_a_later_version"] = {"x": [1, 2]}
    raw["files"]["r0.wav"]["loudness"] = -23.0
    raw["shards"]["train-00000.tfrecord"]["bytes"] = 123
    fileio.atomic_write_json(path, raw, sort_keys=True)
    m = assert_round_trip(code_corpus)
    assert m.extra == {"added_by_a_later_version": {"x": [1, 2]}}
    assert m.files["r0.wav"].extra == {"loudness": -23.0}
    w = data.ShardWriter(code_corpus, kind="codes", dtype="int16", n_classes=16, sample_rate=2000.0)
    w.add("r3.wav", "train", np.arange(16), {})
    w.close()
    after = json.loads(on_disk(code_corpus))
    assert after["added_by_a_later_version"] == {"x": [1, 2]} and after["files"]["r0.wav"]["loudness"] == -23.0
    assert after["shards"]["train-00000.tfrecord"]["bytes"] == 123 and "r3.wav" in after["files"]


def edit_manifest(folder, change):
    path = os.path.join(folder, data.MANIFEST)
    raw = json.loads(on_disk(folder))
    change(raw)
    with open(path, "w") as f:
        json.dump(raw, f)
    return path


@pytest.mark.parametrize("key", ["dtype", "files", "shards", "pad_value", "chunk_samples"])
def test_missing_required_key_names_the_file_and_the_key(code_corpus, key):
    path = edit_manifest(code_corpus, lambda raw: raw.pop(key))
    with pytest.raises(data.DataError) as e:
        data.Manifest.read(code_corpus)
    assert path in str(e.value) and repr(key) in str(e.value)
    with pytest.raises(data.DataError, match=repr(key)):  # the older name and every reader say the same
        data.eval_dataset(code_corpus, n_samples=10, batch_size=1)


def test_missing_key_of_an_entry_names_the_entry(code_corpus):
    path = edit_manifest(code_corpus, lambda raw: raw["files"]["r1.wav"].pop("shard"))
    with pytest.raises(data.DataError) as e:
        data.Manifest.read(code_corpus)
    assert path in str(e.value) and "'r1.wav'" in str(e.value) and "'shard'" in str(e.value)


@pytest.mark.parametrize("change, words", [
    (lambda raw: raw.update(n_classes="16"), "'n_classes'"),
    (lambda raw: raw.update(chunk_samples=None), "'chunk_samples' is null"),
    (lambda raw: raw.update(files=[]), "'files' is not a JSON object"),
    (lambda raw: raw["shards"].update({"x.tfrecord": 3}), "expected a JSON object"),
    (lambda raw: raw.update(format="tf-ada-shards/0"), "format 'tf-ada-shards/0'"),
])
def test_wrong_values_name_the_file(code_corpus, change, words):
    path = edit_manifest(code_corpus, change)
    with pytest.raises(data.DataError) as e:
        data.Manifest.read(code_corpus)
    assert path in str(e.value) and words in str(e.value)


def test_not_an_object_and_not_json(tmp_path):
    (tmp_path / data.MANIFEST).write_text("[1, 2]")
    with pytest.raises(data.DataError, match="expected a JSON object"):
        data.Manifest.read(str(tmp_path))
    (tmp_path / data.MANIFEST).write_text("{oops")
    with pytest.raises(data.DataError, match="not valid JSON"):
        data.Manifest.read(str(tmp_path))


def test_dict_reads_and_dict_arguments_still_work(prepared):
    """Callers not yet moved to attributes (and manifests passed as dicts) keep working."""
    out, _ = prepared
    m = data.load_manifest(out)
    raw = json.loads(on_disk(out))
    assert isinstance(m, data.Manifest)
    assert m["files"] == raw["files"] and m.get("eval_split", "x") == "eval" and m.get("nope") is None
    assert "corpus_hash" in m and "nope" not in m and set(m.keys()) == set(raw)
    assert data.summary(raw) == data.summary(m)
    assert data.Manifest.of(raw) == m and data.Manifest.of(out) == m and data.Manifest.of(m) is m
