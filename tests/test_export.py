"""`tf-ada export RUN OUT.keras --saved-model DIR`: the exported models give the same logits and
codes as `load_model(RUN)` (the Polyak-averaged weights)."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import cli, configs, export
from tf_ada.models import ADA, WaveNet
from tf_ada.train import Trainer, load_model


@pytest.fixture(scope="module", params=["1.2", "1.1"], ids=["vq-ada", "wavenet"])
def trained_run(request, audio_shards, tmp_path_factory):
    """A tiny run trained 2 steps with Polyak decay 0.9, so the averaged and live weights differ."""
    exp = configs.override(configs.table1_row(request.param, "tiny"), {"train.polyak_decay": 0.9})
    out = str(tmp_path_factory.mktemp("export") / "run")
    Trainer(exp, audio_shards, out, log=lambda s: None).train()
    return out


def audio(batch=2, length=64):
    return tf.constant(np.random.default_rng(1).integers(0, 256, (batch, length)), tf.int32)


def outputs(model, x):
    """(logits, codes or None) of a WaveNet or an ADA."""
    if isinstance(model, ADA):
        out = model(x, training=False)
        return out.logits.numpy(), out.codes.numpy()
    return model(x, training=False).numpy(), None


def test_exported_models_give_the_run_s_logits_and_codes(capsys, trained_run, tmp_path):
    keras_path, saved = str(tmp_path / "model.keras"), str(tmp_path / "saved")
    assert cli.main(["export", trained_run, keras_path, "--saved-model", saved]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith("export: ") and keras_path in out[0] and saved in out[0]
    reference, _ = load_model(trained_run)
    x = audio()
    logits, codes = outputs(reference, x)

    restored = export.load_keras(keras_path)
    assert type(restored) is type(reference) and restored.config == reference.config
    got_logits, got_codes = outputs(restored, x)
    np.testing.assert_allclose(got_logits, logits, rtol=0, atol=1e-6)
    if codes is not None:
        np.testing.assert_array_equal(got_codes, codes)

    served = tf.saved_model.load(saved)
    result = served.serve(x)
    # the SavedModel runs the graph of `serving_functions`: the same graph over load_model's model
    # gives exactly its outputs (so it holds the run's weights and statistics)
    traced = export.serving_functions(reference)["serve"](x)
    assert sorted(result) == sorted(traced)
    for name, value in traced.items():
        np.testing.assert_array_equal(result[name].numpy(), value.numpy())
    if codes is not None:
        np.testing.assert_array_equal(served.encode(x)["codes"].numpy(), result["codes"].numpy())
        assert_same_codes_up_to_ties(reference, x, result["codes"].numpy(), codes)
    else:
        assert isinstance(restored, WaveNet)
    if codes is None or np.array_equal(result["codes"].numpy(), codes):  # else a tie moved the logits
        np.testing.assert_allclose(result["logits"].numpy(), logits, rtol=0, atol=1e-5)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=x, logits=logits).numpy()
        np.testing.assert_allclose(result["nll_per_step"].numpy(), nll, rtol=0, atol=1e-5)


def assert_same_codes_up_to_ties(model, x, got, expected):
    """Graph and eager execution round differently: codes may differ only where two codes are
    equally near the query within float32 rounding (a near-duplicate pair in a 2-step codebook)."""
    differ = np.argwhere(got != expected)
    if len(differ):
        q = model.quantizer.normalize(model.encoder(x), training=False)
        d = model.quantizer.distances(tf.reshape(q, [-1, model.config.code_channels])).numpy()
        d = d.reshape(got.shape + (-1,))
        for b, t in differ:
            gap = abs(d[b, t, got[b, t]] - d[b, t, expected[b, t]])
            assert gap <= 1e-4 * (1.0 + abs(d[b, t, expected[b, t]])), f"code ({b}, {t}) differs by {gap}"


def test_saved_model_takes_any_batch_and_length(trained_run, tmp_path):
    model, _ = load_model(trained_run)
    hop = model.config.hop if isinstance(model, ADA) else 1
    export.export_saved_model(model, str(tmp_path / "saved"))
    served = tf.saved_model.load(str(tmp_path / "saved"))
    traced = export.serving_functions(model)["serve"]
    for batch, length in [(1, 8 * hop), (3, 40 * hop)]:
        x = audio(batch, length)
        got = served.serve(x)["logits"].numpy()
        assert got.shape == (batch, length, 256)
        np.testing.assert_array_equal(got, traced(x)["logits"].numpy())


def test_export_of_a_missing_run_is_one_line(capsys, tmp_path):
    assert cli.main(["export", str(tmp_path / "none"), str(tmp_path / "m.keras")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a folder" in err[0]


def test_keras_archive_keeps_the_codebook_and_its_statistics(tmp_path):
    """Every variable of a VQ-VAE (codebook, K-means sums and counts, query statistics) round-trips."""
    from tf_ada.train import build_model
    model = build_model(dataclasses.replace(configs.table1_row("1.2", "tiny").model))
    for i, v in enumerate(model.variables):
        if v.dtype == tf.float32:
            v.assign(tf.fill(v.shape, float(i)))
    restored = export.load_keras(export.export_keras(model, str(tmp_path / "m.keras")))
    assert [v.path for v in restored.variables] == [v.path for v in model.variables]
    for a, b in zip(model.variables, restored.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
