"""Code corpora (`tf-ada encode`, issue 15 sec. 1): whole recordings with full context, resumable."""
import json
import os

import numpy as np
import pytest

from tf_ada import configs, data, encode, evaluation
from tf_ada.train import Trainer, load_model


@pytest.fixture(scope="module")
def first_level(audio_shards, tmp_path_factory):
    """A tiny trained row-1.2 VQ-VAE (two steps), the stand-in for a shipped first-level model."""
    run = str(tmp_path_factory.mktemp("first") / "run")
    Trainer(configs.table1_row("1.2", "tiny", steps=2), audio_shards, run, log=lambda s: None).train()
    return run


def _assert_equally_near(model, x, a, b):
    """Codes `a` and `b` of recording x are equally near its queries (equal, or tied in float noise)."""
    qn = model.quantizer.normalize(model.encoder(x[None])[0]).numpy()
    dist = ((qn[:, None, :] - model.quantizer.codebook.numpy()[None]) ** 2).sum(-1)
    rows = np.arange(len(a))
    np.testing.assert_allclose(dist[rows, a], dist[rows, b], rtol=1e-4, atol=1e-5)


def test_encode_equals_encoding_the_whole_recording_at_once(audio_shards, first_level):
    model, _ = load_model(first_level)
    x = evaluation.read_recordings(audio_shards, ["f0.wav"])["f0.wav"].astype(np.int32)
    x = x[: 3001]  # not a multiple of the hop: padded at the end with silence to whole frames
    hop, pad = model.config.hop, data.load_manifest(audio_shards)["pad_value"]
    whole = np.concatenate([x, np.full(-x.size % hop, pad, np.int32)])
    m = encode.margin(model.config)
    assert m >= model.config.encoder_receptive_field and m % hop == 0
    queries = model.encoder(whole[None])[0].numpy()
    expected = model.encode(whole[None])[0].numpy()
    qn = model.quantizer.normalize(queries).numpy()
    cb = model.quantizer.codebook.numpy()
    dist = ((qn[:, None, :] - cb[None]) ** 2).sum(-1)  # [frames, K]
    for chunk in (7, 64, 10_000):  # many chunks with margins, a few, one
        # the encoder's queries of every frame are those of the whole recording (full context) ...
        got = encode.frames_with_context(lambda c: model.encoder(c), x, hop, m, chunk, pad)
        np.testing.assert_allclose(got, queries, rtol=1e-4, atol=1e-5)
        # ... and so are the codes, up to float noise between near-equal codebook entries (the tiny
        # model's data-initialised codebook holds near-duplicates): a code that differs is as near
        codes = encode.encode_recording(model, x, chunk_codes=chunk, pad_value=pad)
        assert codes.shape == expected.shape
        rows = np.arange(len(codes))
        np.testing.assert_allclose(dist[rows, codes], dist[rows, expected], rtol=1e-4, atol=1e-5)
    # without margins the chunk edges would show: the test can tell
    naive = np.concatenate([model.encoder(whole[None, i:i + 7 * hop])[0].numpy()
                            for i in range(0, whole.size, 7 * hop)])
    assert not np.allclose(naive, queries, rtol=1e-4, atol=1e-5)


