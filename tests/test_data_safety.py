"""Nothing a user owns is removed or overwritten, one job per folder, and untrusted data sets
(split names, MAESTRO CSVs, manifests) never lead reads or writes outside their folders."""
import csv
import json
import os
import shutil

import pytest

from tf_ada import data, fileio
from conftest import tone, tone_folder, write_audio

TINY = data.PrepareOptions(eval_fraction=0.3, min_seconds=0.5, chunk_samples=4000, shard_samples=8000)


def quiet(_):
    pass


@pytest.fixture
def src(tmp_path):
    """Four 0.6 s recordings."""
    return tone_folder(tmp_path / "src", 4, 200, 100)


def tree(folder):
    return {os.path.relpath(os.path.join(r, f), folder): open(os.path.join(r, f), "rb").read()
            for r, _, files in os.walk(folder) for f in files}


# --- never delete or overwrite what the user owns ---

def test_output_folder_equal_to_or_inside_source_is_refused_untouched(src):
    (src / "notes.tmp").write_text("mine")
    (src / "mix.wav.tmp").write_text("mine too")
    before = tree(src)
    with pytest.raises(data.DataError, match="source folder or inside it"):
        data.prepare(str(src), str(src), TINY, log=quiet)
    with pytest.raises(data.DataError, match="source folder or inside it"):
        data.prepare(str(src), str(src / "shards"), TINY, log=quiet)
    assert tree(src) == before


def test_user_files_in_output_survive_and_unlisted_shard_names_are_not_overwritten(src, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.tmp").write_text("mine")
    (out / "train-00000.tfrecord").write_text("my own file with a shard's name")
    with pytest.raises(data.DataError, match="not listed in manifest.json; not overwriting"):
        data.prepare(str(src), str(out), TINY, log=quiet)
    assert (out / "train-00000.tfrecord").read_text() == "my own file with a shard's name"
    (out / "train-00000.tfrecord").unlink()
    data.prepare(str(src), str(out), TINY, log=quiet)
    assert (out / "notes.tmp").read_text() == "mine"


def test_leftovers_of_a_killed_writer_are_removed_by_name_only(tmp_path):
    out = tmp_path / "codes"
    w = data.ShardWriter(str(out), kind="codes", dtype="int16", n_classes=8, sample_rate=1)
    w.add("s", "train", [1, 2, 3], {})
    w.close()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["writing"] = ["train-00001.tfrecord"]  # what a writer killed mid-shard leaves behind
    (out / "manifest.json").write_text(json.dumps(manifest))
    (out / ".train-00001.tfrecord.partial").write_text("half a shard")
    (out / "train-00099.tfrecord.tmp").write_text("the user's")
    w = data.ShardWriter(str(out), kind="codes", dtype="int16", n_classes=8, sample_rate=1)
    w.add("t", "train", [4, 5], {})
    m = w.close()
    assert not (out / ".train-00001.tfrecord.partial").exists()
    assert (out / "train-00099.tfrecord.tmp").read_text() == "the user's"
    assert sorted(m["shards"]) == ["train-00000.tfrecord", "train-00001.tfrecord"] and not m["writing"]
    assert [len(s) for s in data.read_sequences(str(out), "train")] == [3, 2]


def test_a_second_job_on_one_folder_is_refused(src, tmp_path):
    out = str(tmp_path / "out")
    holder = data.ShardWriter(out, kind="audio", dtype="uint8", n_classes=256, sample_rate=16000)
    with pytest.raises(fileio.FolderBusyError, match="another tf-ada job is using this folder"):
        data.prepare(str(src), out, TINY, log=quiet)
    holder.close()
    m = data.prepare(str(src), out, TINY, log=quiet)
    assert len(m["files"]) == 4


def test_output_from_another_source_is_refused(src, tmp_path):
    out = str(tmp_path / "out")
    data.prepare(str(src), out, TINY, log=quiet)
    other = tmp_path / "other"
    shutil.copytree(src, other)
    with pytest.raises(data.DataError, match=f"prepared from {src}, not {other}"):
        data.prepare(str(other), out, TINY, log=quiet)


def test_new_split_settings_are_refused_or_resplit_with_the_flag(src, tmp_path):
    out = str(tmp_path / "out")
    first = data.prepare(str(src), out, TINY, log=quiet)
    new = data.PrepareOptions(**{**TINY.__dict__, "seed": 7})
    with pytest.raises(data.DataError, match=r"other split settings \(seed\).*--resplit"):
        data.prepare(str(src), out, new, log=quiet)
    assert data.load_manifest(out)["files"] == first["files"]
    resplit = data.prepare(str(src), out, data.PrepareOptions(**{**new.__dict__, "resplit": True}), log=quiet)
    fresh = data.prepare(str(src), str(tmp_path / "fresh"), new, log=quiet)
    assert {k: v["split"] for k, v in resplit["files"].items()} == {k: v["split"] for k, v in fresh["files"].items()}
    assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "fresh"))  # old shards gone, none extra
    overrides = data.PrepareOptions(**{**new.__dict__, "split_overrides": {"r0.wav": "eval"}})
    with pytest.raises(data.DataError, match="split_overrides"):
        data.prepare(str(src), out, overrides, log=quiet)


