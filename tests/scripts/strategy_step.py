"""Run in a fresh process: two logical CPU devices, one MirroredStrategy training step of a tiny
VQ-VAE; prints JSON with each replica's codebook, EMA counts, running query covariance and the
Polyak weights' calibrated statistics, and the step."""
import json
import os
import sys

import tensorflow as tf

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tf_ada import configs, data  # noqa: E402
from tf_ada.train import Trainer  # noqa: E402

data_dir, out_dir = sys.argv[1], sys.argv[2]
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
exp = configs.table1_row("1.2", "tiny", steps=1)
trainer = Trainer(exp, data_dir, out_dir, strategy=strategy, log=lambda s: None)
# the queries of the first global batch (the Trainer's first batch: same data seed), with the initial weights
cfg = exp.train
x0 = next(iter(data.excerpt_dataset(data_dir, n_samples=cfg.n_samples, batch_size=cfg.batch_size, seed=cfg.seed,
                                    split="train")))
first_queries = trainer.model.encoder(tf.cast(x0, tf.int32)).numpy().reshape(-1, exp.model.code_channels)
trainer.train()
q = trainer.model.quantizer
# a Keras variable's per-replica values are behind `.value`; a plain tf.Variable (the Trainer's slots) is itself one
local = lambda v: [t.numpy().tolist() for t in strategy.experimental_local_results(v if isinstance(v, tf.Variable)
                                                                                   else v.value)]
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "codebook": local(q.codebook),
                  "ema_counts": local(q.ema_counts), "query_cov": local(q.query_cov),
                  "first_queries": first_queries.tolist(), "query_norm": q.query_norm,
                  "polyak_statistics": [local(v) for v in trainer.polyak_statistics], "step": trainer.current_step,
                  "checkpoint": trainer.manager.latest_checkpoint}))
