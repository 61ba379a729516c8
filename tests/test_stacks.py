"""Table 3 (issue 16 items 1 and 3): stacks 3.1-3.7 as named experiments with their receptive fields in
ms, and top-down ancestral sampling through trained levels loaded from run folders."""
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import cli, configs, stacks
from tf_ada.models.wavenet import WaveNet
from tf_ada.train import Trainer, build_model


def test_stacks_state_their_levels_reusing_the_trained_rows():
    s = stacks.stack("3.6", "cpu")
    assert [lv.role for lv in s.levels] == ["first", "second", "prior"]
    assert s.levels[0].experiment == configs.table1_row("1.2", "cpu")
    assert s.levels[1].experiment == configs.table2_row("2.2", "cpu")
    assert s.prior.model == configs.large_wavenet("cpu", input_kind="one_hot", n_classes=256)
    assert stacks.stack("3.7", "cpu").levels[1].experiment == configs.table2_row("2.4", "cpu")
    assert stacks.stack("3.4", "cpu").prior.experiment == configs.table2_row("2.1", "cpu")  # #2.1 is 3.4's prior
    assert stacks.stack("3.5", "cpu").levels[0].experiment == configs.table1_row("1.7", "cpu")
    assert stacks.stack("3.1", "cpu").prior.experiment == configs.table1_row("1.1", "cpu")
    assert stacks.stack("3.2", "cpu").prior.model == configs.very_large_wavenet("cpu")
    assert stacks.stack("3.3", "cpu").prior.model == configs.thin_wavenet("cpu")
    for row, (_, n_levels, _) in stacks.PAPER_TABLE3.items():
        for scale in configs.SCALES:
            st = stacks.stack(row, scale)
            assert st.n_levels == n_levels
            for lv in st.levels:
                configs.validate(lv.experiment)
    with pytest.raises(ValueError, match="Table 3 has rows"):
        stacks.stack("3.8")


@pytest.mark.parametrize("scale", configs.SCALES)
def test_receptive_fields_in_ms_are_computed_and_match_the_papers_at_paper_scale(scale):
    table = {r["row"]: r for r in stacks.receptive_field_table(scale)}
    assert [table[r]["paper_rf_ms"] for r in sorted(table)] == [384, 768, 3072, 3072, 24576, 24576, 24576]
    for row, r in table.items():
        st = stacks.stack(row, scale)
        hops = int(np.prod([lv.model.hop for lv in st.adas])) if st.adas else 1
        assert st.receptive_field_ms == pytest.approx(st.prior.model.receptive_field * hops * 1000 / 16000)
        assert r["rf_ms"] == pytest.approx(st.receptive_field_ms, abs=0.01)
        if scale == "paper":  # ours: 1 + 2 * sum(dilations) (6139 for the large WaveNet); the paper: 6144
            assert r["rf_ms"] == pytest.approx(r["paper_rf_ms"], rel=1e-3)
    if scale == "paper":
        assert stacks.stack("3.1").receptive_field_ms == pytest.approx(6139 / 16)
        assert stacks.stack("3.6").receptive_field_samples == 6139 * 64


def test_cached_generation_of_a_prior_on_codes_equals_its_full_forward():
    cfg = stacks.prior_experiment("3.6", "tiny").model
    assert cfg.input_kind == "one_hot" and cfg.n_input_classes == cfg.output_channels == 256
    tf.keras.utils.set_random_seed(4)
    net = build_model(cfg)
    n = 2 * cfg.receptive_field + 5
    x = np.random.default_rng(0).integers(0, 256, (2, n)).astype(np.int32)
    full = net(x).numpy()
    state, got = net.init_state(2), []
    for t in range(n):
        logits, state = net.step(state, None if t == 0 else x[:, t - 1])
        got.append(logits.numpy())
    np.testing.assert_allclose(np.stack(got, 1), full, atol=2e-5 * max(1.0, np.abs(full).max()), rtol=1e-5)
    # the compiled sampling loop: at a near-zero temperature each code is the full forward's argmax
    codes = net.generate(n, batch_size=2, temperature=1e-4, seed=3, verbose=False).numpy()
    logits = net(codes).numpy()
    top2 = np.sort(logits, -1)[..., -2:]
    clear = top2[..., 1] - top2[..., 0] > 2e-3
    assert clear.mean() > 0.8
    np.testing.assert_array_equal(np.argmax(logits, -1)[clear], codes[clear])