@pytest.mark.skipif(not all(shutil.which(t) for t in ("npm", "fluidsynth", "sox")), reason="needs the corpus tools")
def test_corpus_build_refuses_a_wav_folder_with_user_files_before_rendering(tmp_path):
    from tf_ada.corpus import build
    wav = tmp_path / "corpus" / "wav"
    wav.mkdir(parents=True)
    (wav / "my_recording.wav").write_bytes(b"RIFF mine")
    (wav / "notes.txt").write_text("mine")
    with pytest.raises(data.DataError, match="my_recording.wav, notes.txt"):
        build.build(str(tmp_path / "corpus"), tiny=True, log=quiet)
    assert sorted(os.listdir(wav)) == ["my_recording.wav", "notes.txt"]
    assert (wav / "notes.txt").read_text() == "mine"


# --- untrusted data sets stay inside their folders ---

@pytest.mark.parametrize("split", ["../../escaped", "/tmp/abs", "a/b", "..", "", "x" * 65])
def test_unsafe_split_names_in_overrides_are_refused(src, tmp_path, split):
    options = data.PrepareOptions(**{**TINY.__dict__, "split_overrides": {"r1.wav": split}})
    with pytest.raises(data.DataError, match="split name .* is not allowed"):
        data.prepare(str(src), str(tmp_path / "a" / "b" / "out"), options, log=quiet)
    assert not [f for f in tree(tmp_path) if f.endswith(".tfrecord")]


def maestro(tmp_path, rows):
    folder = tmp_path / "maestro"
    folder.mkdir()
    for row in rows:
        path = folder / row["audio_filename"]
        if not row["audio_filename"].startswith(("..", "/")):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_audio(str(path), tone(0.6, 16000), 16000)
    with open(folder / "maestro.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["canonical_title", "split", "audio_filename"])
        w.writeheader()
        w.writerows(rows)
    return folder


def test_maestro_split_that_is_a_path_is_refused(tmp_path):
    folder = maestro(tmp_path, [{"canonical_title": "a", "split": "train", "audio_filename": "a.wav"},
                                {"canonical_title": "b", "split": str(tmp_path / "escaped"),
                                 "audio_filename": "b.wav"}])
    with pytest.raises(data.DataError, match=r"maestro.csv, line 3: split name"):
        data.prepare(str(folder), str(tmp_path / "out"), TINY, log=quiet)
    assert not [f for f in tree(tmp_path) if f.endswith(".tfrecord")]


def test_maestro_audio_filename_outside_the_folder_is_refused(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    write_audio(str(victim / "secret.wav"), tone(0.6, 16000), 16000)
    folder = maestro(tmp_path, [{"canonical_title": "a", "split": "train", "audio_filename": "a.wav"},
                                {"canonical_title": "s", "split": "train", "audio_filename": "../victim/secret.wav"}])
    with pytest.raises(data.DataError, match=r"line 3: path '../victim/secret.wav' leads outside"):
        data.prepare(str(folder), str(tmp_path / "out"), TINY, log=quiet)
    os.symlink(victim / "secret.wav", folder / "link.wav")  # a link out of the folder is refused the same way
    with open(folder / "maestro.csv", "a", newline="") as f:
        f.write("a,train,a.wav\n")
    rows = (folder / "maestro.csv").read_text().replace("../victim/secret.wav", "link.wav")
    (folder / "maestro.csv").write_text(rows)
    with pytest.raises(data.DataError, match="'link.wav' leads outside"):
        data.prepare(str(folder), str(tmp_path / "out"), TINY, log=quiet)


@pytest.mark.parametrize("shard", ["../outside.tfrecord", "/etc/passwd"])
def test_manifest_shard_names_outside_the_folder_are_refused(src, tmp_path, shard):
    out = tmp_path / "out"
    m = data.prepare(str(src), str(out), TINY, log=quiet).to_dict()
    m["shards"][shard] = {"split": "train", "n_records": 1, "n_samples": 1}
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(data.DataError, match="leads outside"):
        data.shard_paths(str(out), "train")


def test_manifest_cannot_make_a_writer_remove_other_files(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "codes"
    data.ShardWriter(str(out), kind="codes", dtype="int16", n_classes=8, sample_rate=1).close()
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["writing"] = ["../victim.txt"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(data.DataError, match="'../victim.txt' is not a shard name"):
        data.ShardWriter(str(out), kind="codes", dtype="int16", n_classes=8, sample_rate=1)
    assert victim.read_text() == "keep me"
