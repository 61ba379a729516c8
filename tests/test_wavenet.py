import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import configs
from tf_ada.configs import WaveNetConfig
from tf_ada.layers.wavenet import WaveNetStack
from tf_ada.models import WaveNet

CASES = {
    "k2_onehot": configs.local_model("tiny", conditioning=False),
    "k2_bias": configs.local_model("tiny", conditioning=True),
    "k3_continuous": configs.large_wavenet("tiny"),
    "k3_bias_two_repeats": WaveNetConfig(n_stages=3, n_repeats=2, filter_length=3, residual_channels=12,
                                         inner_channels=6, skip_channels=10, conditioning=True),
    "k4_codes": WaveNetConfig(n_stages=2, n_repeats=2, filter_length=4, residual_channels=8, inner_channels=4,
                              skip_channels=8, n_input_classes=32, output_channels=32),
}


def random_input(cfg, batch, n, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.randint(0, cfg.n_input_classes, (batch, n)).astype(np.int32)
    bias = rng.normal(size=(batch, n, cfg.conditioning_channels)).astype(np.float32) if cfg.conditioning else None
    return x, bias


@pytest.mark.parametrize("name", list(CASES))
def test_cached_steps_equal_full_forward(name):
    cfg = CASES[name]
    tf.keras.utils.set_random_seed(1)
    net = WaveNet(cfg)
    n = 2 * cfg.receptive_field + 5  # past the point where ring buffers wrap
    x, bias = random_input(cfg, 3, n)
    full = net(x, bias).numpy()
    state = net.init_state(3)
    got = []
    for t in range(n):
        logits, state = net.step(state, None if t == 0 else x[:, t - 1], None if bias is None else bias[:, t])
        got.append(logits.numpy())
    got = np.stack(got, 1)
    np.testing.assert_allclose(got, full, atol=2e-5 * max(1.0, np.abs(full).max()), rtol=1e-5)


def _gradient_support(cfg, n, t0, through_model):
    """Input positions with a non-zero gradient of output t0 (the receptive field, measured)."""
    tf.keras.utils.set_random_seed(2)
    stack = WaveNetStack(cfg)
    e = tf.Variable(tf.random.normal([1, n, cfg.residual_channels]))
    bias = tf.zeros([1, n, cfg.conditioning_channels]) if cfg.conditioning else None
    with tf.GradientTape() as tape:
        out = stack.call_embedded(e, bias)
        target = tf.reduce_sum(out[0, t0])
    g = tape.gradient(target, e).numpy()[0]
    return np.nonzero(np.abs(g).sum(-1) > 0)[0]


@pytest.mark.parametrize("name", ["k2_onehot", "k3_continuous", "k4_codes"])
def test_causal_receptive_field_measured_by_gradients(name):
    cfg = CASES[name]
    n = cfg.receptive_field + 20
    t0 = n - 5
    support = _gradient_support(cfg, n, t0, True)
    # the stack sees inputs t0 - RF + 1 .. t0; the model feeds x shifted by one, so logits[t]
    # depends on x[t - RF .. t - 1]
    np.testing.assert_array_equal(support, np.arange(t0 - cfg.receptive_field + 1, t0 + 1))


@pytest.mark.parametrize("cfg", [configs.encoder("tiny"), configs.modulator("tiny")], ids=["encoder", "modulator"])
def test_noncausal_sees_half_receptive_field_each_side(cfg):
    half = cfg.half_receptive_field
    n = 4 * half
    t0 = 2 * half
    support = _gradient_support(cfg, n, t0, False)
    np.testing.assert_array_equal(support, np.arange(t0 - half, t0 + half + 1))


@pytest.mark.parametrize("name", ["k2_bias", "k3_continuous"])
def test_causality_by_perturbing_the_future(name):
    cfg = CASES[name]
    net = WaveNet(cfg)
    x, bias = random_input(cfg, 2, 50)
    base = net(x, bias).numpy()
    for t in (0, 17, 49):
        x2 = x.copy()
        x2[:, t] = (x2[:, t] + 101) % cfg.n_input_classes
        out = net(x2, bias).numpy()
        np.testing.assert_array_equal(out[:, : t + 1], base[:, : t + 1])
        if t + 1 < 50:
            assert np.abs(out[:, t + 1] - base[:, t + 1]).max() > 0  # the next step does see it


@pytest.mark.parametrize("jit,in_place", [(True, False), (False, True), (False, False), (True, True)])
def test_generate_matches_full_forward_argmax(jit, in_place):
    cfg = CASES["k3_continuous"]
    tf.keras.utils.set_random_seed(3)
    net = WaveNet(cfg)
    x = net.generate(120, batch_size=2, temperature=1e-4, seed=5, jit=jit, in_place=in_place).numpy()
    logits = net(x).numpy()
    # near-zero temperature: every sample is the argmax of the full forward's logits for it,
    # wherever the top two logits differ by more than a few temperatures
    top2 = np.sort(logits, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 2e-3
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(np.argmax(logits, -1)[clear], x[clear])


def test_generate_seeded_chunked_and_compiled_paths_agree():
    net = WaveNet(CASES["k2_onehot"])
    a = net.generate(200, batch_size=3, seed=11, jit=False).numpy()
    b = net.generate(200, batch_size=3, seed=11, jit=True, chunk_size=64, verbose=False).numpy()
    c = net.generate(200, batch_size=3, seed=12).numpy()
    assert a.shape == (3, 200) and a.dtype == np.int32
    np.testing.assert_array_equal(a, b)
    # in-place ring buffers (variables) against new tensors, the state carried across chunks
    for in_place in (True, False):
        d = net.generate(200, batch_size=3, seed=11, jit=False, in_place=in_place, chunk_size=64, verbose=False)
        np.testing.assert_array_equal(a, d.numpy())
    assert (a != c).mean() > 0.5


@pytest.mark.parametrize("case", ["k2_onehot", "k2_bias"])
def test_grouped_generation_draws_the_ungrouped_samples(case):
    # groups: independent ring buffers per part of the batch, logits joined before sampling, so
    # the same seed gives the same samples as one group (these tiny nets: no near-ties flip a draw)
    cfg = CASES[case]
    tf.keras.utils.set_random_seed(4)
    net = WaveNet(cfg)
    kw = {}
    if cfg.conditioning:
        kw = dict(conditioning=tf.random.stateless_normal([4, 30, cfg.conditioning_channels], seed=[3, 4]) * 3.0,
                  conditioning_hop=4)
    one = net.generate(110, batch_size=4, seed=7, jit=False, in_place=True, groups=1, chunk_size=50,
                       verbose=False, **kw).numpy()
    for groups in (2, 4):
        got = net.generate(110, batch_size=4, seed=7, jit=False, in_place=True, groups=groups, chunk_size=50,
                           verbose=False, **kw).numpy()
        np.testing.assert_array_equal(got, one)
    with pytest.raises(ValueError, match="divide"):
        net.generate(10, batch_size=4, groups=3, in_place=True, **kw)


def test_default_groups_one_per_core_with_enough_rows_for_small_products_only():
    from tf_ada import configs
    from tf_ada.models.wavenet import default_groups
    local = WaveNet(configs.local_model("paper")).dilated_product_macs
    large = WaveNet(configs.large_wavenet("paper")).dilated_product_macs
    assert (local, large) == (384 * 2 * 128, 512 * 3 * 1024)
    assert default_groups(16, local, n_cores=2) == 1
    assert default_groups(32, local, n_cores=2) == 2
    assert default_groups(64, local, n_cores=2) == 2
    assert default_groups(64, local, n_cores=16) == 4
    assert default_groups(48, local, n_cores=16) == 3
    assert default_groups(40, local, n_cores=16) == 2  # 2 divides 40; 40 // 16 = 2
    assert default_groups(1, local, n_cores=8) == 1
    assert default_groups(64, large, n_cores=2) == 1  # wide products split well across cores already


def test_generate_with_conditioning_at_a_hop():
    cfg = CASES["k2_bias"]
    net = WaveNet(cfg)
    hop = 4
    frames = tf.random.stateless_normal([2, 10, cfg.conditioning_channels], seed=[1, 2]) * 3.0
    x = net.generate(40, temperature=1e-4, seed=0, conditioning=frames, conditioning_hop=hop).numpy()
    audio_rate = tf.repeat(frames, hop, axis=1)
    logits = net(x, audio_rate).numpy()
    top2 = np.sort(logits, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 2e-3
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(np.argmax(logits, -1)[clear], x[clear])
    with pytest.raises(ValueError, match="frames"):
        net.generate(41, conditioning=frames, conditioning_hop=hop)


def test_bias_contract_is_enforced():
    with pytest.raises(ValueError, match="conditioned"):
        WaveNet(CASES["k2_bias"])(np.zeros((1, 8), np.int32))
    with pytest.raises(ValueError, match="no conditioning"):
        WaveNet(CASES["k2_onehot"])(np.zeros((1, 8), np.int32), tf.zeros([1, 8, 4]))


def test_model_trains_with_fit_and_round_trips_config(tmp_path):
    cfg = CASES["k2_onehot"]
    tf.keras.utils.set_random_seed(4)
    net = WaveNet(cfg)
    # a deterministic sawtooth: perfectly predictable from the previous sample
    x = ((np.arange(64)[None, :] * 3 + np.arange(16)[:, None] * 7) % 256).astype(np.int32)
    net.compile(optimizer=tf.keras.optimizers.Adam(3e-3), loss=WaveNet.loss_fn)
    before = float(WaveNet.loss_fn(x, net(x)))
    net.fit(x, x, epochs=60, batch_size=16, verbose=0)
    after = float(WaveNet.loss_fn(x, net(x)))
    assert before > 5.0 and after < 0.5 * before
    path = str(tmp_path / "w.weights.h5")
    net.save_weights(path)
    clone = WaveNet.from_config(net.get_config())
    clone(x[:1, :8])
    clone.load_weights(path)
    np.testing.assert_allclose(clone(x).numpy(), net(x).numpy(), atol=1e-6)


def test_paper_receptive_fields_and_sizes():
    assert configs.local_model("paper").receptive_field == 1021          # "1024", 64 ms
    assert configs.local_model("paper").n_layers == 32
    assert configs.local_model("paper").gate_channels == 128
    assert configs.encoder("paper").half_receptive_field == 510          # "512" each side
    assert configs.modulator("paper").n_layers == 16
    assert configs.modulator("paper").output_channels == 32 * 128
    assert configs.large_wavenet("paper").receptive_field == 6139        # "6144"
    assert configs.large_wavenet("paper").n_layers == 30
    assert configs.very_large_wavenet("paper").receptive_field == 12277  # "12288"
    assert configs.very_large_wavenet("paper").n_layers == 60
    assert configs.thin_wavenet("paper").receptive_field == 49147        # "49152"
    assert configs.thin_wavenet("paper").n_layers == 39
    for f in configs.WAVENETS.values():
        for scale in configs.SCALES:  # reduced scales keep filter length and causality
            assert f(scale).filter_length == f("paper").filter_length and f(scale).causal
    with pytest.raises(ValueError, match="scale"):
        configs.local_model("huge")
    with pytest.raises(ValueError, match="odd"):
        dataclasses.replace(configs.encoder("tiny"), filter_length=2)


def test_sequences_shorter_than_the_dilation():
    cfg = CASES["k3_continuous"]
    net = WaveNet(cfg)
    x, _ = random_input(cfg, 2, 30)
    short = net(x[:, :3]).numpy()  # dilation 8 > T = 3: those taps see only padding
    np.testing.assert_allclose(short, net(x).numpy()[:, :3], atol=1e-6)
