import json
import os

import pytest

from reproduce import paper, table1


@pytest.mark.slow
def test_every_row_one_step_writes_checkpoint_and_resumes(audio_shards, table1_tiny, table1_tiny_resumed):
    # the session's tiny Table 1 (conftest.py): every row one step; row 1.2 was trained first by
    # `run_row` into the same folder (shared with Figure 2 and the stacks) and reused by the command
    code, out = table1_tiny
    assert code == 0
    for row in paper.TABLE1:
        row_dir = os.path.join(out, f"table1_{row.replace('.', '_')}_tiny")
        assert any(f.startswith("ckpt-1") for f in os.listdir(os.path.join(row_dir, "checkpoints"))), row
        result = json.load(open(os.path.join(row_dir, "row.json")))
        assert result["steps"] == 1 and result["eval_nll"] > 0
        if row != "1.1":
            assert 1 <= result["perplexity"] <= 256
            assert os.path.exists(result["reconstructions"][0]["reconstruction"])
    md = open(os.path.join(out, "table1.md")).read()
    assert "| 1.7 | VQ-VAE | continuous | 64 | 1.203 | 1.172 | 84.0 |" in md
    bullets = "\n".join(line for line in md.splitlines() if line.startswith("- "))
    verdicts = sum(bullets.count(f"**{v}**") for v in ("holds", "does not hold", "inconclusive", "not run"))
    assert verdicts == 2 * len(paper.TABLE1_CLAIMS) + len(paper.TABLE1_PROTOCOL_CLAIMS)
    assert "inconclusive" in md  # one held-out work: no standard error, so nothing can be decided
    result = json.load(open(os.path.join(out, "table1_1_7_tiny", "row.json")))
    for key in ("eval_nll_paper", "eval_nll_full", "eval_perplexity_paper", "eval_perplexity_full", "train_nll_paper"):
        assert key in result and key + "_se" in result, key
    assert os.path.exists(os.path.join(out, "table1_1_7_tiny", "eval_sequences.npz"))
    csv_lines = open(os.path.join(out, "table1.csv")).read().splitlines()
    assert len(csv_lines) == 1 + len(paper.TABLE1)
    # a second run with more steps resumes every row from its checkpoint (step 1 -> 2): rows 1.2 and
    # 1.1 copied and resumed by the session fixture (whose 1.2 is Table 2's first level)
    resumed, logs, results = table1_tiny_resumed
    assert results["1.2"]["steps"] == results["1.1"]["steps"] == 2
    assert sum("resumed" in line for line in logs) == 2
    for row in ("1.2", "1.1"):  # the copies went on from their own step-1 checkpoints
        assert any(f.startswith("ckpt-2") for f in os.listdir(os.path.join(results[row]["run_dir"], "checkpoints")))
        assert os.path.dirname(results[row]["run_dir"]) == os.path.abspath(resumed)
    # minutes count the whole run, both stretches (from train.log), not the resumed one only
    first = json.load(open(os.path.join(out, "table1_1_2_tiny", "row.json")))
    assert "train.log" in results["1.2"]["minutes_source"]
    assert results["1.2"]["minutes"] >= first["minutes"] > 0
    # and a finished row is skipped
    logs = []
    table1.run_row("1.2", "tiny", audio_shards, resumed, steps=2, log=logs.append)
    assert any("already done" in line for line in logs)


def test_report_only_reads_each_rows_recorded_run_folder_else_the_one_beside_its_row_json(tmp_path, monkeypatch):
    """`--report-only --from SOURCE`: a row's run folder is the run_dir its row.json records (its
    training minutes come from that folder's train.log); SOURCE/NAME only where the recorded folder
    is gone (a copied results folder) or row.json records none."""
    from tf_ada import configs

    def log(folder, minutes):  # a train.log spanning `minutes`
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "train.log"), "w") as f:
            f.write(f"2024-01-01 10:00:00 train: step 0\n2024-01-01 10:{minutes:02d}:00 train: step 1\n")

    source, elsewhere = tmp_path / "copy", tmp_path / "original"
    recorded = {"1.2": str(elsewhere / "run_1_2"), "1.3": str(tmp_path / "gone" / "run_1_3"), "1.4": None}
    for row, run_dir in recorded.items():
        found_at = str(source / configs.table1_row(row, "tiny").name)
        log(found_at, 5)
        result = {"row": row, "steps": 1, "minutes": 0.5}
        if run_dir:
            result["run_dir"] = run_dir
        with open(os.path.join(found_at, "row.json"), "w") as f:
            json.dump(result, f)
    log(recorded["1.2"], 2)  # the recorded folder of row 1.2 still exists; row 1.3's does not
    seen = {}
    monkeypatch.setattr(table1, "write_report", lambda results, *a, **k: seen.update(results))
    assert table1.report_only(["1.2", "1.3", "1.4"], "tiny", str(tmp_path / "out"), str(source)) == 0
    assert seen["1.2"]["run_dir"] == recorded["1.2"] and seen["1.2"]["minutes"] == pytest.approx(2)
    for row in ("1.3", "1.4"):
        assert seen[row]["run_dir"] == str(source / configs.table1_row(row, "tiny").name)
        assert seen[row]["minutes"] == pytest.approx(5) and "train.log" in seen[row]["minutes_source"]


