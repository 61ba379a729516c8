import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np
import pytest
import tensorflow as tf

import tf_ada.audio  # noqa: F401  (loads tensorflow-io)
import tensorflow_io as tfio


def tone(seconds, rate, freq=440.0, amp=0.5, channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = amp * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x * (1.0 - 0.3 * c) for c in range(channels)], 1).astype(np.float32)


def write_audio(path, audio, rate, fmt=None):
    """Writes float `[T, C]` audio as wav (16-bit or float), flac, ogg or mp3 via TensorFlow/tfio."""
    fmt = fmt or os.path.splitext(path)[1][1:]
    if fmt == "wav":
        data = tf.audio.encode_wav(audio, rate)
    elif fmt == "wavfloat":
        data = _float_wav(audio, rate)
    elif fmt == "flac":
        data = tfio.audio.encode_flac(tf.constant((audio * 32767).astype(np.int16)), rate=rate)
    elif fmt == "ogg":
        data = tfio.audio.encode_vorbis(tf.constant(audio), rate=rate)
    elif fmt == "mp3":
        data = tfio.audio.encode_mp3(tf.constant(audio), rate=rate)
    else:
        raise ValueError(fmt)
    data = data.numpy() if hasattr(data, "numpy") else data
    with open(path, "wb") as f:
        f.write(data)
    return path


def _float_wav(audio, rate):
    import struct
    n, c = audio.shape
    payload = audio.astype("<f4").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(payload)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 3, c, rate, rate * c * 4, c * 4, 32)
    return header + fmt + b"data" + struct.pack("<I", len(payload)) + payload


def tone_folder(folder, n, first_freq, freq_step, seconds=0.6):
    """`folder` (created) holding n mono 16 kHz wavs r0.wav ... of tones first_freq + i * freq_step."""
    folder.mkdir()
    for i in range(n):
        write_audio(str(folder / f"r{i}.wav"), tone(seconds, 16000, first_freq + freq_step * i), 16000)
    return folder


@pytest.fixture
def recordings(tmp_path):
    """A folder holding good and bad recordings of every supported kind."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    write_audio(str(src / "mono16k.wav"), tone(2.0, 16000, 220), 16000)
    write_audio(str(src / "stereo44k.flac"), tone(2.5, 44100, 330, channels=2), 44100)
    write_audio(str(src / "sub" / "song.mp3"), tone(2.0, 22050, 440, channels=2), 22050)
    write_audio(str(src / "sub" / "notes.ogg"), tone(1.5, 48000, 550, channels=2), 48000)
    write_audio(str(src / "float.wav"), tone(1.5, 8000, 110), 8000, fmt="wavfloat")
    write_audio(str(src / "short.wav"), tone(0.2, 16000), 16000)
    write_audio(str(src / "silent.wav"), np.zeros((32000, 1), np.float32), 16000)
    (src / "empty.wav").write_bytes(b"")
    (src / "corrupt.flac").write_bytes(b"fLaC" + os.urandom(3000))
    (src / "notes.txt").write_text("not audio, ignored")
    return src


def make_audio_shards(path, n_files=3, seconds=2.0, seed=0):
    """Synthetic mu-law audio shards (decaying random tones) with a train and an eval split."""
    from tf_ada import data, ops
    rng = np.random.default_rng(seed)
    w = data.ShardWriter(str(path), kind="audio", dtype="uint8", n_classes=256, sample_rate=16000,
                         chunk_samples=8192)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    for i in range(n_files):
        freqs = rng.uniform(100, 1000, 3)
        x = sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs) * np.exp(-((t * 3) % 1.0))
        w.add(f"f{i}.wav", "eval" if i == n_files - 1 else "train", ops.mu_law_encode(x.astype(np.float32)).numpy(), {})
    w.close()
    return str(path)


# --- parallel runs (make test: pytest-xdist, --dist loadgroup) -----------------------------------------
# A test that uses the shared tiny runs below goes to the "tiny_runs" group, every other test to its
# file's group: xdist keeps a group in one process, so the session's runs and each file's module
# fixtures are built once. Without xdist the marks do nothing.
SHARED_RUN_FIXTURES = {"table1_tiny_out", "tiny_row_1_2", "table1_tiny", "table1_tiny_resumed"}


def pytest_configure(config):
    config.addinivalue_line("markers", "xdist_group(name): tests that pytest-xdist runs in one process")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks (pluggy calls later plugins first)
def pytest_collection_modifyitems(config, items):
    shared = [i for i in items if SHARED_RUN_FIXTURES & set(getattr(i, "fixturenames", ()))]
    in_shared = set(shared)  # membership in constant time (items hash by node id)
    for item in items:
        item.add_marker(pytest.mark.xdist_group("tiny_runs" if item in in_shared else item.module.__name__))
    # the longest group first (in its own order), so that the other process runs everything else
    # beside it instead of waiting for it at the end
    items[:] = shared + [i for i in items if i not in in_shared]


@pytest.fixture(scope="session")
def audio_shards(tmp_path_factory):
    return make_audio_shards(tmp_path_factory.mktemp("audio_shards"))


# --- tiny trained runs shared between the Table 1, Table 2, Figure 2 and stack tests ------------------
# Each is trained once per session; a test that changes a run works on a copy.

@pytest.fixture(scope="session")
def table1_tiny_out(tmp_path_factory):
    """The output folder of the session's tiny Table 1 (filled by `tiny_row_1_2` and `table1_tiny`)."""
    return str(tmp_path_factory.mktemp("table1_tiny"))


@pytest.fixture(scope="session")
def tiny_row_1_2(audio_shards, table1_tiny_out):
    """Row 1.2 (the first-level VQ-VAE) trained one step by `reproduce.table1.run_row` at tiny scale:
    its run folder (checkpoint, row.json, eval_sequences.npz, reconstructions). Read-only: copy it
    before training it further."""
    from reproduce import table1
    result = table1.run_row("1.2", "tiny", audio_shards, table1_tiny_out, steps=1, log=lambda *a: None)
    assert result["steps"] == 1
    return result["run_dir"]


@pytest.fixture(scope="session")
def table1_tiny(audio_shards, table1_tiny_out, tiny_row_1_2):
    """(exit code, output folder) of `python -m reproduce.table1 --scale tiny --steps 1` over every
    row, in the folder that already holds `tiny_row_1_2` (reused as done: the command skips a
    finished row). Read-only."""
    from reproduce import table1
    code = table1.main(["--scale", "tiny", "--data", audio_shards, "--out", table1_tiny_out, "--steps", "1"])
    return code, table1_tiny_out


@pytest.fixture(scope="session")
def table1_tiny_resumed(audio_shards, table1_tiny, tmp_path_factory):
    """Rows 1.2 and 1.1 of `table1_tiny` copied to PARENT/first_level and resumed there to step 2
    (`table1.run_row`): (that folder, the runs' log lines, {row: row.json}). Step 2 is the tiny
    default, so PARENT is a Table 2 output folder whose first level (row 1.2) is done."""
    import shutil
    from reproduce import table1
    _, src = table1_tiny
    out = tmp_path_factory.mktemp("table2_tiny") / "first_level"
    for row in ("1.2", "1.1"):
        name = f"table1_{row.replace('.', '_')}_tiny"
        shutil.copytree(os.path.join(src, name), out / name)
    logs, results = [], {}
    for row in ("1.2", "1.1"):
        results[row] = table1.run_row(row, "tiny", audio_shards, str(out), steps=2, log=logs.append)
    return str(out), logs, results
