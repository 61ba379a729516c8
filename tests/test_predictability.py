"""Validation of the predictability profile on sources whose entropy rate is known in closed form."""
import numpy as np
import pytest

from analysis.predictability import profile, unigram_nll
from tf_ada import ops

TOL = 0.03  # nats per timestep


def markov(order, n_symbols, n, rng, transitions):
    s = list(rng.integers(0, n_symbols, order))
    u = rng.random(n)
    cdf = np.cumsum(transitions, 1)
    for t in range(n - order):
        state = 0
        for v in s[len(s) - order:]:
            state = state * n_symbols + v
        s.append(int(np.searchsorted(cdf[state], u[t] * cdf[state, -1])))
    return np.array(s, np.int32)


def entropy_rate(order, n_symbols, transitions):
    """sum_s pi(s) H(P(. | s)) with pi the stationary distribution of the state chain."""
    n_states = n_symbols ** order
    T = np.zeros((n_states, n_states))
    for st in range(n_states):
        for c in range(n_symbols):
            T[st, (st * n_symbols + c) % n_states] += transitions[st, c]
    w, v = np.linalg.eig(T.T)
    pi = np.real(v[:, np.argmin(np.abs(w - 1))])
    pi /= pi.sum()
    return float(-(pi[:, None] * transitions * np.log(transitions)).sum())


def test_iid_symbols_are_flat_at_their_entropy():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6))
    h = float(-(p * np.log(p)).sum())
    train = [rng.choice(6, size=30000, p=p)]
    eval_ = [rng.choice(6, size=10000, p=p)]
    res = profile(train, eval_, [0, 1, 3], 6, hidden=16, max_steps=2000, log=lambda s: None)
    for r in res:
        assert abs(r["eval_nll"] - h) < TOL, r


@pytest.mark.parametrize("order", [1, 2])
def test_markov_chain_falls_to_its_entropy_rate_at_r_equals_order(order):
    rng = np.random.default_rng(order)
    k = 4
    transitions = rng.dirichlet(np.ones(k) * 0.5, size=k ** order)
    h = entropy_rate(order, k, transitions)
    train = [markov(order, k, 30000, rng, transitions)]
    eval_ = [markov(order, k, 10000, rng, transitions)]
    res = {r["receptive_field"]: r["eval_nll"] for r in
           profile(train, eval_, list(range(0, order + 3)), k, hidden=32, max_steps=4000, log=lambda s: None)}
    for r in range(order):
        assert res[r] > h + 0.05, (r, res[r], h)  # not enough context: clearly above the rate
    for r in range(order, order + 3):
        assert abs(res[r] - h) < TOL, (r, res[r], h)  # exactly at r = order, and flat after


def test_mu_law_ar_process_matches_its_conditional_entropy_bound():
    """x_t = a x_{t-1} + sigma e_t, 8-bit mu-law: the NLL given the exact past (Gaussian CDF over
    each code's bin) is a lower bound that a predictor seeing the quantised past nearly reaches."""
    from scipy.stats import norm
    rng = np.random.default_rng(1)
    a, sigma = 0.9, 0.03

    def ar(n):
        x, e = np.zeros(n), rng.normal(size=n) * sigma
        for t in range(1, n):
            x[t] = a * x[t - 1] + e[t]
        return x

    xs_train, xs_eval = ar(100000), ar(30000)
    q = lambda x: ops.mu_law_encode(x.astype(np.float32)).numpy()
    mu, c = 255.0, np.arange(256)
    expand = lambda y: np.sign(y) * ((1 + mu) ** np.abs(y) - 1) / mu
    lo, hi = expand(np.clip((c - 0.5) / mu * 2 - 1, -1, 1)), expand(np.clip((c + 0.5) / mu * 2 - 1, -1, 1))
    lo[0], hi[-1] = -np.inf, np.inf
    codes = q(xs_eval)
    mean = a * xs_eval[:-1]
    p = norm.cdf((hi[codes[1:]] - mean) / sigma) - norm.cdf((lo[codes[1:]] - mean) / sigma)
    bound = float(-np.mean(np.log(p)))
    res = {r["receptive_field"]: r["eval_nll"] for r in
           profile([q(xs_train)], [codes], [0, 1, 2], 256, hidden=64, max_steps=4000, log=lambda s: None)}
    assert res[0] > bound + 0.5  # waveform-like: the recent past is very informative
    for r in (1, 2):
        assert bound - TOL < res[r] < bound + 0.1, (r, res[r], bound)