def _rows(nll: dict, ppl: dict, n_works=10, per_work=4, seed=0):
    """Synthetic per-window results of each row on the same held-out windows: a row's NLL is its
    value plus a window difficulty shared by every row (so paired differences are precise)."""
    import numpy as np
    from tf_ada import evaluation as ev
    rng = np.random.default_rng(seed)
    n = n_works * per_work
    works = np.repeat([f"w{i}" for i in range(n_works)], per_work)
    recs = np.array([f"{w}.wav" for w in works])
    starts = np.tile(np.arange(per_work) * 16000, n_works)
    difficulty = rng.normal(0, 0.2, n)
    rows = {}
    for row, v in nll.items():
        counts = None
        if row in ppl:  # ppl[row] codes used equally often: perplexity exactly ppl[row]
            counts = np.zeros((n, 256), np.int64)
            counts[:, :ppl[row]] = 2000 // ppl[row]
        res = ev.Results(recs, works, starts, (v + difficulty + rng.normal(0, 0.002, n)) * 16000,
                         np.full(n, 16000), counts)
        rows[row] = {("eval", p): res for p in ev.PROTOCOLS}
    return rows


def test_claims_are_judged_from_paired_differences():
    from reproduce import report
    nll = {"1.1": 1.15, "1.2": 0.73, "1.3": 0.68, "1.4": 0.76, "1.5": 0.70, "1.6": 0.81, "1.7": 1.17}
    ppl = {"1.2": 227, "1.3": 200, "1.4": 229, "1.5": 225, "1.6": 183, "1.7": 84}
    good = _rows(nll, ppl)
    for protocol in ("paper", "full"):
        assert [report.judge(good, c, protocol)[0] for _, c in paper.TABLE1_CLAIMS] == ["holds"] * 6
    bad = _rows(dict(nll, **{"1.3": 0.9}), ppl)
    verdicts = [report.judge(bad, c, "paper")[0] for _, c in paper.TABLE1_CLAIMS]
    assert verdicts[1] == "does not hold" and verdicts[0] == "holds"
    close = _rows(dict(nll, **{"1.3": 0.7299}), ppl)  # 1.3 vs 1.2 within noise: cannot be decided
    assert report.judge(close, paper.TABLE1_CLAIMS[1][1], "paper")[0] == "inconclusive"
    only = {"1.2": good["1.2"]}
    assert all(report.judge(only, c, "paper")[0] == "not run" for _, c in paper.TABLE1_CLAIMS)
    line = report.claim_line("x", good, paper.TABLE1_CLAIMS[0][1])
    assert "1-s sequences: **holds**" in line and "full context: **holds**" in line and "±" in line


@pytest.mark.slow
def test_demo_writes_table_wavs_and_index(tmp_path, monkeypatch):
    import shutil
    if not (shutil.which("fluidsynth") and shutil.which("sox")):
        pytest.skip("fluidsynth and sox are installed by `make test` (as root)")
    from reproduce import demo
    monkeypatch.chdir(tmp_path)
    assert demo.main(["--scale", "tiny", "--steps", "1", "--rows", "1.2,1.1", "--out", "runs/demo"]) == 0
    index = (tmp_path / "runs" / "demo" / "index.html").read_text()
    assert "excerpt0_original.wav" in index and "excerpt0_row1.2.wav" in index
    # one tiny-scale excerpt: 256 samples of 16-bit PCM plus the 44-byte header
    assert (tmp_path / "runs" / "demo" / "audio" / "excerpt0_row1.2.wav").stat().st_size == 44 + 2 * 256
    assert "| 1.2 | VQ-VAE" in (tmp_path / "runs" / "demo" / "table1.md").read_text()


def test_figure2_tiny_writes_profiles_figure_and_claims(audio_shards, tiny_row_1_2, tmp_path):
    from reproduce import figure2
    out = str(tmp_path / "fig")  # the codes of the session's one-step row 1.2 (conftest.py)
    assert figure2.main(["--scale", "tiny", "--data", audio_shards, "--out", out,
                         "--checkpoint", tiny_row_1_2]) == 0
    md = open(f"{out}/figure2.md").read()
    from tf_ada import configs
    marker = configs.table1_row("1.2", "tiny").model.encoder_receptive_field_codes  # 15 samples / hop 8
    assert f"Encoder receptive field in code steps: {marker}" in md
    assert "## Convergence checks" in md and "training NLL non-increasing in r" in md and " ± " in md
    claims = [line for line in md.splitlines() if line.startswith("- **")]
    assert len(claims) == 3 and all(any(f"**{v}**" in line for v in ("holds", "does not hold", "inconclusive",
                                                                       "not run")) for line in claims)
    assert os.path.exists(f"{out}/profile_audio_units.npz") and "eval_nll_se" in open(f"{out}/profile_audio.csv").read()
    assert os.path.getsize(f"{out}/figure2.png") > 10000
    codes = open(f"{out}/profile_codes.csv").read().splitlines()
    assert codes[0].startswith("receptive_field") and len(codes) == 1 + 4
