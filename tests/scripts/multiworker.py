"""One worker of a two-worker MultiWorkerMirroredStrategy run (TF_CONFIG set by the test)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from tf_ada import configs  # noqa: E402
from tf_ada.train import Trainer, default_strategy  # noqa: E402

data_dir, out_dir = sys.argv[1], sys.argv[2]
strategy = default_strategy()
exp = configs.table1_row("1.2", "tiny", steps=2)
trainer = Trainer(exp, data_dir, out_dir, strategy=strategy, log=lambda s: None)
result = trainer.train()
print("RESULT " + json.dumps({"replicas": strategy.num_replicas_in_sync, "step": trainer.current_step,
                               "chief": trainer.is_chief,
                               "codebook_sum": float(trainer.model.quantizer.codebook.numpy().sum()),
                               "eval_nll": result.get("eval_nll")}))
