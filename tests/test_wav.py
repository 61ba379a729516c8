"""WAV decoding: RIFF headers are checked before any decoder sees the file; integer PCM of every
width and float PCM decode to known samples; float recordings above full scale are reported."""
import shutil
import struct
import subprocess

import numpy as np
import pytest

from tf_ada import data
from tf_ada.audio import AudioError, load_audio, read_wav
from conftest import tone, write_audio


def pcm_wav(samples, bits, rate=16000, extensible=False, float_data=False, data_size=None):
    """A wav file's bytes holding integer `samples` [T, C] (or floats with `float_data`)."""
    samples = np.asarray(samples)
    channels = samples.shape[1]
    if float_data:
        payload, tag = samples.astype(f"<f{bits // 8}").tobytes(), 3
    elif bits == 24:
        b = samples.astype("<i4").tobytes()
        payload, tag = b"".join(b[i:i + 3] for i in range(0, len(b), 4)), 1
    elif bits == 8:
        payload, tag = (samples + 128).astype(np.uint8).tobytes(), 1
    else:
        payload, tag = samples.astype(f"<i{bits // 8}").tobytes(), 1
    block = channels * bits // 8
    if extensible:  # WAVE_FORMAT_EXTENSIBLE, as sox writes for more than 16 bits
        guid = struct.pack("<H", tag) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0) + guid
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload) if data_size is None else data_size) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


KNOWN_32 = np.array([0, 2 ** 30, -2 ** 31, 2 ** 31 - 1, -2 ** 30, 12345678], np.int64)


@pytest.mark.parametrize("extensible", [False, True], ids=["plain", "extensible"])
def test_32_bit_integer_pcm_decodes_to_known_samples(tmp_path, extensible):
    path = tmp_path / "i32.wav"
    path.write_bytes(pcm_wav(KNOWN_32[:, None], 32, extensible=extensible))
    x, rate = read_wav(str(path))
    assert rate == 16000 and x.shape == (6, 1)
    np.testing.assert_allclose(x[:, 0], KNOWN_32 / 2.0 ** 31, atol=1e-7)
    np.testing.assert_allclose(load_audio(str(path)), KNOWN_32 / 2.0 ** 31, atol=1e-7)


@pytest.mark.parametrize("bits,scale", [(8, 128), (16, 32768), (24, 2 ** 23)])
def test_integer_pcm_of_every_width_decodes_to_known_samples(tmp_path, bits, scale):
    values = np.array([[0, -scale], [scale // 2, scale - 1], [-scale // 4, 1]])  # stereo frames
    path = tmp_path / f"i{bits}.wav"
    path.write_bytes(pcm_wav(values, bits))
    x, _ = read_wav(str(path))
    np.testing.assert_allclose(x, values / scale, atol=1e-7)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is installed by `make test` (as root)")
def test_sox_made_32_bit_integer_wav_matches_its_16_bit_source(tmp_path):
    src = write_audio(str(tmp_path / "s16.wav"), tone(0.5, 16000, amp=0.6), 16000)
    dst = str(tmp_path / "s32.wav")
    subprocess.run(["sox", src, "-b", "32", "-e", "signed-integer", dst], check=True)
    np.testing.assert_allclose(load_audio(dst), load_audio(src), atol=1e-6)
    assert np.abs(load_audio(dst)).max() == pytest.approx(0.6, abs=1e-3)


@pytest.mark.parametrize("size", [0xFFFFFFF0, 10 ** 6])
def test_data_chunk_larger_than_the_file_is_an_audio_error(tmp_path, size):
    path = tmp_path / "bad.wav"
    path.write_bytes(pcm_wav(np.zeros((100, 1)), 16, data_size=size))
    with pytest.raises(AudioError, match=f"data chunk claims {size} bytes but only 200 follow") as info:
        load_audio(str(path))
    assert info.value.path == str(path)


def test_prepare_skips_a_bad_header_and_keeps_the_good_file_before_it(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_audio(str(src / "a_good.wav"), tone(1.2, 16000), 16000)
    (src / "b_bad.wav").write_bytes(pcm_wav(np.zeros((20000, 1)), 16, data_size=0xFFFFFFF0))
    m = data.prepare(str(src), str(tmp_path / "out"), data.PrepareOptions(), log=lambda s: None)
    assert list(m["files"]) == ["a_good.wav"]
    assert "data chunk claims" in m["skipped"]["b_bad.wav"]["reason"]


def test_wav_without_data_or_with_an_unknown_encoding(tmp_path):
    path = tmp_path / "x.wav"
    path.write_bytes(pcm_wav(np.zeros((10, 1)), 16)[:36])
    with pytest.raises(AudioError, match="no data chunk"):
        load_audio(str(path))
    path.write_bytes(pcm_wav(np.zeros((10, 1)), 16).replace(b"\x01\x00\x01\x00", b"\x02\x00\x01\x00", 1))
    with pytest.raises(AudioError, match="unsupported wav encoding"):
        load_audio(str(path))


def test_float_wav_above_full_scale_is_reported_or_normalised(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    loud = tone(1.2, 16000, amp=4.0)
    (src / "loud.wav").write_bytes(pcm_wav(loud, 32, float_data=True))
    logs = []
    m = data.prepare(str(src), str(tmp_path / "out"), data.PrepareOptions(), log=logs.append)
    info = m["files"]["loud.wav"]
    assert info["peak"] == pytest.approx(4.0, abs=1e-3)
    assert info["clipped_fraction"] == pytest.approx(np.mean(np.abs(loud) > 1.0), abs=1e-3)
    assert any("loud.wav peaks at 4.00, above full scale" in line and "--normalize" in line for line in logs)
    scaled = data.prepare(str(src), str(tmp_path / "norm"), data.PrepareOptions(normalize=True), log=logs.append)
    assert "clipped_fraction" not in scaled["files"]["loud.wav"]
    def at_rails(folder):
        codes = data.read_sequences(str(tmp_path / folder), "train")[0]
        return np.mean((codes == 0) | (codes == 255))
    assert at_rails("out") > 0.5 and at_rails("norm") < 0.2  # a sine at 0.99 touches the top code near its peaks
