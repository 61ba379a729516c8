"""analysis/codebook_curves.py reads a run's training-batch and held-out code usage (issue 9's curves)."""
import json
import os

import tensorflow as tf

from analysis import codebook_curves


def test_curves_come_from_tensorboard_and_the_eval_history(tmp_path, capsys):
    run = tmp_path / "run"
    writer = tf.summary.create_file_writer(str(run / "tensorboard"))
    with writer.as_default():
        for step, codes in ((50, 120.0), (100, 80.0), (150, 90.0)):
            tf.summary.scalar("train/codes_in_use", codes, step=step)
            tf.summary.scalar("train/perplexity", codes / 2, step=step)
            tf.summary.scalar("eval/train_codes_in_use_paper", 1.0, step=step)  # not a batch curve
    writer.close()
    history = [{"step": 100, "eval_codes_in_use_full": 70, "eval_perplexity_full": 40.5, "eval_perplexity_full_se": 2.0,
                "eval_perplexity_paper": 30.0, "eval_perplexity_paper_se": 1.0, "eval_nll_paper": 2.5,
                "eval_nll_paper_se": 0.1}]
    (run / "eval_history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    curves = codebook_curves.batch_curves(str(run))
    assert curves["codes_in_use"] == [(50, 120.0), (100, 80.0), (150, 90.0)]
    assert curves["perplexity"][0] == (50, 60.0)
    out = tmp_path / "rows.png"
    assert codebook_curves.main([str(run), "--label", "1.2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| 1.2 | 100 | 70 | 30.0 ± 1.0 | 40.5 ± 2.0 | 2.500 ± 0.100 |" in printed
    assert os.path.getsize(out) > 10_000
