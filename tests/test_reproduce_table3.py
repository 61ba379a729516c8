"""Table 3 (issue 16 item 6): `python -m reproduce.table3` ties the stacks, top-down sampling, the listening
page and the objective measures together; the claims' verdicts on known numbers, and a one-step smoke
run of every stack that a second invocation reuses."""
import csv
import json
import math
import os

import numpy as np
import pytest

from reproduce import report, table3
from tf_ada import configs, evaluation as ev, ratings, stacks


def _est(frechet=None, pcd=None, clarity=None):
    """estimates(...)'s form for a few stacks: {row: (value, se)} per measure."""
    rows = set(frechet or {}) | set(pcd or {})
    return {r: {"frechet": (frechet or {}).get(r, (100.0, 1.0)),
                "pitch_class_distance": (pcd or {}).get(r), "key_clarity": (clarity or {}).get(r)} for r in rows}


def _verdicts(claims):
    return {key: verdict for (key, _), (_, verdict, _) in zip(table3.CLAIMS, claims)}


def test_claims_on_known_numbers():
    rows = stacks.PAPER_TABLE3
    # more levels: key clarity 0.5 / 0.6 / 0.7 and pitch-class distance 0.5 / 0.4 / 0.3 by level count
    clarity = {r: (0.4 + 0.1 * rows[r][1], 0.01) for r in rows}
    pcd = {r: (0.6 - 0.1 * rows[r][1], 0.01) for r in rows}
    frechet = {r: (100.0, 5.0) for r in rows}
    frechet["3.3"] = (400.0, 10.0)
    pcd["3.3"], clarity["3.3"] = (0.9, 0.01), (0.2, 0.01)  # 3.3: the least coherent
    got = _verdicts(table3.judge_claims(_est(frechet, pcd, clarity), baseline_frechet=(50.0, 5.0)))
    assert got["fidelity"] == ev.HOLDS and got["coherence"] == ev.HOLDS
    # 3.3 (a one-level stack) drags the 1-level mean down further: still holds
    assert got["levels"] == ev.HOLDS
    # reversed: fewer levels more musical; another stack worse in fidelity than 3.3
    flipped = {r: (1.0 - v, se) for r, (v, se) in clarity.items()}
    frechet2 = dict(frechet, **{"3.5": (900.0, 10.0)})
    got = _verdicts(table3.judge_claims(_est(frechet2, pcd, flipped), baseline_frechet=(50.0, 5.0)))
    assert got["levels"] == ev.DOES_NOT_HOLD and got["fidelity"] == ev.DOES_NOT_HOLD
    assert got["coherence"] == ev.DOES_NOT_HOLD  # 3.3's key clarity is now the highest
    # wide SEs: inconclusive; a uniformity that cannot be judged keeps the fidelity claim inconclusive
    wide = {r: (v, 1.0) for r, (v, _) in clarity.items()}
    got = _verdicts(table3.judge_claims(_est(frechet, pcd, wide), baseline_frechet=None))
    assert got["levels"] == ev.INCONCLUSIVE and got["fidelity"] == ev.INCONCLUSIVE
    # others spread beyond the real-vs-real distance: not roughly uniform
    spread = dict(frechet, **{"3.1": (20.0, 1.0), "3.7": (300.0, 1.0)})
    assert _verdicts(table3.judge_claims(_est(spread, pcd, clarity), (50.0, 5.0)))["fidelity"] == ev.DOES_NOT_HOLD
    # without note measures, the two musicality claims are not run, with the reason
    claims = table3.judge_claims(_est(frechet), (50.0, 5.0), notes_reason="not run (basic-pitch not installed)")
    assert [(v, e) for _, v, e in claims if v == table3.NOT_RUN] == [
        (table3.NOT_RUN, "not run (basic-pitch not installed)")] * 2
    # note measures without a value (too few transcribed notes): not run, saying so
    nan = (float("nan"), float("nan"))
    claims = table3.judge_claims(_est(frechet, {r: nan for r in frechet}, {r: nan for r in frechet}), (50.0, 5.0))
    got = {key: (v, e) for (key, _), (_, v, e) in zip(table3.CLAIMS, claims)}
    assert got["levels"][0] == got["coherence"][0] == table3.NOT_RUN and "too few transcribed notes" in got["levels"][1]
    # 3.3 without a value while others have one: the claim about 3.3 is not run either
    no_33 = dict({r: (0.3, 0.05) for r in frechet}, **{"3.3": nan})
    got = {key: v for (key, _), (_, v, _) in zip(table3.CLAIMS, table3.judge_claims(_est(frechet, no_33, no_33),
                                                                                    (50.0, 5.0)))}
    # levels: the 1-level mean has 3.3's NaN, so only 3-level vs 2-level (equal) is judged
    assert got["coherence"] == table3.NOT_RUN and got["levels"] == ev.INCONCLUSIVE
    # values for 1- and 2-level stacks only: the levels claim is judged on what it has
    two = dict({r: (0.3, 0.05) for r in frechet}, **{r: nan for r in frechet if stacks.PAPER_TABLE3[r][1] == 3})
    got = _verdicts(table3.judge_claims(_est(frechet, two, two), (50.0, 5.0)))
    assert got["levels"] == ev.INCONCLUSIVE
    # without 3.3, the claims about it are not run
    some = {r: v for r, v in _est(frechet, pcd, clarity).items() if r in ("3.1", "3.6")}
    got = _verdicts(table3.judge_claims(some, (50.0, 5.0)))
    assert got["fidelity"] == got["coherence"] == table3.NOT_RUN and got["levels"] == ev.HOLDS


