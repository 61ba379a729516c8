"""Trains one tiny experiment twice from the same seed on the CPU (one replica, op determinism
on) and prints whether the weights after N steps are bit-identical."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tf_ada import configs  # noqa: E402
from tf_ada.train import Trainer  # noqa: E402

data_dir, out_dir, row, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
tf.config.experimental.enable_op_determinism()
strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
weights = []
for run in ("a", "b"):
    keras.utils.set_random_seed(1234)
    trainer = Trainer(configs.table1_row(row, "tiny", steps=steps), data_dir, os.path.join(out_dir, run),
                      strategy=strategy, log=lambda s: None)
    trainer.train()
    weights.append([v.numpy() for v in trainer.model.trainable_variables])
same = all(np.array_equal(a, b) for a, b in zip(*weights))
keras.utils.set_random_seed(1234)  # the same initial weights, untrained: training must have moved them
initial = Trainer(configs.table1_row(row, "tiny", steps=steps), data_dir, os.path.join(out_dir, "init"),
                  strategy=strategy, log=lambda s: None).model.trainable_variables
moved = any(not np.array_equal(a, v.numpy()) for a, v in zip(weights[0], initial))
print("RESULT " + json.dumps({"identical": same, "n_variables": len(weights[0]), "moved": moved}))