@pytest.fixture(scope="module")
def stack_root(tmp_path_factory, tiny_row_1_2):
    """One root for every stack trained in this module, so that stacks share their common levels
    (as `stacks.train_stack` intends): holds a copy of the session's one-step row 1.2 (conftest.py,
    the first level of 3.4, 3.6 and 3.7), which `train_stack` finds finished and does not retrain."""
    root = tmp_path_factory.mktemp("stacks")
    shutil.copytree(tiny_row_1_2, root / os.path.basename(tiny_row_1_2))
    return root


@pytest.fixture(scope="module")
def stack_runs(audio_shards, stack_root):
    """Tiny levels of stack 3.6 trained one step each into run folders (`stacks.train_stack`): #1.2 on
    audio (the shared copy, reused), #2.2 on its codes, the prior on the second-level codes; and the
    stack description."""
    root, logs = stack_root, []
    desc = stacks.train_stack("3.6", "tiny", audio_shards, str(root), steps=1, log=logs.append)
    st = stacks.stack("3.6", "tiny", steps=1)
    assert any(f"{st.levels[0].experiment.name} already at step 1" in line for line in logs)
    for lv in st.levels[1:]:  # the levels above were trained here
        assert any(f"{lv.experiment.name} step 1/1" in line for line in logs), lv.role
    # the prior's excerpts (256 steps) are longer than the records the hop alone would give (8192 / 64)
    second_codes = root / f"codes_{st.levels[1].experiment.name}_step1"  # named by the checkpoint encoded
    assert json.load(open(second_codes / "manifest.json"))["chunk_samples"] == 256
    assert json.load(open(root / f"codes_{st.levels[0].experiment.name}_step1" / "manifest.json"))["chunk_samples"] \
        == 1024
    row, folders = stacks.read_runs(desc)
    assert row == "3.6" and sorted(folders) == ["first", "prior", "second"]
    return desc, folders


def test_top_down_sampling_equals_each_levels_decode_on_the_saved_codes(stack_runs, tmp_path, capsys):
    desc, folders = stack_runs
    out = tmp_path / "samples"
    code = cli.main(["sample", "--stack", "3.6", "--runs", desc, "--seconds", "0.1", "--n", "2", "--seed", "7",
                     "--level-temperature", "prior=0.9", "--out", str(out)])
    assert code == 0
    summary = json.load(open(out / "samples.json"))
    assert summary["levels_top_down"] == ["prior", "second", "first"]
    assert summary["temperatures"] == {"first": 1.0, "second": 1.0, "prior": 0.9}
    assert summary["seeds"] == stacks.level_seeds(7, ["first", "second", "prior"])
    assert summary["steps"] == {"prior": 25, "second": 200, "first": 1600}  # 0.1 s = 25 prior steps x 64
    assert summary["audio_seconds_per_wall_second"] > 0 and summary["receptive_field_ms"] == 124.0
    printed = capsys.readouterr().out
    assert "ETA" in printed and "s of audio per wall-clock second" in printed
    codes = {r: np.load(out / f"codes_{r}.npy") for r in ("prior", "second", "first")}
    assert codes["prior"].shape == (2, 25) and codes["first"].shape == (2, 1600)
    loaded = stacks.load_stack("3.6", folders, log=lambda *a: None)
    seeds, m = summary["seeds"], loaded.models
    prior = m["prior"].generate(25, batch_size=2, temperature=0.9, seed=seeds["prior"], verbose=False)
    np.testing.assert_array_equal(prior.numpy(), codes["prior"])
    second = m["second"].decode(codes["prior"], seed=seeds["second"], temperature=1.0, verbose=False)
    np.testing.assert_array_equal(second.numpy(), codes["second"])
    first = m["first"].decode(codes["second"], seed=seeds["first"], temperature=1.0, verbose=False)
    np.testing.assert_array_equal(first.numpy(), codes["first"])
    # a wav per stream for the audio and for every code level rendered through the levels below
    for folder in ("audio", "level_second", "level_prior"):
        assert sorted(os.listdir(out / folder)) == ["stream_00.wav", "stream_01.wav"], folder
    assert summary["level_renders"]["prior"]["through"] == ["second", "first"]
    # the N streams are different samples
    assert (codes["prior"][0] != codes["prior"][1]).any()


