"""mixed_bfloat16 (issue 12): the bfloat16 fast path against float32, and its own cached
generation against its full forward. Tolerances are stated per test: bfloat16 keeps 8 bits of
mantissa (relative rounding 2^-8 = 0.4 %)."""
import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from tf_ada import configs
from tf_ada.train import build_model, model_scalars
from tf_ada.models import WaveNet

from test_wavenet import CASES, random_input


@contextlib.contextmanager
def global_policy(name):
    """Keras's global dtype policy set to `name` inside the block, then back to whatever it was
    before (not to float32: a test must not change the policy the next test runs under)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def test_global_policy_restores_the_previous_policy_even_after_an_error():
    outer = keras.config.dtype_policy()
    with global_policy("mixed_float16"):
        with pytest.raises(RuntimeError):
            with global_policy("mixed_bfloat16"):
                assert keras.config.dtype_policy().name == "mixed_bfloat16"
                raise RuntimeError("a failing test body")
        assert keras.config.dtype_policy().name == "mixed_float16"
    assert keras.config.dtype_policy().name == outer.name


def _pair(cfg):
    """A float32 and a mixed_bfloat16 model with the same weights, scaled up from the
    initialisation so that the logits are far from uniform (at init every model is near log 256)."""
    tf.keras.utils.set_random_seed(0)
    m32 = build_model(cfg)
    m16 = build_model(cfg, "mixed_bfloat16")
    for a, b in zip(m32.weights, m16.weights):
        if a.trainable and len(a.shape) == 2:
            a.assign(a * 1.5)
        b.assign(a)
    return m32, m16


@pytest.mark.parametrize("row", ["1.1", "1.2", "1.5"])
def test_bfloat16_model_matches_float32_within_tolerance(row):
    cfg = configs.table1_row(row, "tiny").model
    m32, m16 = _pair(cfg)
    assert all(w.dtype == "float32" for w in m16.weights)  # weights stay float32
    x = tf.constant(np.random.default_rng(1).integers(0, 256, (2, 256)), tf.int32)
    s32, nll32 = model_scalars(m32, x, training=False)
    s16, nll16 = model_scalars(m16, x, training=False)
    assert nll16.dtype == tf.float32
    assert abs(float(s32["nll"]) - 5.545) > 0.05  # the check below is not between two uniform models
    # mean NLL within 1 % of float32's; per-step NLLs within 0.05 nats at the median (a code
    # that flips between near-tied candidates changes its hop's steps by more)
    assert float(s16["nll"]) == pytest.approx(float(s32["nll"]), rel=0.01)
    assert np.median(np.abs(nll16.numpy() - nll32.numpy())) < 0.05
    if row != "1.1":  # quantisers run in float32 on (nearly) the same queries: codes mostly agree
        c32 = m32(x).codes.numpy()
        c16 = m16(x).codes.numpy()
        assert np.mean(c32 == c16) > 0.8


@pytest.mark.parametrize("name", ["k2_bias", "k3_continuous"])
def test_bfloat16_cached_steps_equal_its_full_forward(name):
    cfg = CASES[name]
    tf.keras.utils.set_random_seed(1)
    with global_policy("mixed_bfloat16"):
        net = WaveNet(cfg)
    assert net.stack.compute_dtype == "bfloat16"
    n = 2 * cfg.receptive_field + 5
    x, bias = random_input(cfg, 2, n)
    full = net(x, bias).numpy()
    state = net.init_state(2)
    got = []
    for t in range(n):
        logits, state = net.step(state, None if t == 0 else x[:, t - 1], None if bias is None else bias[:, t])
        got.append(logits.numpy())
    got = np.stack(got, 1)
    # the same bfloat16 products in another order: within a few bfloat16 roundings of the logits' scale
    np.testing.assert_allclose(got, full, atol=0.03 * max(1.0, np.abs(full).max()))


def test_bfloat16_head_takes_its_last_product_in_float32():
    # h = relu(0 * s + 1) = 1 exactly (bfloat16-exact) and a last kernel of 1 + 2^-10, which
    # bfloat16 rounds to 1: a float32 product gives skip_channels * (1 + 2^-10), a bfloat16 one
    # skip_channels
    cfg = CASES["k2_bias"]
    with global_policy("mixed_bfloat16"):
        net = WaveNet(cfg)
    x, bias = random_input(cfg, 1, 8)
    net(x, bias)
    stack = net.stack
    stack.head_kernel_1.assign(tf.zeros_like(stack.head_kernel_1))
    stack.head_bias_1.assign(tf.ones_like(stack.head_bias_1))
    stack.head_kernel_2.assign(tf.fill(stack.head_kernel_2.shape, 1.0 + 2.0 ** -10))
    logits = net(x, bias)
    assert logits.dtype == tf.float32
    expected = cfg.skip_channels * (1.0 + 2.0 ** -10)
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-6)
    _, state = net.step(net.init_state(1), None, bias[:, 0])
    step_logits, _ = net.step(state, x[:, 0], bias[:, 1])  # the cached path shares the head
    np.testing.assert_allclose(step_logits.numpy(), expected, rtol=1e-6)


def test_bfloat16_training_where_xla_cannot_compile_it_falls_back_to_the_plain_graph(audio_shards, tmp_path):
    """The cpu-scale #1.2 in mixed_bfloat16: TF 2.16's XLA CPU backend refuses one of its bfloat16
    products ("unsupported operand type BF16 in op dot"); the Trainer says so once and trains the
    step in the plain graph, as built by a user (public constructor, table1_row)."""
    import dataclasses
    from tf_ada.train import Trainer
    exp = configs.table1_row("1.2", "cpu", steps=2)
    exp = dataclasses.replace(exp, train=dataclasses.replace(exp.train, precision="mixed_bfloat16", batch_size=1,
                                                             n_samples=512, steps=2))
    logs = []
    trainer = Trainer(exp, audio_shards, str(tmp_path / "run"), log=logs.append)
    assert trainer.jit_compile
    trainer.train(evaluate=False)
    assert trainer.current_step == 2
    fallbacks = [m for m in logs if "training with the plain graph step instead" in m]
    assert len(fallbacks) == 1 and "BF16" in fallbacks[0]
    losses = [m for m in logs if m.startswith("train:") and " loss " in m]
    assert all("nan" not in m for m in losses)
