import numpy as np
import pytest

from tf_ada.audio import AudioError, load_audio, save_wav
from conftest import tone, write_audio


def dominant_hz(x, rate=16000):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(spectrum) * rate / x.size


@pytest.mark.parametrize("name,rate,channels,fmt", [
    ("a.wav", 16000, 1, "wav"), ("b.wav", 44100, 2, "wav"), ("c.flac", 44100, 2, "flac"),
    ("d.ogg", 48000, 2, "ogg"), ("e.mp3", 22050, 2, "mp3"), ("f.wav", 8000, 1, "wavfloat")])
def test_load_any_format_to_mono_16k(tmp_path, name, rate, channels, fmt):
    src = tone(1.0, rate, freq=440.0, amp=0.5, channels=channels)
    path = write_audio(str(tmp_path / name), src, rate, fmt=fmt)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # mp3 adds encoder delay/padding; every other format keeps the duration exactly
    assert abs(audio.size - 16000) <= (2000 if fmt == "mp3" else 1)
    assert abs(dominant_hz(audio[2000:14000]) - 440.0) < 3.0
    # mono mix of channels scaled 1.0 and 0.7: peak 0.5 * 0.85
    want_peak = 0.5 * (1.0 if channels == 1 else 0.85)
    assert abs(np.abs(audio[2000:14000]).max() - want_peak) < 0.05


def test_sixteen_bit_scaling_is_exact(tmp_path):
    x = np.array([[-1.0], [-0.5], [0.0], [0.5]], np.float32).repeat(4000, 0)
    audio = load_audio(write_audio(str(tmp_path / "s.wav"), x, 16000))
    np.testing.assert_allclose(audio[::4000], [-1.0, -0.5, 0.0, 0.5], atol=1 / 32768)


@pytest.mark.parametrize("content,reason", [
    (b"", "empty"), (b"RIFF" + b"\x00" * 50, "cannot decode"), (b"fLaC" + b"\x13" * 500, "cannot decode")])
def test_bad_files_name_file_and_reason(tmp_path, content, reason):
    path = tmp_path / ("bad.flac" if content.startswith(b"fLaC") else "bad.wav")
    path.write_bytes(content)
    with pytest.raises(AudioError, match=reason) as info:
        load_audio(str(path))
    assert str(path) in str(info.value) and info.value.path == str(path)


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(str(tmp_path / "nope.wav"))
    (tmp_path / "x.aiff").write_bytes(b"1234")
    with pytest.raises(AudioError, match="unsupported extension"):
        load_audio(str(tmp_path / "x.aiff"))


def test_save_wav_round_trip(tmp_path):
    x = tone(0.5, 16000)[:, 0]
    save_wav(str(tmp_path / "o" / "x.wav"), x)
    np.testing.assert_allclose(load_audio(str(tmp_path / "o" / "x.wav")), x, atol=1e-4)
