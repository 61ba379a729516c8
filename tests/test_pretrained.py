"""Shipped pretrained models (tf_ada/pretrained): export from a run folder, load without training,
the card, clear errors, packaging, `tf-ada reconstruct --pretrained`, and the shipped weights'
loadability check (each model's NLL on its stored held-out excerpt is the one its card states)."""
import configparser
import fnmatch
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import cli, configs, data, pretrained
from tf_ada.train import Trainer, load_model, polyak_variables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "tiny-1.2"


@pytest.fixture(scope="module")
def tiny_run(audio_shards, tmp_path_factory):
    """A VQ-VAE (its codebook is Polyak-averaged too) trained for 2 tiny steps, evaluated at step 2."""
    run = str(tmp_path_factory.mktemp("pretrained") / "run")
    trainer = Trainer(configs.table1_row("1.2", "tiny", steps=2), audio_shards, run, log=lambda s: None)
    trainer.train()
    LIVE_WEIGHTS[:] = [v.numpy() for v in polyak_variables(trainer.model)]  # the last step's, not averaged
    return run


LIVE_WEIGHTS = []


@pytest.fixture(scope="module")
def exported(tiny_run, audio_shards, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("registry"))
    pretrained.export_run(tiny_run, NAME, audio_shards, root=root, log=lambda s: None)
    return root


def fixed_input(hop=8, n=512, seed=0):
    return tf.constant(np.random.default_rng(seed).integers(0, 256, size=(2, n)), tf.int32)


