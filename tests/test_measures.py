"""The reconstruction measures (tf_ada/measures.py) on signals whose answer is known: white noise,
a pure chord, its 8-bit mu-law copy, silence."""
import numpy as np
import pytest

from tf_ada import measures, ops

SR = 16000
T = np.arange(5 * SR) / SR
C_MAJOR = (261.63, 329.63, 392.00)  # C4 E4 G4
F_SHARP_MAJOR = (277.18, 369.99, 466.16)  # C#4 F#4 A#4: no pitch class in common with C major


def chord(freqs=C_MAJOR, decay=True):
    x = sum(0.2 * np.sin(2 * np.pi * f * T) for f in freqs)
    return x * np.exp(-3.0 * (T % 1.0)) if decay else x  # a new attack every second, like piano notes


def noise(seed=0, std=0.1):
    return std * np.random.default_rng(seed).standard_normal(T.size)


def mu_law_copy(x):
    return ops.mu_law_decode(ops.mu_law_encode(np.asarray(x, np.float32))).numpy()


def test_white_noise_flatness_is_the_periodogram_value():
    # a single periodogram's bin powers are exponential: geometric / arithmetic mean = exp(-gamma)
    assert measures.spectral_flatness(noise()) == pytest.approx(np.exp(-np.euler_gamma), abs=0.02)
    # magnitudes are Rayleigh: 2 exp(-gamma / 2) / sqrt(pi)
    assert measures.spectral_flatness(noise(), power=1) == pytest.approx(
        2 * np.exp(-np.euler_gamma / 2) / np.sqrt(np.pi), abs=0.02)
    # 8-bit mu-law leaves noise as flat as it was
    assert measures.spectral_flatness(mu_law_copy(noise())) == pytest.approx(np.exp(-np.euler_gamma), abs=0.02)


def test_chord_flatness_is_low_and_mu_law_raises_it_only_a_little():
    assert measures.spectral_flatness(chord()) < 1e-6
    assert measures.spectral_flatness(mu_law_copy(chord())) < 1e-3  # quantisation noise 40 dB down
    assert measures.spectral_flatness(mu_law_copy(chord()), power=1) < 0.2  # against 0.85 for noise
    assert measures.spectral_flatness(chord() + noise(std=0.3)) > 0.1


def test_flatness_counts_only_frames_with_energy():
    x = np.concatenate([mu_law_copy(chord()), np.zeros(5 * SR)])
    assert measures.spectral_flatness(x) == pytest.approx(measures.spectral_flatness(mu_law_copy(chord())), rel=0.2)
    # a faint hiss 60 dB below the chord's peak is outside the 40 dB window, so it does not count
    faint = np.concatenate([chord(decay=False), noise(std=1e-4)])
    assert measures.spectral_flatness(faint) < 1e-6
    assert np.isnan(measures.spectral_flatness(np.zeros(SR)))


def test_chroma_finds_the_pitch_classes():
    c, _ = measures.chroma(0.3 * np.sin(2 * np.pi * 440.0 * T))
    assert (np.argmax(c, axis=1) == measures.PITCH_CLASSES.index("A")).all()
    c, _ = measures.chroma(chord(decay=False))
    top3 = {measures.PITCH_CLASSES[i] for i in np.argsort(-c.mean(axis=0))[:3]}
    assert top3 == {"C", "E", "G"}
    # white noise: flat in expectation (each class is a mean over its bins, not a sum)
    c, _ = measures.chroma(noise())
    assert c.mean(axis=0).std() / c.mean() < 0.05


def test_chroma_correlation_copy_one_noise_zero():
    x = chord()
    assert measures.chroma_correlation(x, x) == pytest.approx(1.0)
    assert measures.chroma_correlation(x, mu_law_copy(x)) > 0.999
    scores = [measures.chroma_correlation(x, noise(seed)) for seed in range(4)]
    assert all(abs(s) < 0.15 for s in scores) and abs(np.mean(scores)) < 0.1
    assert measures.chroma_correlation(x, chord(F_SHARP_MAJOR)) < -0.1  # other notes: below noise
    # additive noise adds the same expected power to every class, which Pearson ignores: a noise
    # floor loud enough to make the spectrum nearly flat (flatness 0.78 of 0.85 on magnitudes) keeps
    # the notes' correlation
    noisy = x + noise(std=0.05)
    assert measures.spectral_flatness(noisy, power=1) > 0.7
    assert measures.chroma_correlation(x, noisy) > 0.95
    assert measures.chroma_correlation(x, np.zeros_like(x)) == 0.0  # silence follows nothing
    assert np.isnan(measures.chroma_correlation(np.zeros(SR), x))


def test_chroma_correlation_averages_over_the_originals_frames_with_energy():
    # the original is silent for its second half; the reconstruction there is noise: not counted
    original = np.concatenate([chord()[: 3 * SR], np.zeros(3 * SR)])
    reconstruction = np.concatenate([chord()[: 3 * SR], noise()[: 3 * SR]])
    assert measures.chroma_correlation(original, reconstruction) > 0.99
    # a shorter reconstruction is compared over the common length
    assert measures.chroma_correlation(chord(), chord()[: 2 * SR]) == pytest.approx(1.0)


def test_frame_correlation_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.random((5, 12)), rng.random((5, 12))
    expected = [np.corrcoef(a[i], b[i])[0, 1] for i in range(5)]
    np.testing.assert_allclose(measures.frame_correlation(a, b), expected, rtol=1e-12)