def test_stack_levels_are_checked(stack_runs, tmp_path, capsys):
    desc, folders = stack_runs
    with pytest.raises(stacks.StackError, match="has levels first, second, prior"):
        stacks.load_stack("3.6", {"first": folders["first"]}, log=lambda *a: None)
    with pytest.raises(stacks.StackError, match="must be a WaveNet"):
        stacks.load_stack("3.4", {"first": folders["first"], "prior": folders["second"]}, log=lambda *a: None)
    code = cli.main(["sample", "--stack", "3.6", "--runs", desc, "--out", str(tmp_path / "o"),
                     "--level", "second=" + folders["prior"]])
    assert code == 2 and "must be an ADA" in capsys.readouterr().err
    # the prior trained on the second level's codes: another second-level run below it is refused
    other = tmp_path / "other_second"
    shutil.copytree(folders["second"], other)
    code = cli.main(["sample", "--stack", "3.6", "--runs", desc, "--out", str(tmp_path / "o"),
                     "--level", f"second={other}"])
    assert code == 2 and "the prior level trained on" in capsys.readouterr().err
    assert stacks.read_corpora(desc)["second"].endswith("codes_table1_1_2_tiny_step1")
    # a shipped model as the first level ("pretrained:NAME", as Table 2's cpu codes record it) loads,
    # and is refused below a level that trained on the codes of another first level
    shipped = dict(folders, first="pretrained:1.2-cpu")
    loaded = stacks.load_stack("3.6", shipped, log=lambda *a: None)
    assert loaded.experiments["first"].name == "table1_1_2_cpu"
    with pytest.raises(stacks.StackError, match="the second level trained on .*not of the first level's run "
                                                "pretrained:1.2-cpu"):
        stacks.load_stack("3.6", shipped, log=lambda *a: None, corpora=stacks.read_corpora(desc))
    code = cli.main(["sample", "--stack", "3.7", "--runs", desc, "--out", str(tmp_path / "o")])
    assert code == 2 and "describes stack 3.6, not 3.7" in capsys.readouterr().err
    code = cli.main(["sample", "--stack", "3.6", "--runs", desc])
    assert code == 2 and "--out" in capsys.readouterr().err


def test_one_level_stack_and_the_old_sample_form(audio_shards, stack_root, tmp_path):
    exp = stacks.stack("3.1", "tiny", steps=1).prior.experiment
    # a plain Trainer run folder; made in the stack root under the name `train_stack` gives this level,
    # where the one-step smoke of every stack (below) finds it finished
    wn = stack_root / exp.name
    Trainer(exp, audio_shards, str(wn), log=lambda *a: None).train()
    assert cli.main(["sample", "--stack", "3.1", "--level", f"prior={wn}", "--seconds", "0.01",
                     "--n", "2", "--out", str(tmp_path / "s")]) == 0
    summary = json.load(open(tmp_path / "s" / "samples.json"))
    assert summary["steps"] == {"prior": 160} and summary["level_renders"] == {}
    assert np.load(tmp_path / "s" / "codes_prior.npy").shape == (2, 160)
    assert sorted(os.listdir(tmp_path / "s" / "audio")) == ["stream_00.wav", "stream_01.wav"]
    assert cli.main(["sample", str(tmp_path / "old.wav"), "--checkpoint", str(wn),
                     "--seconds", "0.01"]) == 0
    assert (tmp_path / "old.wav").exists()
    assert isinstance(stacks.load_stack("3.1", {"prior": str(wn)}, log=lambda *a: None).models["prior"],
                      WaveNet)