def test_uniformity_counts_the_baselines_own_se_and_needs_two_stacks_besides_3_3():
    """The "roughly uniform" condition is baseline - |stack - mean of the rest| with the baseline's SE
    and the difference's in quadrature: a baseline of 20 ± 12 cannot vouch for stacks that agree to
    ± 2 (20 < 2 x 12.2), one of 20 ± 1 can. With one stack besides 3.3, uniformity is not judged."""
    frechet = {r: (100.0, 2.0) for r in stacks.PAPER_TABLE3}
    frechet["3.3"] = (400.0, 5.0)
    claims = table3.judge_claims(_est(frechet), baseline_frechet=(20.0, 12.0))
    fidelity = claims[[k for k, _ in table3.CLAIMS].index("fidelity")]
    assert fidelity[1] == ev.INCONCLUSIVE and "real-vs-real 20.000 ± 12.000" in fidelity[2]
    d, se = 0.0, math.hypot(2.0, 2.0 / math.sqrt(5))  # 3.1 against the mean of the 5 other stacks
    assert f"{report.fmt(20.0 - d, math.hypot(se, 12.0), 3)}" in fidelity[2]
    assert _verdicts(table3.judge_claims(_est(frechet), (20.0, 1.0)))["fidelity"] == ev.HOLDS
    two = {r: v for r, v in _est(frechet).items() if r in ("3.1", "3.3")}  # 3.3 - 3.1: 300 ± 5.4 holds
    verdict, evidence = table3.judge_claims(two, (20.0, 1.0))[[k for k, _ in table3.CLAIMS].index("fidelity")][1:]
    assert verdict == ev.INCONCLUSIVE and "one stack besides 3.3" in evidence


def _fake_samples(folder, n_listed, seconds=0.3, level="prior", stale=()):
    """A sample_stack-shaped folder: samples.json listing `n_listed` streams (and their renders of
    `level`), plus unlisted `stale` wavs in audio/ (as an older sampling with more streams left)."""
    from tf_ada.audio import save_wav
    t = np.arange(int(seconds * 16000)) / 16000
    wavs = {"audio": [f"audio/stream_{i:02d}.wav" for i in range(n_listed)],
            level: [f"level_{level}/stream_{i:02d}.wav" for i in range(n_listed)]}
    for k, rel in enumerate(wavs["audio"] + wavs[level] + [f"audio/{name}" for name in stale]):
        save_wav(os.path.join(folder, rel), 0.3 * np.sin(2 * np.pi * (200 + 50 * k) * t).astype(np.float32))
    info = {"stack": "3.4", "streams": n_listed, "levels_top_down": [level, "first"], "wavs": wavs,
            "level_renders": {level: {"seed": 1, "through": ["first"], "folder": f"level_{level}"}}}
    with open(os.path.join(folder, "samples.json"), "w") as f:
        json.dump(info, f)
    return str(folder)


def test_measures_read_only_the_samples_listed_in_samples_json(tmp_path):
    folder = _fake_samples(tmp_path / "s", 2, stale=["stream_02.wav", "stream_03.wav"])
    clips = table3.sample_clips(folder, 1000)
    assert len(clips) == 2 and all(c.shape == (1000,) for c in clips)


