"""Objective fidelity and musicality measures (tf_ada/fidelity.py) on known numbers."""
import numpy as np
import pytest

from tf_ada import fidelity

SR = fidelity.SAMPLE_RATE


def _random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# --- mel filterbank and log-mel --------------------------------------------------------------

def test_mel_filterbank_shape_nonnegative_and_ordered():
    fb = fidelity.mel_filterbank()
    assert fb.shape == (fidelity.MEL_FRAME // 2 + 1, fidelity.N_MELS)
    assert np.all(fb >= 0) and np.all(fb <= 1)
    assert np.all(fb.max(axis=0) > 0.5)  # no empty filter
    peaks = fb.argmax(axis=0)
    assert np.all(np.diff(peaks) > 0)  # each filter peaks above the previous one
    freqs = np.fft.rfftfreq(fidelity.MEL_FRAME, 1.0 / SR)
    assert freqs[peaks[0]] < 100 and freqs[peaks[-1]] > 7000
    # a filter covers only the bins between its two neighbours' centres
    support = fb > 0
    assert np.all(support.sum(axis=0) >= 1)


def test_mel_scale_round_trip():
    hz = np.array([0.0, 20.0, 440.0, 1000.0, 8000.0])
    np.testing.assert_allclose(fidelity.mel_to_hz(fidelity.hz_to_mel(hz)), hz, atol=1e-9)
    assert fidelity.hz_to_mel(1000.0) == pytest.approx(999.99, abs=0.1)  # HTK: 1000 Hz ~ 1000 mel


def test_log_mel_sine_peaks_in_its_band_and_silence_sits_at_the_floor():
    t = np.arange(SR) / SR
    lm = fidelity.log_mel(0.5 * np.sin(2 * np.pi * 1000.0 * t))
    assert lm.shape == (1 + (SR - fidelity.MEL_FRAME) // fidelity.MEL_HOP, fidelity.N_MELS)
    fb = fidelity.mel_filterbank()
    freqs = np.fft.rfftfreq(fidelity.MEL_FRAME, 1.0 / SR)
    assert abs(freqs[fb[:, lm.mean(0).argmax()].argmax()] - 1000.0) < 60
    silent = fidelity.log_mel(np.zeros(4000))
    np.testing.assert_allclose(silent, np.log(fidelity.LOG_FLOOR))


def test_log_mel_is_the_documented_formula_on_measures_power_spectrum():
    """log_mel reads tf_ada.measures' frames and power spectrum: ln(|rfft(hann * frame)|^2 / (sum w)^2
    @ filterbank + floor), computed here from scratch; a full-scale sine's peak bin reads 0.25."""
    rng = np.random.default_rng(12)
    x = 0.2 * rng.normal(size=5000)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(fidelity.MEL_FRAME) / fidelity.MEL_FRAME)  # periodic Hann
    n = 1 + (len(x) - fidelity.MEL_FRAME) // fidelity.MEL_HOP
    frames = np.stack([x[i * fidelity.MEL_HOP:i * fidelity.MEL_HOP + fidelity.MEL_FRAME] for i in range(n)])
    power = np.abs(np.fft.rfft(frames * w, axis=1)) ** 2 / w.sum() ** 2
    expected = np.log(power @ fidelity.mel_filterbank() + fidelity.LOG_FLOOR)
    np.testing.assert_allclose(fidelity.log_mel(x), expected, rtol=1e-12, atol=1e-12)
    k = 64  # a bin-centred full-scale sine
    sine = np.cos(2 * np.pi * k * np.arange(fidelity.MEL_FRAME) / fidelity.MEL_FRAME)
    fb = np.zeros((fidelity.MEL_FRAME // 2 + 1, 1))
    fb[k] = 1.0
    assert np.exp(fidelity.log_mel(sine, filterbank=fb, floor=0.0))[0, 0] == pytest.approx(0.25)


# --- matrix square root and Frechet distance --------------------------------------------------

def test_sqrtm_psd_squares_back_and_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    s = _random_spd(rng, 6)
    root = fidelity.sqrtm_psd(s)
    np.testing.assert_allclose(root @ root, s, atol=1e-10)
    np.testing.assert_allclose(root, root.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(root) >= 0)
    # reference: Denman-Beavers iteration, numpy only
    y, z = s.copy(), np.eye(6)
    for _ in range(50):
        y, z = 0.5 * (y + np.linalg.inv(z)), 0.5 * (z + np.linalg.inv(y))
    np.testing.assert_allclose(root, y, atol=1e-8)


def test_sqrtm_psd_matches_scipy_when_available():
    linalg = pytest.importorskip("scipy.linalg")
    s = _random_spd(np.random.default_rng(1), 8)
    np.testing.assert_allclose(fidelity.sqrtm_psd(s), np.real(linalg.sqrtm(s)), atol=1e-8)


def test_sqrtm_psd_clips_round_off_negative_eigenvalues():
    v = np.linalg.qr(np.random.default_rng(2).normal(size=(4, 4)))[0]
    s = (v * np.array([1.0, 0.5, 0.0, -1e-14])) @ v.T  # singular, with a round-off negative eigenvalue
    root = fidelity.sqrtm_psd(s)
    assert np.all(np.isfinite(root))
    np.testing.assert_allclose(root @ root, (v * np.array([1.0, 0.5, 0.0, 0.0])) @ v.T, atol=1e-10)


def test_frechet_distance_closed_forms():
    # 1-d: (m1 - m2)^2 + (s1 - s2)^2
    assert fidelity.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)
    # diagonal covariances: |dm|^2 + sum (sqrt(a) - sqrt(b))^2
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 4.0, 1.0])
    dm = np.array([1.0, -2.0, 0.5])
    expected = dm @ dm + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fidelity.frechet_distance(dm, np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(expected)
    # commuting covariances (shared eigenvectors): sum (sqrt(lambda_a) - sqrt(lambda_b))^2
    v = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    d = fidelity.frechet_distance(np.zeros(3), (v * a) @ v.T, np.zeros(3), (v * b) @ v.T)
    assert d == pytest.approx(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))