def test_resampling_a_folder_with_fewer_streams_leaves_no_stale_wav(tmp_path):
    """sample_stack clears audio/ and level_*/ before writing; sample_wavs reads exactly the wavs
    that samples.json lists (an untrained tiny 3.1 prior: the files, not the sound, matter here)."""
    exp = stacks.stack("3.1", "tiny", steps=1).prior.experiment
    tf.keras.utils.set_random_seed(0)
    loaded = stacks.LoadedStack("3.1", {"prior": build_model(exp.model)}, {"prior": exp}, {"prior": str(tmp_path)})
    out = tmp_path / "samples"
    stacks.sample_stack(loaded, 0.002, 3, str(out), log=lambda *a: None)
    assert sorted(os.listdir(out / "audio")) == ["stream_00.wav", "stream_01.wav", "stream_02.wav"]
    os.makedirs(out / "level_prior")  # as a 3.4 sampled into the same folder would have left
    open(out / "level_prior" / "stream_00.wav", "wb").close()
    open(out / "audio" / "stray.wav", "wb").close()
    summary = stacks.sample_stack(loaded, 0.002, 1, str(out), log=lambda *a: None)
    assert sorted(os.listdir(out / "audio")) == ["stream_00.wav"] and not (out / "level_prior").exists()
    assert summary["wavs"] == {"audio": ["audio/stream_00.wav"]}
    assert stacks.sample_wavs(str(out)) == [str(out / "audio" / "stream_00.wav")]
    open(out / "audio" / "stream_01.wav", "wb").close()  # a wav samples.json does not list is not read
    assert stacks.sample_wavs(str(out)) == [str(out / "audio" / "stream_00.wav")]
    with pytest.raises(stacks.StackError, match="no rendered level 'second'"):
        stacks.sample_wavs(str(out), "second")
    os.remove(out / "audio" / "stream_00.wav")
    with pytest.raises(stacks.StackError, match="stream_00.wav, which does not exist"):
        stacks.sample_wavs(str(out))


@pytest.mark.slow
def test_every_stack_trains_one_step_per_level_and_samples(audio_shards, stack_root, tmp_path):
    """A one-step smoke run per stack: its levels trained under one root (shared levels trained
    once), then 0.02 s of two streams sampled top-down. The root is this module's (`stack_root`):
    the levels of 3.6 (`stack_runs`), #1.2 and the prior of 3.1 are already there, and are reused."""
    logs = []
    for row in stacks.PAPER_TABLE3:
        desc = stacks.train_stack(row, "tiny", audio_shards, str(stack_root), steps=1, log=logs.append)
        out = tmp_path / f"samples_{row}"
        assert cli.main(["sample", "--stack", row, "--runs", desc, "--seconds", "0.02", "--n", "2",
                         "--out", str(out)]) == 0
        summary = json.load(open(out / "samples.json"))
        assert len(summary["levels_top_down"]) == stacks.PAPER_TABLE3[row][1]
        n_audio = summary["steps"][summary["levels_top_down"][-1]]
        assert n_audio >= 0.02 * 16000 and np.load(out / "codes_prior.npy").shape[0] == 2
        assert summary["receptive_field_ms"] == pytest.approx(stacks.stack(row, "tiny").receptive_field_ms, abs=0.01)
        for lv in stacks.stack(row, "tiny", steps=1).levels:  # every level has its one-step checkpoint
            assert any(f.startswith("ckpt-1") for f in os.listdir(stack_root / lv.experiment.name / "checkpoints"))
    assert any("already at step 1" in line for line in logs)  # #1.2, shared by 3.4, 3.6 and 3.7
    first = stacks.stack("3.4", "tiny", steps=1).levels[0].experiment.name
    assert sum(f"{first} already at step 1" in line for line in logs) == 3  # and never trained again
    assert not any(f"{first} step 1/1" in line for line in logs)