def test_unigram_is_smoothed_cross_entropy():
    train, eval_ = [np.array([0, 0, 1])], [np.array([1, 2])]
    tr, ev = unigram_nll(train, eval_, 3)  # add-one counts: [3, 2, 1] / 6
    assert np.isclose(ev, -(np.log(2 / 6) + np.log(1 / 6)) / 2)
    assert np.isclose(tr, -(2 * np.log(3 / 6) + np.log(2 / 6)) / 3)


def test_profile_accepts_arrays_and_tf_data():
    import tensorflow as tf
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, (4, 500)).astype(np.int32)
    a = profile(x[:3], x[3:], [0, 1], 3, max_steps=100, log=lambda s: None)
    b = profile(tf.data.Dataset.from_tensor_slices(x[:3]).batch(2), x[3:], [0, 1], 3, max_steps=100, log=lambda s: None)
    assert [r["receptive_field"] for r in a] == [0, 1]
    np.testing.assert_allclose([r["eval_nll"] for r in a], [r["eval_nll"] for r in b], rtol=1e-6)
    with pytest.raises(ValueError, match="receptive field"):
        profile(x[:3], x[3:], [600], 3, log=lambda s: None)


def test_spread_takes_long_contiguous_chunks():
    from analysis.predictability import _spread
    seqs = [np.arange(100_000) + 10**6 * i for i in range(50)]
    out = _spread(seqs, 200_000, min_chunk=32768)
    assert 150_000 <= sum(len(s) for s in out) <= 200_000
    assert all(len(s) >= 32768 for s in out)
    assert all(np.all(np.diff(s) == 1) for s in out)  # contiguous
    assert len({int(s[0]) // 10**6 for s in out}) == len(out)  # from different sequences


def test_warm_start_computes_the_shorter_filter_exactly():
    import tensorflow as tf
    from analysis.predictability import _build, _logits
    short = _build(2, 5, 8, seed=1)
    for v in short.values():  # non-zero biases too
        v.assign(v + 0.1)
    long_ = _build(5, 5, 8, seed=2, init={k: v.numpy() for k, v in short.items()})
    x = tf.constant(np.random.default_rng(0).integers(0, 5, (3, 5 + 7)), tf.int32)
    # the same 7 targets: the short filter reads the last 2 symbols before each, the long one 5
    np.testing.assert_allclose(_logits(long_, x, 5, 7).numpy(), _logits(short, x[:, 3:], 2, 7).numpy(), rtol=1e-5,
                               atol=1e-6)


def test_tap_sum_equals_the_one_hot_convolution_in_any_chunking():
    # numpy reference: h[b, t] = sum_j taps[j, x[b, t + j]] (a length-r convolution of one-hot
    # inputs), then the two-layer head; chunks of one tap and of all taps give the same logits
    from analysis.predictability import _build, _logits
    import tensorflow as tf
    r, c, hidden, n = 6, 5, 4, 7
    p = _build(r, c, hidden, seed=3)
    x = np.random.default_rng(1).integers(0, c, (3, r + n)).astype(np.int32)
    taps = p["taps"].numpy()
    h = np.zeros((3, n, hidden))
    for b in range(3):
        for t in range(n):
            h[b, t] = sum(taps[j, x[b, t + j]] for j in range(r))
    relu = lambda a: np.maximum(a, 0)
    h = relu(relu(h + p["b1"].numpy()) @ p["w2"].numpy() + p["b2"].numpy())
    want = h @ p["w3"].numpy() + p["b3"].numpy()
    for chunk_floats in (1, 64 * n * hidden * 2, 1 << 24):  # 1 tap, 2 taps, all taps per gather
        np.testing.assert_allclose(_logits(p, tf.constant(x), r, n, chunk_floats).numpy(), want, rtol=1e-5,
                                   atol=1e-5)


def test_every_r_is_measured_on_the_same_positions():
    # sequences that open with 8 easy symbols, then i.i.d.: measured on its own positions, r = 1
    # would include the easy openings that r = 8 cannot see and look better than r = 8 (the cpu
    # audio profile "rose" by 0.004 nats from r = 4 to 128 that way)
    rng = np.random.default_rng(2)
    seqs = [np.concatenate([np.zeros(8, np.int32), rng.integers(0, 4, 600).astype(np.int32)]) for _ in range(6)]
    res, units = profile(seqs[:4], seqs[4:], [0, 1, 8], 4, hidden=8, max_steps=300, log=lambda s: None,
                         return_units=True)
    for split in ("train", "eval"):
        counts = [u[split][1] for u in units]
        assert all(np.array_equal(c, counts[0]) for c in counts), split
    assert [r.get("non_increasing") for r in res] == [None, "ok", "ok"]


def test_convergence_test_halves_at_plateaus_and_stops_after_the_last():
    from analysis.predictability import ConvergenceTest
    t = ConvergenceTest(1.0, 0.004, patience=2, tol=1e-3, max_decays=2)
    script = [0.9, 0.8995, 0.9, 0.85, 0.86, 0.86, 0.86, 0.86]
    # 0.8995 is not better by tol; two non-improvements make a plateau: halve, then again; the
    # plateau after the last halving ends it
    assert [t.observe(v) for v in script] == ["improved", "wait", "halve", "improved", "wait", "halve", "wait",
                                              "converged"]
    assert t.converged and t.decays == 2 and t.rate == 0.001 and t.best == 0.85
    # the first version (stop at the first plateau) is max_decays=0
    t0 = ConvergenceTest(1.0, 0.004, patience=2, tol=1e-3, max_decays=0)
    assert [t0.observe(v) for v in script[:3]] == ["improved", "wait", "converged"]


def test_profile_reports_standard_errors_and_the_non_increasing_check():
    from analysis.predictability import non_increasing
    rng = np.random.default_rng(4)
    t = rng.dirichlet(np.ones(4) * 0.3, size=4)
    seqs = [markov(1, 4, 3000, rng, t) for _ in range(6)]
    res = profile(seqs[:4], seqs[4:], [0, 1, 2], 4, hidden=16, max_steps=300, train_groups=["a", "a", "b", "c"],
                  log=lambda s: None)
    for r in res:
        assert np.isfinite(r["train_nll_se"]) and r["train_nll_se"] > 0 and np.isfinite(r["eval_nll_se"])
    assert [r.get("non_increasing") for r in res] == [None, "ok", "ok"]
    assert res[1]["train_nll_change"] < -2 * res[1]["train_nll_change_se"]  # order-1 chain: r = 1 helps
    # a rise beyond two standard errors is flagged
    units = [{"train": (np.array([100.0, 110.0, 90.0]), np.full(3, 100.0))},
             {"train": (np.array([120.0, 131.0, 109.0]), np.full(3, 100.0))}]
    rows = [{}, {}]
    non_increasing(rows, units, ["a", "b", "c"])
    assert rows[1]["non_increasing"] == "rises" and rows[1]["train_nll_change"] == pytest.approx(0.2)


def test_rf_argument_is_sorted_without_repeats():
    from analysis.predictability import receptive_fields
    assert receptive_fields("8,0,2,2,1") == [0, 1, 2, 8]
