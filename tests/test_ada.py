import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import configs
from tf_ada.models.ada import ADA, reconstruct_audio


@pytest.mark.parametrize("quantizer", ["vq", "amae", "amae_softmax"])
def test_ada_outputs_every_term(quantizer):
    cfg = configs.ada("tiny", quantizer=quantizer, input_kind="one_hot", hop=8)
    ada = ADA(cfg)
    x = np.random.RandomState(0).randint(0, 256, (2, 64)).astype(np.int32)
    out = ada(x, training=False)
    assert out.logits.shape == (2, 64, 256) and out.codes.shape == (2, 8)
    scalars = out.scalars()
    terms = {"commitment", "codebook"} if quantizer == "vq" else {"diversity"}
    expected = {"loss", "nll", "perplexity", "codes_in_use"} | terms
    assert set(scalars) == expected
    np.testing.assert_allclose(float(scalars["loss"]), float(out.nll + out.quantizer.loss), rtol=1e-6)
    np.testing.assert_array_equal(ada.encode(x).numpy(), out.codes.numpy())


def test_codes_condition_the_local_model_only_through_their_frames():
    """Changing code f changes logits only where the modulator's receptive field reaches."""
    cfg = configs.ada("tiny", quantizer="amae", hop=8)
    ada = ADA(cfg)
    x = np.random.RandomState(1).randint(0, 256, (1, 256)).astype(np.int32)
    codes = ada.encode(x).numpy()
    bias = ada.biases(codes).numpy()
    codes2 = codes.copy()
    codes2[0, 16] = (codes2[0, 16] + 1) % 256
    bias2 = ada.biases(codes2).numpy()
    changed = np.nonzero(np.abs(bias2 - bias).sum(-1)[0] > 0)[0]
    half = cfg.modulator.half_receptive_field
    assert changed.min() >= 16 - half and changed.max() <= 16 + half and 16 in changed


def test_decode_uses_the_codes_and_reconstruct_shapes():
    cfg = configs.ada("tiny", quantizer="vq", hop=8)
    ada = ADA(cfg)
    codes = tf.constant(np.random.RandomState(2).randint(0, 256, (2, 5)), tf.int32)
    y = ada.decode(codes, seed=3, temperature=1e-4).numpy()
    assert y.shape == (2, 40) and y.dtype == np.int32
    # near-zero temperature: the decoded audio is the teacher-forced argmax under those codes
    logits = ada.local(y, ada.biases(codes), bias_hop=8).numpy()
    top2 = np.sort(logits, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 2e-3
    np.testing.assert_array_equal(np.argmax(logits, -1)[clear], y[clear])
    audio = np.sin(np.arange(100) * 0.1).astype(np.float32) * 0.5
    codes, recon = reconstruct_audio(ada, audio)
    assert codes.shape == (12,) and recon.shape == (96,)


def test_bad_lengths_and_configs_are_rejected():
    ada = ADA(configs.ada("tiny", hop=8))
    with pytest.raises(ValueError, match="multiple of the hop"):
        ada(np.zeros((1, 60), np.int32))
    with pytest.raises(ValueError, match="code_channels"):
        dataclasses.replace(configs.ada("tiny", quantizer="amae"), code_channels=64)


def test_paper_ada_sizes():
    c = configs.table1_row("1.2", "paper").model
    assert c.encoder_receptive_field == 510 and c.encoder_receptive_field_codes == 510 / 8
    assert c.local.receptive_field == 1021 and c.n_codes == 256 and c.hop == 8
    assert c.modulator.output_channels == 32 * 128
    assert configs.table1_row("1.7", "paper").model.hop == 64
    assert configs.table1_row("1.1", "paper").model.receptive_field == 6139
    assert configs.table1_row("1.1", "paper").train.steps == 200_000
    assert configs.table1_row("1.2", "paper").train.steps == 500_000
    roundtrip = configs.config_from_dict(configs.config_to_dict(c))
    assert roundtrip == c


def test_encoder_mean_pools_each_hop_of_the_stack_output():
    """Sec. 3.3: the queries are the mean over each hop of the encoder stack's output (not every
    hop-th frame, nor a sum)."""
    ada = ADA(configs.ada("tiny", quantizer="vq", hop=8))
    x = np.random.RandomState(4).randint(0, 256, (2, 64)).astype(np.int32)
    queries = ada.encoder(x).numpy()
    frames = ada.encoder.stack(x).numpy()  # [B, T, D]
    b, t, d = frames.shape
    expected = frames.reshape(b, t // 8, 8, d).mean(axis=2)
    assert queries.shape == (2, 8, d)
    np.testing.assert_allclose(queries, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(queries, frames[:, ::8], atol=1e-3)