@pytest.mark.parametrize("argv,message", [
    (["sample"], "give OUTPUT.wav and --checkpoint RUN"),
    (["sample", "--stack", "3.6", "--runs", "x.json"], "--stack: give --out DIR"),
    (["sample", "o.wav", "--stack", "3.6", "--out", "D"], "OUTPUT.wav and --checkpoint are for one"),
    (["sample", "--stack", "3.6", "--out", "D", "--level", "top=R"], "ROLE one of first, second, prior"),
    (["sample", "--stack", "3.4", "--out", "D", "--level-temperature", "second=0.5"], "has levels first, prior"),
    (["sample", "--stack", "3.4", "--out", "D", "--level-temperature", "prior=0"], "T > 0"),
    (["sample", "--stack", "3.4", "--out", "D", "--level", "first=R"], "has levels first, prior; got run folders"),
    (["sample", "--stack", "3.6", "--out", "D", "--runs", "/nonexistent/s.json"], "cannot read the stack"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_sample_stack_usage_errors_are_one_line(capsys, argv, message):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("tf-ada sample: error:"), err


def test_a_shipped_first_level_round_trips_through_the_stack_description(audio_shards, tmp_path):
    """A stack over a shipped model (`reuse={"first": {"run": "pretrained:1.2-cpu"}}`, as Table 3
    reuses Table 2's cpu levels): the level above trains on codes encoded by the shipped weights,
    stack_ROW.json records "pretrained:1.2-cpu" (not a path), and reading it back loads the stack
    with its corpus check; codes recorded with other weights of that name are refused."""
    from tf_ada import data, pretrained
    root = tmp_path / "stacks"
    desc = stacks.train_stack("3.4", "tiny", audio_shards, str(root), steps=1, log=lambda *a: None,
                              reuse={"first": {"run": "pretrained:1.2-cpu", "trained_on": audio_shards}},
                              evaluate=False)
    assert json.load(open(desc))["levels"]["first"] == "pretrained:1.2-cpu"
    row, folders = stacks.read_runs(desc)
    assert folders["first"] == "pretrained:1.2-cpu" and os.path.isdir(folders["prior"])
    corpora = stacks.read_corpora(desc)
    manifest = data.load_manifest(corpora["prior"])
    assert manifest.source_checkpoint == "pretrained:1.2-cpu" and manifest.source_run is None
    assert manifest.source_weights_sha256 == \
        pretrained.read_card("1.2-cpu")["weights"]["files"][pretrained.WEIGHTS]["sha256"]
    loaded = stacks.load_stack("3.4", folders, log=lambda *a: None, corpora=corpora)
    assert loaded.experiments["first"].name == "table1_1_2_cpu"
    summary = stacks.sample_stack(loaded, 0.01, 1, str(tmp_path / "samples"), seed=0, log=lambda *a: None,
                                  render_levels=False)
    recorded = json.load(open(tmp_path / "samples" / "samples.json"))["run_folders"]
    assert recorded["first"] == "pretrained:1.2-cpu" and recorded["prior"] == os.path.realpath(folders["prior"])
    assert summary["seconds_per_stream"] > 0
    # the same codes said to come from other weights of the shipped name: refused
    stale = tmp_path / "stale_codes"
    shutil.copytree(corpora["prior"], stale)
    m = json.load(open(stale / "manifest.json"))
    m["source_weights_sha256"] = "0" * 64
    json.dump(m, open(stale / "manifest.json", "w"))
    with pytest.raises(stacks.StackError, match="the prior level trained on .*weights sha256 000000000000"):
        stacks.load_stack("3.4", folders, log=lambda *a: None, corpora=dict(corpora, prior=str(stale)))