def test_frechet_distance_general_case_matches_the_non_symmetric_formula():
    rng = np.random.default_rng(4)
    sa, sb = _random_spd(rng, 5), _random_spd(rng, 5)
    ma, mb = rng.normal(size=5), rng.normal(size=5)
    eigenvalues = np.linalg.eigvals(sa @ sb)  # real, positive for SPD products
    expected = np.sum((ma - mb) ** 2) + np.trace(sa) + np.trace(sb) - 2 * np.sum(np.sqrt(eigenvalues.real))
    assert fidelity.frechet_distance(ma, sa, mb, sb) == pytest.approx(expected, rel=1e-9)
    assert fidelity.frechet_distance(ma, sa, ma, sa) == pytest.approx(0.0, abs=1e-9)
    assert fidelity.frechet_distance(ma, sa, mb, sb) == pytest.approx(fidelity.frechet_distance(mb, sb, ma, sa))


def test_frechet_features_of_two_known_gaussians():
    rng = np.random.default_rng(5)
    ma, mb = np.array([0.0, 0.0]), np.array([1.0, 2.0])
    sa, sb = np.diag([1.0, 4.0]), np.diag([4.0, 1.0])
    clips_a = [rng.multivariate_normal(ma, sa, size=2000) for _ in range(20)]
    clips_b = [rng.multivariate_normal(mb, sb, size=2000) for _ in range(20)]
    out = fidelity.frechet_features(clips_a, clips_b, n_bootstrap=50)
    expected = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2  # |dm|^2 + sum (sqrt a - sqrt b)^2 = 7
    assert out["value"] == pytest.approx(expected, abs=4 * out["se"] + 0.05)
    assert 0 < out["se"] < 0.3
    assert out["n_frames_a"] == 40000 and out["n_clips_b"] == 20