def test_export_then_load_gives_the_run_folders_polyak_model(tiny_run, exported, audio_shards):
    model, experiment, card = pretrained.load(NAME, root=exported)
    reference, ref_experiment = load_model(tiny_run)
    assert experiment == ref_experiment
    x = fixed_input()
    out, ref = model(x), reference(x)
    np.testing.assert_array_equal(out.logits.numpy(), ref.logits.numpy())
    assert float(out.nll) == float(ref.nll)
    for a, b in zip(model.variables, reference.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # the Polyak averages were shipped (the codebook's too), not the last step's weights
    ckpt = tf.train.load_checkpoint(os.path.join(tiny_run, "checkpoints", "ckpt-2"))
    shipped = polyak_variables(model)
    for i, v in enumerate(shipped):
        np.testing.assert_array_equal(v.numpy(), ckpt.get_tensor(f"polyak/{i}/.ATTRIBUTES/VARIABLE_VALUE"))
    assert len(LIVE_WEIGHTS) == len(shipped)
    assert not all(np.array_equal(v.numpy(), w) for v, w in zip(shipped, LIVE_WEIGHTS))
    # the card's check: the stored held-out excerpt gives the NLL the card states
    assert pretrained.check_nll(model, NAME, root=exported) == pytest.approx(card["check"]["nll"], abs=1e-6)
    assert card["check"]["nll"] == pytest.approx(card["check"]["nll_run_folder"], abs=1e-6)


def test_exported_folder_holds_only_polyak_weights_and_the_card(tiny_run, exported, audio_shards):
    folder = os.path.join(exported, NAME)
    assert sorted(os.listdir(folder)) == sorted([
        "experiment.json", "weights.npz", "card.json", "CARD.md", "nll_curve.png", "check_excerpt.npy"])
    model, _, _ = pretrained.load(NAME, root=exported)
    with np.load(os.path.join(folder, "weights.npz")) as z:  # one array per variable: no optimiser state, no step
        assert len(z.files) == 1 + len(model.variables) and z["v0000"].dtype == np.float32
    card = json.load(open(os.path.join(folder, "card.json")))
    ev = json.load(open(os.path.join(tiny_run, "eval.json")))
    assert card["steps"] == 2 and card["eval_step"] == 2 and card["paper_row"] == "1.2" and card["scale"] == "tiny"
    assert card["corpus_hash"] == data.corpus_hash(audio_shards) == ev["corpus_hash"]
    for key in ("eval_nll_paper", "eval_nll_paper_se", "eval_nll_full", "eval_nll_full_se", "eval_perplexity_paper",
                "eval_perplexity_full", "eval_codes_in_use_full"):
        assert card["eval"][key] == pytest.approx(ev[key], nan_ok=True), key  # one held-out work: SE is NaN
    assert [h["step"] for h in card["history"]] == [2]
    assert card["command"].startswith("tf-ada train --row 1.2 --scale tiny --steps 2 ")
    assert card["wall_seconds"] is not None and card["wall_seconds"] >= 0
    assert card["weights"]["dtype"] == "float32" and card["weights"]["bytes"] < pretrained.MAX_BYTES
    md = open(os.path.join(folder, "CARD.md")).read()
    assert f"{ev['eval_nll_paper']:.3f}" in md and "nll_curve.png" in md and card["corpus_hash"] in md
    assert open(os.path.join(folder, "nll_curve.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_every_exported_file_is_package_data(exported):
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    patterns = cfg["options.package_data"]["tf_ada.pretrained"].split()
    for fname in os.listdir(os.path.join(exported, NAME)):
        assert any(fnmatch.fnmatch(f"{NAME}/{fname}", p) for p in patterns), fname


def test_registry_root_from_the_environment(exported, monkeypatch):
    monkeypatch.setenv(pretrained.ENV_VAR, exported)
    assert pretrained.available() == [NAME]
    model, _, card = pretrained.load(NAME)
    assert card["name"] == NAME


def test_missing_and_unknown_models_are_clear_errors(exported, tmp_path):
    with pytest.raises(pretrained.PretrainedError, match="1.2-cpu is not shipped in this checkout.*shipped here: none"):
        pretrained.load("1.2-cpu", root=str(tmp_path))
    with pytest.raises(pretrained.PretrainedError, match=f"1.5-cpu is not shipped.*shipped here: {NAME}"):
        pretrained.load("1.5-cpu", root=exported)
    with pytest.raises(pretrained.PretrainedError, match="unknown pretrained model 'nope'; known: 1.2-cpu, 1.5-cpu"):
        pretrained.load("nope", root=exported)
    with pytest.raises(pretrained.PretrainedError, match="not a model name"):
        pretrained.load("../x", root=exported)


def test_damaged_or_mismatched_weights_are_named(exported, tmp_path):
    root = str(tmp_path / "r")
    shutil.copytree(exported, root)
    path = os.path.join(root, NAME, "weights.npz")
    blob = bytearray(open(path, "rb").read())
    blob[len(blob) // 2] ^= 0xFF
    open(path, "wb").write(bytes(blob))
    with pytest.raises(pretrained.PretrainedError, match="is damaged"):
        pretrained.load(NAME, root=root)
    # weights of one model under another model's experiment.json: refused, not silently half-loaded
    shutil.rmtree(root)
    shutil.copytree(exported, root)
    other = configs.table1_row("1.5", "tiny").to_dict()
    json.dump(other, open(os.path.join(root, NAME, "experiment.json"), "w"))
    with pytest.raises(pretrained.PretrainedError, match="do not fit the model"):
        pretrained.load(NAME, root=root)


def test_float16_export_halves_the_weights(tiny_run, exported, audio_shards, tmp_path):
    root = str(tmp_path)
    pretrained.export_run(tiny_run, "half", audio_shards, root=root, float16=True, log=lambda s: None)
    model, _, card = pretrained.load("half", root=root)
    full = json.load(open(os.path.join(exported, NAME, "card.json")))
    assert card["weights"]["dtype"] == "float16" and card["weights"]["bytes"] < 0.7 * full["weights"]["bytes"]
    reference, _ = load_model(tiny_run)
    x = fixed_input()
    np.testing.assert_allclose(model(x).logits.numpy(), reference(x).logits.numpy(), atol=0.05)
    assert card["check"]["nll"] == pytest.approx(card["check"]["nll_run_folder"], abs=0.02)


def test_export_refuses_oversize_stale_or_foreign_runs(tiny_run, audio_shards, tmp_path):
    root = str(tmp_path / "r")
    with pytest.raises(pretrained.PretrainedError, match="over the 0.001 MB limit; export with float16"):
        pretrained.export_run(tiny_run, NAME, audio_shards, root=root, max_bytes=1000, log=lambda s: None)
    assert os.listdir(root) == []  # nothing half-written left behind
    stale = str(tmp_path / "stale")
    shutil.copytree(tiny_run, stale)
    ev = json.load(open(os.path.join(stale, "eval.json")))
    json.dump({**ev, "step": 1}, open(os.path.join(stale, "eval.json"), "w"))
    with pytest.raises(pretrained.PretrainedError, match="eval.json is from step 1, the newest checkpoint from step 2"):
        pretrained.export_run(stale, NAME, audio_shards, root=root, log=lambda s: None)
    json.dump({**ev, "corpus_hash": "0" * 64}, open(os.path.join(stale, "eval.json"), "w"))
    with pytest.raises(pretrained.PretrainedError, match="is not the one the run was evaluated on"):
        pretrained.export_run(stale, NAME, audio_shards, root=root, log=lambda s: None)


def test_wall_time_leaves_out_pauses_and_trend_compares_with_one_se(tmp_path, monkeypatch):
    (tmp_path / "train.log").write_text(
        "2026-01-01 10:00:00 train: start\n2026-01-01 10:30:00 train: step 50\nnot a time\n"
        "2026-01-01 14:30:00 train: resumed\n2026-01-01 15:00:00 train: step 100\n")
    seconds, source = pretrained.wall_time(str(tmp_path))
    assert seconds == 3600 and "train.log" in source and "1 pause(s)" in source
    assert pretrained.wall_time(str(tmp_path / "none"))[0] is None
    # an earlier stretch that only TensorBoard saw (train.log came later) counts too
    import datetime
    start = datetime.datetime(2026, 1, 1, 6, 0).timestamp()
    events = [start, start + 600, start + 1200]
    monkeypatch.setattr(pretrained, "_event_times", lambda tb_dir: events)
    seconds, source = pretrained.wall_time(str(tmp_path))
    assert seconds == 3600 + 1200 and "train.log and TensorBoard" in source and "2 pause(s)" in source
    history = [{"step": s, "eval_nll_paper": v, "eval_nll_paper_se": 0.05} for s, v in
               ((1000, 3.0), (2000, 2.8), (2500, 2.78), (3000, 2.76))]
    t = pretrained.nll_trend(history)["paper"]
    assert t["from_step"] == 2000 and t["drop_per_1000_steps"] == pytest.approx(0.04) and not t["still_falling"]
    t = pretrained.nll_trend(history[:2])["paper"]
    assert t["drop_per_1000_steps"] == pytest.approx(0.2) and t["still_falling"]


def test_cli_reconstruct_with_a_pretrained_model(exported, monkeypatch, tmp_path, capsys):
    from conftest import tone, write_audio
    wav = write_audio(str(tmp_path / "in.wav"), tone(0.05, 16000), 16000)
    monkeypatch.setenv(pretrained.ENV_VAR, exported)
    assert cli.main(["reconstruct", wav, str(tmp_path / "out.wav"), "--pretrained", NAME]) == 0
    assert "100 codes (hop 8)" in capsys.readouterr().out and (tmp_path / "out.wav").stat().st_size > 1000
    code = cli.main(["reconstruct", wav, str(tmp_path / "o.wav"), "--pretrained", "1.2-cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "1.2-cpu is not shipped in this checkout" in err[0]
    code = cli.main(["reconstruct", wav, str(tmp_path / "o.wav"), "--pretrained", NAME, "--checkpoint", "C"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not allowed with argument" in err[0]
    assert cli.main(["reconstruct", wav, str(tmp_path / "o.wav")]) == 2
    assert "one of the arguments --checkpoint --pretrained is required" in capsys.readouterr().err


SHIPPED = pretrained.available(pretrained.PACKAGE_DIR)


@pytest.mark.parametrize("name", SHIPPED or [pytest.param(None, marks=pytest.mark.skip(
    reason="no pretrained weights shipped in this checkout yet"))])
def test_shipped_model_loads_and_gives_its_card_nll(name):
    """Any later change to configs, layers or checkpoints must keep the shipped weights loadable and
    giving the NLL their card states on the stored held-out excerpt."""
    model, experiment, card = pretrained.load(name, root=pretrained.PACKAGE_DIR)
    assert card["name"] == name and card["weights"]["bytes"] < pretrained.MAX_BYTES
    assert pretrained.check_nll(model, name, root=pretrained.PACKAGE_DIR) == pytest.approx(
        card["check"]["nll"], abs=card["check"]["tolerance"])
    if name in pretrained.MODELS:
        assert card["paper_row"] == pretrained.MODELS[name][0] and card["scale"] == pretrained.MODELS[name][1]
        # issue 13: at least 10x the Table 1 cpu budget; weights shipped before that are marked
        # intermediate in their card (and the issue stays open)
        assert card["steps"] >= 6000 or card.get("intermediate") is True


def test_demo_reconstructs_a_fixed_set_of_heldout_excerpts(exported, audio_shards, tmp_path):
    from reproduce import demo
    from tf_ada import measures, ops
    out, logs = str(tmp_path / "demo"), []
    result = demo.pretrained_reconstructions(audio_shards, out, names=[NAME, "1.5-cpu"], n_excerpts=3, seconds=0.25,
                                             root=exported, log=logs.append)
    assert any("1.5-cpu is not shipped in this checkout" in line for line in logs)
    assert not any("WARNING" in line for line in logs)  # the card's corpus hash is this corpus's
    manifest = data.load_manifest(audio_shards)
    eval_files = [n for n, f in manifest["files"].items() if f["split"] == "eval"]
    rows, m = result["excerpts"], result["models"][NAME]
    assert len(rows) == len(m["excerpts"]) == 3 and {r["recording"] for r in rows} <= set(eval_files)
    assert len({r["start_seconds"] for r in rows}) == 3
    again = demo.heldout_excerpts(audio_shards, "eval", 3, 0.25)  # fixed: the same excerpts every time
    assert [(e["recording"], e["start"] / 16000) for e in again] == [(r["recording"], r["start_seconds"]) for r in rows]
    n = 3968  # 0.25 s rounded down to a multiple of 64
    for i, (row, p) in enumerate(zip(rows, m["excerpts"])):
        for wav in (row["original"], p["reconstruction"]):
            assert os.path.getsize(os.path.join(out, wav)) == 44 + 2 * n
        assert row["flatness_original"] == pytest.approx(measures.spectral_flatness(
            ops.mu_law_decode(again[i]["x"]).numpy()))
        assert 0 <= p["flatness"] <= 1 and -1 <= p["chroma_correlation"] <= 1
    assert m["medians"]["chroma_correlation"] == pytest.approx(np.median([p["chroma_correlation"]
                                                                          for p in m["excerpts"]]))
    report = demo.pretrained_report(result)
    assert "**median**" in report and "Targets (issue 13" in report and report.count(" @ ") == 3
    index = open(demo.write_index(out, {}, "table", result)).read()
    assert "<th>chroma correlation</th>" in index and f"src='{m['excerpts'][2]['reconstruction']}'" in index
    assert "<th>median</th>" in index and "Corpus hash differs" not in index
    # a card naming another corpus: said clearly, in the log and on the page
    root = str(tmp_path / "other")
    shutil.copytree(exported, root)
    card_path = os.path.join(root, NAME, "card.json")
    card = json.load(open(card_path))
    json.dump({**card, "corpus_hash": "f" * 64}, open(card_path, "w"))
    logs.clear()
    result = demo.pretrained_reconstructions(audio_shards, out, names=[NAME], n_excerpts=1, seconds=0.25, root=root,
                                             log=logs.append)
    assert any("WARNING" in line and "ffffffffffff" in line for line in logs)
    assert "Corpus hash differs" in open(demo.write_index(out, {}, "table", result)).read()


def test_demo_without_shipped_weights_says_so_in_one_line(audio_shards, tmp_path):
    from reproduce import demo
    logs = []
    assert demo.pretrained_reconstructions(audio_shards, str(tmp_path), root=str(tmp_path), log=logs.append) is None
    assert logs == ["demo: no pretrained weights shipped in this checkout (1.2-cpu, 1.5-cpu); "
                    "skipping the pretrained reconstructions"]
    assert "No pretrained weights are shipped" in open(demo.write_index(str(tmp_path), {}, "table")).read()


def test_demo_main_runs_the_pretrained_models_and_table1(exported, audio_shards, tmp_path, monkeypatch):
    from reproduce import demo
    monkeypatch.setenv(pretrained.ENV_VAR, exported)
    monkeypatch.setattr(demo.table1, "default_data", lambda scale, hours=3.0: audio_shards)
    out = str(tmp_path / "demo")
    assert demo.main(["--scale", "tiny", "--steps", "1", "--rows", "1.2", "--out", out, "--pretrained", NAME,
                      "--excerpts", "2", "--excerpt-seconds", "0.25"]) == 0
    assert json.load(open(os.path.join(out, "demo.json")))["pretrained"] == [NAME]
    assert "**median**" in open(os.path.join(out, "pretrained.md")).read()
    index = open(os.path.join(out, "index.html")).read()
    assert "heldout1_tiny-1.2.wav" in index and "Table 1 at demo scale" in index
