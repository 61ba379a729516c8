"""analysis/precision_check.py (issue 12, target 2): the block-SE statistics on known numbers, the
resume bookkeeping of losses.jsonl, the command line's checks, and a tiny end-to-end run that a
second invocation resumes without training again."""
import json
import math
import os

import numpy as np
import pytest

from analysis import precision_check as pc


def test_statistics_match_a_hand_computation():
    rng = np.random.default_rng(3)
    window, block = (2, 8), 3  # steps 3..8: two blocks per seed
    losses = {p: {seed: {step: float(offset + rng.normal()) for step in range(1, 11)} for seed in (0, 1)}
              for p, offset in (("float32", 1.0), ("mixed_bfloat16", 1.2))}
    stats = pc.window_statistics(losses, window, block)

    expected = {}
    for p in ("float32", "mixed_bfloat16"):
        blocks = [np.mean([losses[p][s][t] for t in steps]) for s in (0, 1) for steps in ((3, 4, 5), (6, 7, 8))]
        mean = np.mean([losses[p][s][t] for s in (0, 1) for t in range(3, 9)])
        se = np.std(blocks, ddof=1) / math.sqrt(4)
        expected[p] = (mean, se)
        got = stats["per_precision"][p]
        assert got["mean"] == pytest.approx(mean) and got["mean"] == pytest.approx(np.mean(blocks))
        assert got["se"] == pytest.approx(se)
        assert got["n_blocks"] == 4 and got["n_steps"] == 12 and got["seeds"] == [0, 1]
        for s in (0, 1):
            assert stats["per_run"][p][s] == pytest.approx(np.mean([losses[p][s][t] for t in range(3, 9)]))
    difference = expected["mixed_bfloat16"][0] - expected["float32"][0]
    difference_se = math.hypot(expected["mixed_bfloat16"][1], expected["float32"][1])
    assert stats["difference"] == pytest.approx(difference)
    assert stats["difference_se"] == pytest.approx(difference_se)
    assert stats["difference_in_se"] == pytest.approx(difference / difference_se)
    within = bool(abs(difference) <= 2 * difference_se)
    assert stats["within_bound"] is within
    assert stats["verdict"] == ("within 2 SE: accepted" if within else "beyond 2 SE: not accepted")


def test_verdict_both_ways_and_errors():
    def run(level, wiggle):  # steps 1..4, blocks (1, 2) and (3, 4)
        return {1: level, 2: level + wiggle, 3: level - wiggle, 4: level}

    close = {"float32": {0: run(1.0, 0.1)}, "mixed_bfloat16": {0: run(1.0, 0.1)}}
    assert pc.window_statistics(close, (0, 4), 2)["verdict"] == "within 2 SE: accepted"
    far = {"float32": {0: run(1.0, 0.1)}, "mixed_bfloat16": {0: run(3.0, 0.1)}}
    assert pc.window_statistics(far, (0, 4), 2)["verdict"] == "beyond 2 SE: not accepted"
    with pytest.raises(ValueError, match="lacks 1 step"):
        pc.window_statistics({"float32": {0: {1: 1.0, 2: 1.0, 3: 1.0}}, "mixed_bfloat16": {0: run(1.0, 0.1)}},
                             (0, 4), 2)
    with pytest.raises(ValueError, match="at least 2"):
        pc.window_statistics(close, (0, 4), 4)
    with pytest.raises(ValueError, match="whole number"):
        pc.window_statistics(close, (0, 4), 3)


def test_resume_keeps_records_up_to_the_restored_step(tmp_path):
    path = str(tmp_path / "losses.jsonl")
    lines = [json.dumps({"step": s, "loss": float(s)}) for s in (1, 2, 3, 2, 4, 5, 6)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + '\n{"step": 7, "lo')  # a line cut off by a crash
    records = pc.keep_records_up_to(path, 4)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert pc.read_records(path) == records
    assert pc.keep_records_up_to(str(tmp_path / "none.jsonl"), 0) == []


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,x"], "--seeds"), (["--seeds", "1,1"], "distinct"), (["--window", "500"], "START,END"),
    (["--window", "5,5"], "START < END"), (["--window", "400,600"], "at most --steps"),
    (["--window", "400,495"], "whole number"), (["--steps", "0"], "positive"), (["--row", "9.9"], "unknown row"),
    (["--window", "490,500", "--seeds", "0"], "fewer than 2 blocks")])
def test_command_line_errors(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        pc.main(["--data", str(tmp_path), "--out", str(tmp_path / "out"), "--block", "10", *args])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_tiny_end_to_end_run_then_resume_without_training(audio_shards, tmp_path, capsys):
    argv = ["--row", "1.2", "--scale", "tiny", "--data", audio_shards, "--out", str(tmp_path), "--steps", "4",
            "--seeds", "0", "--window", "0,4", "--block", "2"]
    code = pc.main(argv)
    with open(tmp_path / pc.JSON_FILE) as f:
        result = json.load(f)
    assert code == (0 if result["accepted"] else 1)
    assert set(result["per_precision"]) == {"float32", "mixed_bfloat16"}
    for p, s in result["per_precision"].items():
        assert math.isfinite(s["mean"]) and math.isfinite(s["se"]) and s["n_blocks"] == 2
    assert result["verdict"] in ("within 2 SE: accepted", "beyond 2 SE: not accepted")
    for p in ("float32", "mixed_bfloat16"):
        run = result["runs"][f"{p}-s0"]
        assert run["steps"] == 4 and math.isfinite(run["window_mean"]) and run["timesteps_per_s"] > 0
        with open(os.path.join(run["run_dir"], "experiment.json")) as f:
            assert json.load(f)["train"]["precision"] == p
    markdown = (tmp_path / pc.MARKDOWN_FILE).read_text()
    assert result["verdict_line"] in markdown and "python -m analysis.precision_check" in markdown
    assert markdown in capsys.readouterr().out

    def steps_recorded():
        return {p: [json.loads(line)["step"] for line in open(tmp_path / f"{p}-s0" / pc.LOSSES_FILE)]
                for p in ("float32", "mixed_bfloat16")}

    assert steps_recorded() == {"float32": [1, 2, 3, 4], "mixed_bfloat16": [1, 2, 3, 4]}
    assert pc.main(argv) == code
    assert "already at step 4" in capsys.readouterr().out
    assert steps_recorded() == {"float32": [1, 2, 3, 4], "mixed_bfloat16": [1, 2, 3, 4]}
    with open(tmp_path / pc.JSON_FILE) as f:
        again = json.load(f)
    assert again["per_precision"] == result["per_precision"]