def test_encode_corpus_writes_every_split_and_resumes(audio_shards, first_level, tmp_path):
    model, source = encode.source_of_run(first_level)
    out = str(tmp_path / "codes")
    logs = []
    manifest = encode.encode_corpus(model, source, audio_shards, out, chunk_codes=100, log=logs.append)
    src = data.load_manifest(audio_shards)
    assert manifest["kind"] == "codes" and manifest["dtype"] == "int16" and manifest["n_classes"] == 256
    assert manifest["hop"] == 8 and manifest["sample_rate"] == 2000
    assert manifest["source_checkpoint"].endswith("ckpt-2") and manifest["source_step"] == 2
    assert manifest["source_corpus_hash"] == data.corpus_hash(src) == manifest["corpus_hash"]
    assert sorted(manifest["splits"]) == sorted(src["splits"])
    with open(os.path.join(out, data.MANIFEST)) as f:  # the typed manifest is the file, key for key
        assert data.Manifest.read(out).to_dict() == json.load(f) == manifest.to_dict()
    assert manifest.source_step == 2 and manifest.hop == 8 and manifest.files.keys() == src.files.keys()
    assert any(line.startswith("encode: ") and "s of input" in line for line in logs)  # progress lines
    recs = evaluation.read_recordings(audio_shards, list(src["files"]))
    codes = evaluation.read_recordings(out, list(src["files"]))
    for name, info in src["files"].items():
        assert manifest["files"][name]["split"] == info["split"]
        whole = model.encode(recs[name][None].astype(np.int32))[0].numpy()  # 2 s: a multiple of the hop
        assert codes[name].dtype == np.int16 and codes[name].shape == whole.shape
        _assert_equally_near(model, recs[name].astype(np.int32), codes[name], whole)
    # a second run skips what is done; a third with another checkpoint is refused
    logs.clear()
    encode.encode_corpus(model, source, audio_shards, out, log=logs.append)
    assert any(f"{len(src['files'])} already encoded, 0 to do" in line for line in logs)
    with pytest.raises(data.DataError, match="source_checkpoint"):
        encode.encode_corpus(model, dict(source, source_checkpoint="other"), audio_shards, out, log=logs.append)
    # the same corpus reached by another path (moved, or through a link) resumes; another corpus is refused
    link = str(tmp_path / "audio_link")
    os.symlink(audio_shards, link)
    logs.clear()
    encode.encode_corpus(model, source, link, out, log=logs.append)
    assert any("0 to do" in line for line in logs)
    m = json.load(open(os.path.join(out, data.MANIFEST)))
    m["source_corpus_hash"] = "f" * 64
    json.dump(m, open(os.path.join(out, data.MANIFEST), "w"))
    with pytest.raises(data.DataError, match="source_corpus_hash"):
        encode.encode_corpus(model, source, audio_shards, out, log=logs.append)
    # the code shards train a second-level model as they are
    ds = data.excerpt_dataset(out, n_samples=64, batch_size=2, seed=0)
    assert next(iter(ds)).shape == (2, 64)


def test_encode_command_line(audio_shards, first_level, tmp_path, capsys):
    from tf_ada import cli
    out = str(tmp_path / "codes")
    assert cli.main(["encode", "--checkpoint", first_level, audio_shards, out]) == 0
    assert "codes in" in capsys.readouterr().out
    assert json.load(open(os.path.join(out, data.MANIFEST)))["hop"] == 8
    assert cli.main(["encode", "--checkpoint", first_level, str(tmp_path / "missing"), out]) == 2


def test_encode_with_a_shipped_model_equals_its_run(audio_shards, first_level, tmp_path, monkeypatch):
    """--pretrained NAME encodes with the shipped Polyak weights: the run folder's codes, its name in the manifest."""
    from tf_ada import cli, pretrained
    root = str(tmp_path / "shipped")
    pretrained.export_run(first_level, "enc-tiny", audio_shards, root=root)
    monkeypatch.setenv(pretrained.ENV_VAR, root)
    assert cli.main(["encode", "--pretrained", "enc-tiny", audio_shards, str(tmp_path / "a")]) == 0
    assert cli.main(["encode", "--checkpoint", first_level, audio_shards, str(tmp_path / "b")]) == 0
    a, b = (data.load_manifest(str(tmp_path / x)) for x in "ab")
    assert a["source_checkpoint"] == "pretrained:enc-tiny" and len(a["source_weights_sha256"]) == 64
    assert a["corpus_hash"] == b["corpus_hash"] == a["source_corpus_hash"]
    names = list(a["files"])
    codes_a = evaluation.read_recordings(str(tmp_path / "a"), names)
    codes_b = evaluation.read_recordings(str(tmp_path / "b"), names)
    for name in names:
        np.testing.assert_array_equal(codes_a[name], codes_b[name])