def test_frechet_log_mel_of_identical_sets_is_zero():
    rng = np.random.default_rng(6)
    clips = [0.1 * rng.normal(size=SR // 2) for _ in range(4)]
    out = fidelity.frechet_log_mel(clips, clips, n_bootstrap=0)
    assert out["value"] == pytest.approx(0.0, abs=1e-6)
    # and a set of sines is far from a set of noises
    t = np.arange(SR // 2) / SR
    sines = [0.3 * np.sin(2 * np.pi * f * t) for f in (220.0, 330.0, 440.0, 550.0)]
    assert fidelity.frechet_log_mel(sines, clips, n_bootstrap=0)["value"] > 100


def test_bootstrap_se_shrinks_with_more_clips():
    rng = np.random.default_rng(7)

    def clips(n, shift):
        # each clip has its own offset (between-clip variation, as pieces do), frames around it
        return [rng.normal(size=(50, 3)) + shift + 0.5 * rng.normal(size=3) for _ in range(n)]

    few = fidelity.frechet_features(clips(8, 0.0), clips(8, 0.5), n_bootstrap=100, seed=0)
    many = fidelity.frechet_features(clips(128, 0.0), clips(128, 0.5), n_bootstrap=100, seed=0)
    assert many["se"] < 0.5 * few["se"]


def test_bootstrap_is_reproducible_with_a_seed():
    rng = np.random.default_rng(8)
    a = [rng.normal(size=(30, 2)) for _ in range(6)]
    b = [rng.normal(size=(30, 2)) + 1 for _ in range(6)]
    assert fidelity.frechet_features(a, b, 20, seed=1) == fidelity.frechet_features(a, b, 20, seed=1)
    assert fidelity.frechet_features(a, b, 20, seed=1)["se"] != fidelity.frechet_features(a, b, 20, seed=2)["se"]


def test_split_halves_keeps_pieces_together():
    groups = ["a", "a", "b", "c", "c", "c", "d", "e"]
    ia, ib = fidelity.split_halves(groups, seed=0)
    assert sorted(np.concatenate([ia, ib]).tolist()) == list(range(len(groups)))
    assert not {groups[i] for i in ia} & {groups[i] for i in ib}
    with pytest.raises(ValueError):
        fidelity.split_halves(["a", "a"])


def test_real_baseline_reports_disjoint_halves():
    rng = np.random.default_rng(9)
    clips = [0.1 * rng.normal(size=SR // 4) for _ in range(6)]
    out = fidelity.real_baseline(clips, groups=["p", "p", "q", "q", "r", "s"], n_bootstrap=5)
    assert not set(out["groups_a"]) & set(out["groups_b"])
    assert out["value"] >= 0 and np.isfinite(out["se"])


def test_n_vs_rest_splits_share_no_piece_and_take_n_items():
    groups = ["a"] * 12 + ["b"] * 12 + ["c"] * 3 + ["d"] * 12 + ["e"] * 5
    splits = fidelity.n_vs_rest_splits(groups, 8, n_splits=4, seed=0)
    assert len(splits) == 4 and len({tuple(a) for a, _ in splits}) == 4  # distinct splits
    for a, b in splits:
        in_a, in_b = {groups[i] for i in a}, {groups[i] for i in b}
        assert len(a) == 8 and not in_a & in_b
        assert sorted(b.tolist()) == [i for i, g in enumerate(groups) if g in in_b]  # the rest: whole pieces
        assert len(in_a) >= 2  # dealt over half the pieces, not 8 clips of one piece
    assert fidelity.n_vs_rest_splits(["a"] * 10, 2) == []  # one piece: no split
    (a, b), = fidelity.n_vs_rest_splits(["a"] * 10 + ["b"], 2)  # one way only: 2 of piece a against b
    assert (a.tolist(), b.tolist()) == ([0, 1], [10])


def test_real_baseline_n_averages_the_splits_without_averaging_credit():
    rng = np.random.default_rng(13)
    groups = np.repeat(["p", "q", "r", "s", "t", "u"], 4).tolist()
    clips = [0.1 * (1 + 0.2 * "pqrstu".index(g)) * rng.normal(size=SR // 8) for g in groups]
    out = fidelity.real_baseline_n(clips, groups, 4, n_splits=3, n_bootstrap=10)
    assert out["n"] == 4 and out["n_splits"] == len(out["splits"]) == 3
    assert out["value"] == pytest.approx(np.mean([s["value"] for s in out["splits"]]))
    assert out["se"] == pytest.approx(np.sqrt(np.mean([s["se"] ** 2 for s in out["splits"]])))
    for s in out["splits"]:
        assert not set(s["groups_a"]) & set(s["groups_b"]) and s["n_clips_b"] == 4 * len(s["groups_b"])
    # each split is frechet_log_mel of its two sides, pieces resampled
    a, b = fidelity.n_vs_rest_splits(groups, 4, 3)[0]
    first = fidelity.frechet_log_mel([clips[i] for i in a], [clips[i] for i in b], 10, 0,
                                     [groups[i] for i in a], [groups[i] for i in b])
    assert (out["splits"][0]["value"], out["splits"][0]["se"]) == (first["value"], first["se"])
    assert "reason" in fidelity.real_baseline_n(clips[:4], groups[:4], 4)


# --- note measures ----------------------------------------------------------------------------

C_MAJOR_SCALE = [60, 62, 64, 65, 67, 69, 71, 72]


def _scale(pitches, step=0.5, repeats=2):
    return np.array([[i * step, (i + 1) * step, p] for i, p in enumerate(list(pitches) * repeats)])


def test_pitch_class_histogram_by_hand():
    notes = np.array([[0.0, 1.0, 60], [0.0, 2.0, 72], [1.0, 1.5, 61]])
    hist = fidelity.pitch_class_histogram(notes, normalize=False)
    np.testing.assert_allclose(hist[:2], [3.0, 0.5])
    assert hist[2:].sum() == 0
    np.testing.assert_allclose(fidelity.pitch_class_histogram(notes).sum(), 1.0)
    assert np.all(fidelity.pitch_class_histogram(np.zeros((0, 3))) == 0)


def test_c_major_scale_has_a_stable_key_of_c():
    notes = _scale(C_MAJOR_SCALE)
    out = fidelity.key_stability(notes, seconds=8.0)
    assert out["key"] == "C major"
    assert out["key_change_rate"] == 0.0
    assert out["key_clarity"] > 0.8
    assert out["n_windows"] == 3  # windows at 0, 2, 4 s of a 8 s clip
    # transposed to G: the key follows
    assert fidelity.key_stability(notes + [0, 0, 7], seconds=8.0)["key"] == "G major"
    # the key profiles: C major's own profile correlates 1 with C major
    assert fidelity.key_correlations(fidelity.KK_MAJOR)[0] == pytest.approx(1.0)
    assert fidelity.KEY_NAMES[int(np.argmax(fidelity.key_correlations(np.roll(fidelity.KK_MINOR, 9))))] == "A minor"


def test_key_changes_are_counted():
    c = _scale(C_MAJOR_SCALE, repeats=1)  # 4 s in C
    f_sharp = _scale([p + 6 for p in C_MAJOR_SCALE], repeats=1) + [4.0, 4.0, 0]  # 4 s in F#
    notes = np.concatenate([c, f_sharp])
    keys, _ = fidelity.key_windows(notes, seconds=8.0, window=4.0, hop=4.0)
    assert [fidelity.KEY_NAMES[k] for k in keys] == ["C major", "F# major"]
    assert fidelity.key_stability(notes, 8.0, window=4.0, hop=4.0)["key_change_rate"] == 1.0
    assert np.isnan(fidelity.key_stability(np.zeros((0, 3)), 8.0)["key_clarity"])


def test_note_density_and_polyphony_by_hand():
    scale = _scale(C_MAJOR_SCALE)  # 16 notes, one at a time, in 8 s
    assert fidelity.note_density(scale, 8.0) == 2.0
    assert fidelity.polyphony(scale) == pytest.approx(1.0)
    triads = np.array([[0.0, 1.0, 60], [0.0, 1.0, 64], [0.0, 1.0, 67],   # 3 notes for 1 s
                       [2.0, 3.0, 62], [2.5, 3.0, 65]])                    # 1 note 0.5 s, 2 notes 0.5 s
    # sounding 2 s (silence 1..2 s is not counted): (3 * 1 + 1 * 0.5 + 2 * 0.5) / 2
    assert fidelity.polyphony(triads) == pytest.approx(2.25)
    assert fidelity.note_density(triads, 5.0) == 1.0
    assert np.isnan(fidelity.polyphony(np.zeros((0, 3))))


def test_note_measures_of_a_set_against_itself_and_against_another():
    rng = np.random.default_rng(10)
    scales = [(_scale(C_MAJOR_SCALE) + [rng.uniform(0, 0.1), 0, 0], 8.0) for _ in range(6)]
    out = fidelity.note_measures(scales, scales, n_bootstrap=50)
    assert out["pitch_class_distance"]["value"] == pytest.approx(0.0)
    for name in ("note_density", "polyphony", "key_clarity", "key_change_rate"):
        assert out[name]["difference"]["value"] == pytest.approx(0.0)
    assert out["note_density"]["samples"]["value"] == pytest.approx(2.0)
    chords = [(np.array([[t, t + 1.0, p] for t in range(8) for p in (61, 66, 70)]), 8.0) for _ in range(6)]
    out = fidelity.note_measures(chords, scales, n_bootstrap=50)
    assert out["pitch_class_distance"]["value"] > 0.5  # F# major triads against a C major scale
    assert out["polyphony"]["difference"]["value"] == pytest.approx(2.0)
    assert out["note_density"]["difference"]["value"] == pytest.approx(3.0 - 2.0)


def test_pitch_class_distance_of_a_set_without_notes_is_nan_not_half():
    scales = [(_scale(C_MAJOR_SCALE), 8.0) for _ in range(4)]
    silent = [(np.zeros((0, 3)), 8.0) for _ in range(4)]
    for a, b in ((silent, scales), (scales, silent), (silent, silent)):
        pcd = fidelity.note_measures(a, b, n_bootstrap=20)["pitch_class_distance"]
        assert np.isnan(pcd["value"]) and np.isnan(pcd["se"])
    # one clip without notes among others: resamples drawing only it are dropped from the SE
    mixed = silent[:1] + [(_scale([61, 66, 70] * 8), 8.0)]
    pcd = fidelity.note_measures(mixed, scales, n_bootstrap=50, seed=1)["pitch_class_distance"]
    assert pcd["value"] == pytest.approx(1.0) and np.isfinite(pcd["se"])


def test_too_few_notes_or_clips_give_no_value_or_no_se_and_say_how_many():
    scales = [(_scale(C_MAJOR_SCALE), 8.0) for _ in range(4)]  # 64 notes
    sparse = [(_scale([61, 66, 70]), 8.0)] + [(np.zeros((0, 3)), 8.0)] * 7  # 6 notes in 8 clips
    out = fidelity.note_measures(sparse, scales, n_bootstrap=30)
    pcd = out["pitch_class_distance"]
    assert np.isnan(pcd["value"]) and (pcd["n_notes_samples"], pcd["n_notes_reference"]) == (6, 64)
    assert np.isnan(pcd["se"])
    # 18 notes in all, though a resample drawing the 9-note clip three times reaches 24: still no value, no SE
    near = [(_scale([60, 64, 67], repeats=3), 8.0)] * 2 + [(np.zeros((0, 3)), 8.0)] * 2
    pcd = fidelity.note_measures(near, scales, n_bootstrap=60, seed=2)["pitch_class_distance"]
    assert np.isnan(pcd["value"]) and np.isnan(pcd["se"]) and pcd["n_valid"] > 0
    assert pcd["min_notes"] == fidelity.PITCH_CLASS_MIN_NOTES
    # one clip with a key window: its value, no SE (a bootstrap of one value has no spread), and the count
    clarity = out["key_clarity"]["samples"]
    assert np.isfinite(clarity["value"]) and np.isnan(clarity["se"])
    assert (clarity["n_clips"], clarity["n_total"]) == (1, 8)
    assert np.isnan(out["key_clarity"]["difference"]["se"])
    assert out["key_clarity"]["reference"]["n_clips"] == 4 and np.isfinite(out["key_clarity"]["reference"]["se"])
    assert out["note_density"]["samples"]["n_clips"] == 8  # every clip has a density (0 without notes)


def test_resampling_pieces_keeps_their_clips_together_and_widens_the_se():
    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(5), 4)  # 5 pieces of 4 clips
    idx = fidelity.resample_indices(rng, 20, groups)
    assert len(idx) == 20 and all(np.sum(groups[idx] == g) in (0, 4, 8, 12, 16, 20) for g in range(5))
    # clips of one piece share the piece's level: resampling clips as if independent understates the SE
    values = np.repeat(rng.normal(size=5), 4) + 0.01 * rng.normal(size=20)
    by_clip = fidelity.bootstrap(lambda i: values[i].mean(), 20, 200, seed=0)
    by_piece = fidelity.bootstrap(lambda i: values[i].mean(), 20, 200, seed=0, groups=groups)
    assert by_piece["value"] == by_clip["value"] and by_piece["se"] > 1.5 * by_clip["se"]