def test_listening_page_is_blind_cut_to_the_excerpt_length_and_rebuilt_when_audio_changes(tmp_path, capsys):
    """table3's page: blind items in their own folder (no named asset beside them), all cut to the
    excerpts' length (samples run longer: whole prior steps); reused while the sources' contents are
    the same, rebuilt with a new page id (old ratings refused) when a sample is replaced in place."""
    from reproduce import listening
    from tf_ada.audio import read_wav, save_wav
    folder = _fake_samples(tmp_path / "s", 2, seconds=0.3)
    real = []
    for i in range(2):
        real.append(str(tmp_path / f"excerpt_{i:02d}.wav"))
        save_wav(real[-1], np.full(4000, 0.1 * (i + 1), np.float32))  # 0.25 s
    out = str(tmp_path / "t3")
    page = table3.listening_page(out, [folder], real, seed=0, seconds=0.25)
    key = json.load(open(os.path.join(out, "listen", "key.json")))
    blind = os.path.join(out, "listen", "blind")
    assert sorted(os.listdir(blind)) == sorted(["index.html"] + [f"{i}.wav" for i in key["items"]])
    assert {read_wav(os.path.join(blind, f"{i}.wav"))[0].shape[0] for i in key["items"]} == {4000}
    assert key["blind_seconds"] == 0.25 and os.path.exists(page)
    assert table3.listening_page(out, [folder], real, seed=0, seconds=0.25) == page
    assert "listening page already done" in capsys.readouterr().out
    export = tmp_path / "r.json"
    export.write_text(json.dumps({"format": ratings.FORMAT, "page": key["page"], "rater": "a",
                                  "ratings": [{"item": i, "fidelity": 3, "musicality": 3} for i in key["items"]]}))
    save_wav(os.path.join(folder, "level_prior", "stream_01.wav"), np.zeros(4800, np.float32))  # resampled in place
    table3.listening_page(out, [folder], real, seed=0, seconds=0.25)
    assert "already done" not in capsys.readouterr().out
    rebuilt = json.load(open(os.path.join(out, "listen", "key.json")))  # the blind items are unchanged: same id
    assert rebuilt["page"] == key["page"] and rebuilt["sources"] != key["sources"]
    save_wav(os.path.join(folder, "audio", "stream_00.wav"), np.zeros(4800, np.float32))  # a blind item's audio
    table3.listening_page(out, [folder], real, seed=0, seconds=0.25)
    rebuilt = json.load(open(os.path.join(out, "listen", "key.json")))
    assert rebuilt["page"] != key["page"]
    with pytest.raises(ratings.RatingsError, match="page was rebuilt"):
        ratings.summarize([str(export)], os.path.join(out, "listen", listening.KEY_FILE))


