"""Writes tests/data/compat_runs/: run folders trained by the code of one commit, with the logits and
codes that commit's `load_model` gives, so later code is tested against checkpoints it did not write
(tests/test_compat_runs.py; issue 14: checkpoints written before a refactor, and shipped weights,
must still load).

    git archive COMMIT | tar -x -C /tmp/old && PYTHONPATH=/tmp/old:/tmp/old/tests \\
        python tests/data/make_compat_runs.py tests/data/compat_runs COMMIT

Each folder holds what `tf-ada train` wrote (experiment.json, checkpoints/) for a tiny Table 1 row
trained 2 steps on synthetic shards, without its TensorBoard and evaluation files and with only the
last checkpoint (its index rewritten to list that one, in TensorFlow's format, to keep the files
small); expected.npz holds the input `x`, `logits` and (ADA) `codes` from `load_model` (Polyak
weights).
"""
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from conftest import make_audio_shards  # noqa: E402
from tf_ada import configs  # noqa: E402
from tf_ada.train import Trainer, load_model  # noqa: E402

ROWS = {"1.1": "wavenet_1_1_tiny", "1.2": "vq_ada_1_2_tiny", "1.5": "amae_ada_1_5_tiny"}
KEEP = ("experiment.json", "checkpoints")


def main(out: str, commit: str) -> None:
    keras.utils.set_random_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        shards = make_audio_shards(os.path.join(tmp, "shards"))
        for row, name in ROWS.items():
            folder = os.path.join(out, name)
            shutil.rmtree(folder, ignore_errors=True)
            Trainer(configs.table1_row(row, "tiny"), shards, folder, log=lambda s: None).train()
            for entry in os.listdir(folder):
                if entry not in KEEP:
                    path = os.path.join(folder, entry)
                    shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            ckpt_dir = os.path.join(folder, "checkpoints")
            for entry in os.listdir(ckpt_dir):
                if entry.startswith("ckpt-1."):
                    os.remove(os.path.join(ckpt_dir, entry))
            with open(os.path.join(ckpt_dir, "checkpoint"), "w") as f:
                f.write('model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-2"\n')
            model, _ = load_model(folder)
            x = tf.constant(np.random.default_rng(0).integers(0, 256, (1, 64)), tf.int32)
            out_ = model(x, training=False)
            expected = {"x": x.numpy(), "logits": getattr(out_, "logits", out_).numpy()}
            if hasattr(out_, "codes"):
                expected["codes"] = out_.codes.numpy()
            np.savez_compressed(os.path.join(folder, "expected.npz"), **expected)
    with open(os.path.join(out, "COMMIT"), "w") as f:
        f.write(commit + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