def test_dry_run_plans_every_level_once_and_the_sampling(capsys, tmp_path):
    assert table3.main(["--scale", "cpu", "--dry-run", "--bench-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for row in stacks.PAPER_TABLE3:
        assert f"== stack {row}:" in out, row
    first = configs.table1_row("1.2", "cpu").name
    assert out.count(f"{first} (Table 1 row 1.2)") == 1 and out.count(f"{first}, shared with a stack above") == 2
    assert out.count("[sampling: 8 stream(s) x 8 s") == 7 and "total training time: unavailable" in out


@pytest.mark.slow
def test_every_stack_one_step_then_reused(audio_shards, table1_tiny, tmp_path, capsys):
    """A one-step smoke run of every stack: the first levels and 3.1 reused from the session's tiny
    Table 1 (conftest.py), the other levels trained one step each; samples, the page, the measures,
    table3.md/csv/html. A second invocation reuses everything; a third adds human ratings."""
    _, table1_dir = table1_tiny
    out = tmp_path / "t3"
    argv = ["--scale", "tiny", "--data", audio_shards, "--out", str(out), "--steps", "1", "--table1", table1_dir,
            "--n", "2", "--seconds", "0.02", "--max-real", "6", "--bootstrap", "10", "--skip-eval"]
    assert table3.main(argv) == 0
    printed = capsys.readouterr().out
    assert "reused from" in printed
    for row in stacks.PAPER_TABLE3:
        result = json.load(open(out / "stacks" / row / "row.json"))
        assert result["streams"] == 2 and result["audio_seconds_per_wall_second"] > 0
        assert len(result["levels"]) == stacks.PAPER_TABLE3[row][1]
        for role, lv in result["levels"].items():  # every level has its one-step checkpoint
            assert lv["step"] == 1, (row, role)
            assert any(f.startswith("ckpt-1") for f in os.listdir(os.path.join(lv["run_dir"], "checkpoints")))
            if role == "first" or row == "3.1":
                assert lv["reused_from"].startswith("Table 1 row") and lv["run_dir"].startswith(table1_dir)
        wavs = sorted(os.listdir(out / "stacks" / row / "samples" / "audio"))
        assert wavs == ["stream_00.wav", "stream_01.wav"]
        measures = json.load(open(out / "stacks" / row / "measures.json"))
        assert measures["frechet_log_mel"]["value"] >= 0
    page = (out / "listen" / "index.html").read_text()
    key = json.load(open(out / "listen" / "key.json"))
    assert sum(item["stack"] == "real" for item in key["items"].values()) == 2 and len(key["items"]) == 16
    from tf_ada.audio import read_wav  # the blind folder: its page and its items, all 0.02 s long
    blind = out / "listen" / "blind"
    assert sorted(os.listdir(blind)) == sorted(["index.html"] + [f"{i}.wav" for i in key["items"]])
    assert {read_wav(str(blind / f"{i}.wav"))[0].shape[0] for i in key["items"]} == {320}
    assert "Stack 3.7" in page and (out / "table3.html").exists()
    md = (out / "table3.md").read_text()
    for row in stacks.PAPER_TABLE3:
        assert f"| {row} | {stacks.PAPER_TABLE3[row][0]} |" in md, row
    assert "| 3.6 | VQ-VAE + PBT-VQ-VAE + large WaveNet | 3 | 24576 |" in md
    assert "see ratings" in md and "proxies" in md and "listen/blind/index.html" in md
    verdicts = [line for line in md.splitlines() if line.startswith("- ") and "**" in line]
    assert len(verdicts) == len(table3.CLAIMS)
    for (key_, text), line in zip(table3.CLAIMS, verdicts):
        assert line.startswith(f"- {text}: **"), key_
    lines = list(csv.DictReader(open(out / "table3.csv")))
    assert [r["row"] for r in lines] == list(stacks.PAPER_TABLE3) + ["real"]

    # a second invocation reuses every finished stack, the measures and the page (same blind ids)
    assert table3.main(argv) == 0
    printed = capsys.readouterr().out
    for row in stacks.PAPER_TABLE3:
        assert f"table3: stack {row} already done" in printed, row
    assert "listening page already done" in printed and " step 1/1" not in printed
    assert json.load(open(out / "listen" / "key.json"))["page"] == key["page"]
    md = (out / "table3.md").read_text()  # paths relative to OUT: a moved folder reads the same
    assert "samples `stacks/3.1/samples`" in md and str(tmp_path) not in md

    # a rater's export of the page: Table 3's human columns
    items = sorted(key["items"])
    export = {"format": ratings.FORMAT, "page": key["page"], "rater": "r1",
              "ratings": [{"item": i, "fidelity": 4, "musicality": 2} for i in items]}
    path = tmp_path / "r1.json"
    path.write_text(json.dumps(export))
    assert table3.main(argv + ["--ratings", str(path)]) == 0
    md = (out / "table3.md").read_text()
    assert "## Human ratings" in md and "4.00 ± n/a (1)" in md and "see ratings" not in md


def test_a_level_trained_further_is_sampled_again_from_new_codes(audio_shards, tiny_row_1_2, tmp_path, capsys):
    """Stack 3.4 on a reused first level (a copy of the session's one-step #1.2): done, then reused as
    done; after that level trains one more step (same config, same folder) the stack is sampled
    again, its prior's corpus encoded afresh from the step-2 checkpoint (no clash with the step-1
    codes), and row.json records each level's checkpoint step and the corpus hash."""
    import shutil
    from tf_ada import data
    from tf_ada.train import Trainer
    first = tmp_path / "first"
    shutil.copytree(tiny_row_1_2, first)
    reuse = {"first": {"run": str(first), "trained_on": audio_shards, "from": "Table 1 row 1.2"}}
    out = tmp_path / "t3"

    def run():
        return table3.run_stack("3.4", "tiny", audio_shards, str(out), 1, 1, 0.01, reuse=reuse, evaluate=False)

    done = run()
    assert done["checkpoint_steps"] == {"first": 1, "prior": 1}
    assert done["corpus_hash"] == data.corpus_hash(audio_shards)
    capsys.readouterr()
    assert run() == done and "stack 3.4 already done" in capsys.readouterr().out
    exp = stacks.stack("3.4", "tiny").levels[0].experiment
    Trainer(exp, audio_shards, str(first), log=lambda *a: None).train(steps=2, evaluate=False)
    again = run()
    assert "already done" not in capsys.readouterr().out
    assert again["checkpoint_steps"] == {"first": 2, "prior": 1} and again["levels"]["first"]["step"] == 2
    codes = sorted(d for d in os.listdir(out / "levels") if d.startswith("codes_"))
    assert [c.split("_step")[1].split("_")[0] for c in codes] == ["1", "2"]


def test_a_levels_checkpoint_step_is_its_newest_checkpoint_file(tmp_path):
    """`runs.newest_checkpoint_step`, what row.json records per level: the largest N of the
    checkpoints/ckpt-N.index files (numerically; a stale TensorFlow index file does not decide,
    shards without an index are no checkpoint), None without checkpoints."""
    from tf_ada import runs
    assert runs.newest_checkpoint_step(str(tmp_path / "absent")) is None
    ckpts = tmp_path / "run" / "checkpoints"
    ckpts.mkdir(parents=True)
    assert runs.newest_checkpoint_step(str(tmp_path / "run")) is None
    for name in ["ckpt-2.index", "ckpt-2.data-00000-of-00001", "ckpt-10.index", "ckpt-10.data-00000-of-00001",
                 "ckpt-12.data-00000-of-00001", "ckpt-x.index", "other-30.index"]:
        (ckpts / name).write_text("")
    (ckpts / "checkpoint").write_text('model_checkpoint_path: "ckpt-2"\n')
    assert runs.newest_checkpoint_step(str(tmp_path / "run")) == 10
    assert runs.checkpoint_prefixes(str(ckpts)) == [str(ckpts / "ckpt-2"), str(ckpts / "ckpt-10")]


def test_levels_are_reused_from_table1_and_table2_output_folders(tmp_path):
    """`reused_levels`: finished rows of a Table 1 output folder (row.json), and of a Table 2 one with
    the first level its code corpus was encoded from (which wins over Table 1's #1.2)."""
    from tf_ada import data
    audio, t1, t2 = tmp_path / "audio", tmp_path / "t1", tmp_path / "t2"
    w = data.ShardWriter(str(audio), kind="audio", dtype="uint8", n_classes=256, sample_rate=16000, chunk_samples=64)
    w.add("a.wav", "train", np.full(64, 128), {})
    w.close()

    def finished(folder, **extra):
        os.makedirs(folder)
        with open(os.path.join(folder, "row.json"), "w") as f:
            json.dump(dict({"run_dir": str(folder), "steps": 1}, **extra), f)

    os.makedirs(t2 / "first_level" / "x")
    finished(t1 / configs.table1_row("1.2", "tiny").name, corpus_hash=data.corpus_hash(str(audio)))
    finished(t1 / configs.table1_row("1.1", "tiny").name, corpus_hash=data.corpus_hash(str(audio)))
    finished(t2 / f"{configs.table2_row('2.2', 'tiny').name}_pbt")  # a PBT row: its row.json names the best member
    finished(t2 / configs.table2_row("2.4", "tiny").name, diverged=True)
    w = data.ShardWriter(str(t2 / "codes"), kind="codes", dtype="int16", n_classes=256, sample_rate=2000,
                         chunk_samples=8)
    w.update(source_run=str(t2 / "first_level" / "x"), source_data=str(audio), source_experiment="table1_1_2_tiny")
    w.add("a.wav", "train", np.zeros(8), {})
    w.close()
    logs = []
    got = table3.reused_levels("3.4", "tiny", str(audio), str(t1), None, log=logs.append)
    assert got == {"first": {"run": str(t1 / "table1_1_2_tiny"), "trained_on": str(audio), "from": "Table 1 row 1.2"}}
    assert list(table3.reused_levels("3.1", "tiny", str(audio), str(t1), log=logs.append)) == ["prior"]
    assert table3.reused_levels("3.5", "tiny", str(audio), str(t1), log=logs.append) == {}  # no row 1.7 there
    got = table3.reused_levels("3.6", "tiny", str(audio), str(t1), str(t2), log=logs.append)
    assert got["second"]["trained_on"] == str(t2 / "codes") and got["second"]["from"] == "Table 2 row 2.2"
    assert got["first"]["run"] == str(t2 / "first_level" / "x")  # the first level of Table 2's codes
    got = table3.reused_levels("3.7", "tiny", str(audio), str(t1), str(t2), log=logs.append)
    assert "second" not in got and got["first"]["from"] == "Table 1 row 1.2"  # 2.4 diverged: trained here
    assert any("no finished Table 2 row 2.4" in line for line in logs)
    # a Table 1 row of another corpus is refused
    other = tmp_path / "other"
    w = data.ShardWriter(str(other), kind="audio", dtype="uint8", n_classes=256, sample_rate=16000, chunk_samples=64)
    w.add("b.wav", "train", np.full(64, 100), {})
    w.close()
    with pytest.raises(SystemExit, match="give the same --data"):
        table3.reused_levels("3.4", "tiny", str(other), str(t1))
    # a Table 2 folder whose codes were encoded from another corpus is refused, naming its codes
    t2b = tmp_path / "t2b"
    finished(t2b / configs.table2_row("2.4", "tiny").name)
    os.makedirs(t2b / "first_level" / "x")
    for corpus, folder in ((other, t2b), (audio, t2)):
        w = data.ShardWriter(str(folder / "codes"), kind="codes", dtype="int16", n_classes=256, sample_rate=2000,
                             chunk_samples=8)
        w.update(source_run=str(folder / "first_level" / "x"), source_data=str(corpus),
                 source_experiment="table1_1_2_tiny", source_corpus_hash=data.corpus_hash(str(corpus)))
        w.add("c.wav", "train", np.zeros(8), {})
        w.close()
    with pytest.raises(SystemExit, match=f"{t2b / 'codes'}: Table 2's codes .* were encoded from corpus "
                                         f"{data.corpus_hash(str(other))[:12]}.*give the same --data"):
        table3.reused_levels("3.7", "tiny", str(audio), None, str(t2b))
    assert table3.reused_levels("3.6", "tiny", str(audio), None, str(t2))["second"]["from"] == "Table 2 row 2.2"


def test_table2_codes_of_a_shipped_first_level_reuse_it_while_its_weights_are_the_same(tmp_path):
    """Table 2's cpu codes were encoded from the shipped 1.2-cpu ("pretrained:1.2-cpu", no run
    folder): its stacks reuse Table 2's levels over that shipped model, loaded and dated from its
    card, as long as its weights are the ones the codes came from; otherwise nothing is reused.
    A recorded run folder that has gone (a run made from a copy of the tree) resolves to the
    folder beside row.json, a PBT row to its best member's folder there."""
    from tf_ada import data, pretrained
    audio, t2 = tmp_path / "audio", tmp_path / "t2"
    w = data.ShardWriter(str(audio), kind="audio", dtype="uint8", n_classes=256, sample_rate=16000, chunk_samples=64)
    w.add("a.wav", "train", np.full(64, 128), {})
    w.close()
    pbt = t2 / f"{configs.table2_row('2.2', 'tiny').name}_pbt"
    os.makedirs(pbt / "members" / "member_03")
    with open(pbt / "row.json", "w") as f:
        json.dump({"run_dir": "/gone/t2/x_pbt/members/member_03", "steps": 1, "pbt": True}, f)
    sha = pretrained.read_card("1.2-cpu")["weights"]["files"][pretrained.WEIGHTS]["sha256"]
    for digest, reused in ((sha, True), ("0" * 64, False)):
        w = data.ShardWriter(str(t2 / "codes"), kind="codes", dtype="int16", n_classes=256, sample_rate=2000,
                             chunk_samples=8)
        w.update(source_checkpoint="pretrained:1.2-cpu", source_weights_sha256=digest,
                 source_data="/gone/corpus", source_experiment="table1_1_2_cpu")
        w.add("a.wav", "train", np.zeros(8), {})
        w.close()
        logs = []
        got = table3.reused_levels("3.6", "tiny", str(audio), None, str(t2), log=logs.append)
        if reused:
            assert got["first"] == {"run": "pretrained:1.2-cpu", "trained_on": str(audio),
                                    "from": "Table 2's first level (table1_1_2_cpu, shipped)"}
            assert got["second"]["run"] == str(pbt / "members" / "member_03")
        else:
            assert got == {} and any("neither a run folder nor a shipped model" in line for line in logs)
    assert stacks.level_step("pretrained:1.2-cpu") == pretrained.read_card("1.2-cpu")["steps"] == 6000
    assert stacks.level_path("pretrained:1.2-cpu") == "pretrained:1.2-cpu"
    minutes, source = stacks.shipped_minutes("pretrained:1.2-cpu")
    assert minutes > 60 and "card" in source
    model, experiment = stacks.load_level("pretrained:1.2-cpu")
    assert experiment.name == "table1_1_2_cpu" and model.config.n_codes == 256
