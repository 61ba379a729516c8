"""The trainer: one class owns the distribution strategy, the optimiser, Polyak averaging,
evaluation, TensorBoard, self-describing checkpoints, resume and the divergence guard.

It trains `WaveNet`s (priors, on audio or on code sequences) and `ADA`s (first and second level)
alike, through the one model contract of `tf_ada/models/outputs.py` (`forward` -> `ModelOutput`,
`hop`, `polyak_variables`, `set_hyperparameters`): nothing here branches on the model's type.

Paper (app. A): Adam, 500,000 iterations (200,000 for unconditional WaveNets), learning rate
lost (ours: `TrainConfig.learning_rate`), Polyak averaging for evaluation, 8 GPUs per ADA.

Output folder layout (`out_dir/`):
  experiment.json        the full experiment (model config + training config): rebuilds the model
  checkpoints/ckpt-N.*   weights, Polyak averages, optimiser state, step (tf.train.Checkpoint)
  tensorboard/           scalars (each loss term, NLL, perplexity, codes in use), audio and the hparams
                         session (tf_ada/hparams.py: `tensorboard --logdir` over runs compares them)
  eval.json              the latest evaluation (Polyak weights; both protocols of tf_ada.evaluation)
  eval_history.jsonl     every evaluation, one JSON line each, in step order
  eval_sequences.npz     its per-window NLL sums, counts and code usage, by recording and work
  train.log              every line logged (resumes, progress, evaluations), time-stamped
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from tf_ada import configs, data, evaluation, faults, fileio, hparams, ops, runs
from tf_ada.configs import ADAConfig, Experiment, TrainConfig  # noqa: F401  (re-exported)
from tf_ada.models import model_class


class DivergenceError(RuntimeError):
    """Training produced a non-finite loss; the last good checkpoint is left as it was."""


PRECISIONS = ("float32", "mixed_bfloat16")
CALIBRATION_BATCHES = 8  # training batches whose queries set the Polyak weights' statistics
CALIBRATION_SEED = 54_321  # added to TrainConfig.seed: the same fixed batches at every calibration


def build_model(config, precision: str = "float32"):
    """A WaveNet or an ADA from its config, with its weights created (one hop of zeros).

    precision: "float32", or "mixed_bfloat16" (weights float32, the WaveNets' matrix products and
    activations in bfloat16; the quantisers, their EMA statistics, the softmax and the NLL stay
    float32). Checkpoints are the same either way."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = model_class(config)(config)
        model(tf.zeros([1, model.hop], tf.int32))
    finally:
        keras.config.set_dtype_policy(previous)
    return model


def polyak_variables(model) -> list:
    """The variables whose Polyak averages (app. A) are used for evaluation: the trainable weights,
    plus, for a VQ-VAE, the K-means codebook (a model lists them as `polyak_variables`), so the
    evaluated encoder, codebook and modulator are averages over the same window of steps."""
    return list(model.polyak_variables)


def model_scalars(model, x, training: bool) -> tuple[dict, tf.Tensor]:
    """(named scalars incl. "loss" and "nll", per-step NLL `[B, T]`) of any trainable model on x."""
    out = model.forward(x, training=training)
    return out.scalars(), out.nll_per_step


class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`ops.warmup_learning_rate` as a Keras schedule (constant when warmup_steps is 0)."""

    def __init__(self, learning_rate: float, warmup_steps: int = 0):
        self.learning_rate, self.warmup_steps = float(learning_rate), int(warmup_steps)

    def __call__(self, step):
        return ops.warmup_learning_rate(step, self.learning_rate, self.warmup_steps)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


def default_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when TF_CONFIG describes a cluster, MirroredStrategy over the
    local GPUs when there are several, else TensorFlow's default (single-device) strategy, whose
    training step XLA compiles whole (`TrainConfig.jit_compile`)."""
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return tf.distribute.get_strategy()


def _single_device(strategy) -> bool:
    """True for the default strategy (no distribution: plain variables, no cross-replica calls)."""
    return strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy()


class Trainer:
    """Trains one experiment into `out_dir`, resuming from its latest checkpoint.

    Args:
      experiment: what to train (model config + `TrainConfig`).
      data_dir: shards from `tf-ada prepare` (audio) or `ShardWriter` (codes).
      out_dir: checkpoints, experiment.json, TensorBoard logs.
      strategy: a `tf.distribute.Strategy` (default: `default_strategy()`).
    """

    def __init__(self, experiment: Experiment, data_dir: str, out_dir: str,
                 strategy: Optional[tf.distribute.Strategy] = None, log=print):
        self.experiment, self.data_dir, self.out_dir, self.log = experiment, data_dir, out_dir, log
        self.strategy = strategy or default_strategy()
        self.is_chief = _is_chief(self.strategy)
        if self.is_chief:  # every line also goes to the run folder's train.log
            self.log = runs.tee_log(log, os.path.join(out_dir, runs.LOG_FILE))
        cfg = experiment.train
        if cfg.batch_size % self.strategy.num_replicas_in_sync:
            raise ValueError(f"batch_size {cfg.batch_size} is not divisible by "
                             f"{self.strategy.num_replicas_in_sync} replicas")
        existing = os.path.join(out_dir, "experiment.json")
        if os.path.exists(existing):
            saved = runs.read_experiment(existing)
            if saved.to_dict()["model"] != experiment.to_dict()["model"]:
                raise runs.RunError(f"{out_dir} holds a different model; choose another folder")
        with self.strategy.scope():
            self.model = build_model(experiment.model, cfg.precision)
            self.optimizer = keras.optimizers.Adam(WarmupSchedule(cfg.learning_rate, cfg.warmup_steps))
            self.optimizer.build(self.model.trainable_variables)
            def slots(variables, prefix):
                return [tf.Variable(v.value, trainable=False, name=prefix + v.name.replace("/", "_").replace(":", "_"),
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA) for v in variables]
            self.polyak = slots(polyak_variables(self.model), "polyak_")
            # the Polyak weights' own evaluation statistics (query normalisation): set by
            # `calibrate_polyak`, never averaged (they are functions of the averaged weights)
            self.polyak_statistics = slots(self.model.evaluation_statistics, "polyak_stat_")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, polyak=self.polyak,
                                              polyak_statistics=self.polyak_statistics, step=self.step)
        self._calibration_batches, self._calibrated_step = None, None
        restored = self._open_checkpoints()
        if restored:
            self.log(f"train: resumed {experiment.name} from {restored} (step {self.current_step})")
        if self.is_chief:
            fileio.atomic_write_json(existing, experiment.to_dict())
        self.writer = tf.summary.create_file_writer(os.path.join(out_dir, "tensorboard")) if self.is_chief \
            else tf.summary.create_noop_writer()
        if self.is_chief:  # TensorBoard's hparams table: this run's settings beside its eval/* scalars
            hparams.write(self.writer, experiment.to_dict())
        self._train_step = None
        self._xla_fallback = False  # set once the XLA step failed to compile in bfloat16 (`_run_step`)

    def _open_checkpoints(self) -> Optional[str]:
        """Opens the checkpoint manager on the run folder and restores its newest intact checkpoint
        (returns its prefix, or None when there is none yet)."""
        # every worker restores the chief's checkpoints: the files are the truth (runs.reconcile_index)
        ckpt_dir = os.path.join(self.out_dir, "checkpoints")
        prefixes = runs.reconcile_index(ckpt_dir, self.log) if self.is_chief else runs.checkpoint_prefixes(ckpt_dir)
        save_dir = ckpt_dir
        if not self.is_chief:  # MultiWorker: every worker saves, only the chief's copy is kept (`save`)
            save_dir = os.path.join(self.out_dir, f"worker_tmp_{self.strategy.cluster_resolver.task_id}")
        self.manager = tf.train.CheckpointManager(self.checkpoint, save_dir, max_to_keep=3,
                                                  checkpoint_name=runs.CHECKPOINT_PREFIX)
        return runs.restore_newest_intact(self._checkpoint_for, prefixes, self.log)

    def _checkpoint_for(self, prefix: str) -> tf.train.Checkpoint:
        """What to restore `prefix` into: everything, or, for a checkpoint written before the
        Polyak statistics existed (issue 9), everything else (the next save calibrates them)."""
        if not self.polyak_statistics or any(name.startswith("polyak_statistics/")
                                             for name, _ in tf.train.list_variables(prefix)):
            return self.checkpoint
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, polyak=self.polyak, step=self.step)

    def reload(self, experiment: Optional[Experiment] = None) -> Optional[str]:
        """Restores the run folder's newest intact checkpoint into the live model, optimiser,
        Polyak averages and step, and sets a VQ-VAE's beta and gamma from `experiment` (default:
        the folder's experiment.json, which is then rewritten with it), without rebuilding the
        model or recompiling the training step. Population based training (`tf_ada.pbt`) calls it
        after it replaced a member's checkpoints and hyperparameters by another member's.

        Returns:
          The restored prefix; None if the folder holds no checkpoint (the live state is kept).

        Raises:
          RunError: `experiment` differs from the one trained in more than beta and gamma.
        """
        path = os.path.join(self.out_dir, "experiment.json")
        experiment = experiment or runs.read_experiment(path)
        live = configs.live_hyperparameters(experiment.model)
        # beta and gamma may differ wherever both configs have them (an AMAE ignores them)
        mine = {k: getattr(self.experiment.model, k) for k in configs.LIVE_HYPERPARAMETERS
                if hasattr(experiment.model, k) and hasattr(self.experiment.model, k)}
        if dataclasses.replace(experiment, model=dataclasses.replace(experiment.model, **mine)) != self.experiment:
            raise runs.RunError(f"{self.out_dir}: reload may change only "
                                f"{' and '.join(configs.LIVE_HYPERPARAMETERS)} of the experiment")
        self.experiment = experiment
        self.model.set_hyperparameters(**live)
        if self.is_chief:
            fileio.atomic_write_json(path, experiment.to_dict())
        restored = self._open_checkpoints()
        self._calibrated_step = None  # other weights now, possibly at the same step
        self.log(f"train: reloaded {experiment.name} from {restored or 'no checkpoint'} (step {self.current_step})")
        return restored

    @property
    def current_step(self) -> int:
        return int(self.step.numpy())

    # --- training ---

    def _make_train_step(self, jit: Optional[bool] = None):
        """The training step: one XLA program (`jit`, default `self.jit_compile`) or the plain graph."""
        jit = self.jit_compile if jit is None else jit
        decay = self.experiment.train.polyak_decay
        n_replicas = self.strategy.num_replicas_in_sync
        variables = self.model.trainable_variables
        averaged = polyak_variables(self.model)

        def replica_step(x):
            with tf.GradientTape() as tape:
                scalars, _ = model_scalars(self.model, x, training=True)
                loss = scalars["loss"] / n_replicas
            grads = tape.gradient(loss, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
            # the average starts at the weights after the first step, not at the initial ones
            # (with decay 0.9999 the initial weights, or a codebook that data init replaced at
            # step 1, would still be 61% of the average at step 5,000)
            d = tf.where(self.step > 0, decay, 0.0)
            for p, v in zip(self.polyak, averaged):
                p.assign(d * p + (1.0 - d) * v)
            self.step.assign_add(1)
            return scalars

        if jit:
            # one device: the whole step as one XLA program (replica_step needs no strategy there)
            return tf.function(replica_step, jit_compile=True)

        @tf.function
        def step(dist_x):
            scalars = self.strategy.run(replica_step, args=(dist_x,))
            return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in scalars.items()}

        return step

    def _run_step(self, batch) -> dict:
        """One training step. XLA's CPU backend in TensorFlow 2.16 cannot compile some bfloat16
        products ("unsupported operand type BF16 in op dot": e.g. the gradient of the continuous
        input's [.., 1] x [1, R] product at cpu scale); the compilation fails before anything runs,
        so the step falls back to the plain graph (oneDNN's bfloat16 matmuls), once, saying so."""
        try:
            return self._train_step(batch)
        except tf.errors.UnimplementedError as e:
            if not (self.jit_compile and not self._xla_fallback and "BF16" in str(e)):
                raise
            self._xla_fallback = True
            self.log(f"train: {self.experiment.name}: XLA cannot compile this step in bfloat16 on this device "
                     f"({str(e).splitlines()[0][:120]}); training with the plain graph step instead")
            self._train_step = self._make_train_step(jit=False)
            return self._train_step(batch)

    @property
    def jit_compile(self) -> bool:
        """Whether the training step is XLA-compiled: `TrainConfig.jit_compile` and one replica
        under the default strategy (a distributed step keeps the plain graph: its all-reduce and
        mirrored-variable updates run outside XLA)."""
        return self.experiment.train.jit_compile and _single_device(self.strategy)

    def dataset(self):
        """Random training excerpts, distributed. Each worker draws its own random stream (seed
        offset by its task id; no file sharding, which small data sets could not support)."""
        cfg = self.experiment.train
        resolver = getattr(self.strategy, "cluster_resolver", None)
        worker = int(getattr(resolver, "task_id", 0) or 0) if resolver is not None else 0
        ds = data.excerpt_dataset(self.data_dir, n_samples=cfg.n_samples, batch_size=cfg.batch_size,
                                  seed=cfg.seed + self.current_step + 1_000_003 * worker, split="train")
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return self.strategy.experimental_distribute_dataset(ds.with_options(options))

    def train(self, steps: Optional[int] = None, on_step=None, evaluate: bool = True) -> dict:
        """Trains until `steps` (default: the config's) total steps; returns the last evaluation.

        `on_step(step, scalars)`, if given, is called after every step with the step's named
        scalars (floats), e.g. for diagnostics that look at the model between steps.
        `evaluate=False` skips the periodic and final evaluations and returns {} (population
        based training measures its own fitness between intervals)."""
        cfg = self.experiment.train
        target = cfg.steps if steps is None else steps
        start_step = self.current_step
        if start_step >= target:
            self.log(f"train: {self.experiment.name} already at step {start_step} >= {target}")
            return self.last_eval() if evaluate else {}
        if self._train_step is None:
            self._train_step = self._make_train_step()
        it = iter(self.dataset())
        t0, sums, n_sum = time.monotonic(), {}, 0
        result = {}
        while self.current_step < target:
            scalars = {k: float(v) for k, v in self._run_step(next(it)).items()}
            step = self.current_step
            if not all(math.isfinite(v) for v in scalars.values()):
                raise DivergenceError(
                    f"{self.experiment.name}: non-finite loss at step {step} ({scalars}); stopped without saving. "
                    f"Last good checkpoint: {self.manager.latest_checkpoint or 'none yet'} (intact)")
            if on_step is not None:
                on_step(step, scalars)
            faults.point("train-step")
            for k, v in scalars.items():
                sums[k] = sums.get(k, 0.0) + v
            n_sum += 1
            if step % cfg.log_every == 0 or step == target:
                now = time.monotonic()
                rate = (step - start_step) / (now - t0)
                means = {k: v / n_sum for k, v in sums.items()}
                with self.writer.as_default(step=step):
                    for k, v in means.items():
                        tf.summary.scalar(f"train/{k}", v)
                    tf.summary.scalar("train/steps_per_s", rate)
                terms = " ".join(f"{k} {v:.4f}" for k, v in means.items())
                self.log(f"train: {self.experiment.name} step {step}/{target} {terms} | {rate:.2f} steps/s "
                         f"({rate * cfg.batch_size * cfg.n_samples:,.0f} timesteps/s) "
                         f"ETA {(target - step) / max(rate, 1e-9):,.0f}s")
                sums, n_sum = {}, 0
            if step % cfg.checkpoint_every == 0 or step == target:
                self.save()
            if evaluate and (step % cfg.eval_every == 0 or step == target):
                result = self.evaluate(final=step == target)
        return result

    def save(self) -> str:
        """Writes a checkpoint of the current step (Polyak statistics calibrated first, so every
        checkpoint's Polyak weights come with their own); returns its prefix. A non-chief
        MultiWorker worker's copy (written because saving is a collective) is removed at once."""
        self.calibrate_polyak()
        path = self.manager.save(checkpoint_number=self.current_step)
        if not self.is_chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        faults.point("checkpoint-saved")
        return path

    # --- evaluation (Polyak weights) ---

    def calibrate_polyak(self) -> None:
        """Recomputes the Polyak weights' evaluation statistics (`model.evaluation_statistics`, a
        VQ-VAE's query mean and (co)variance) from their queries on `CALIBRATION_BATCHES` fixed
        training batches, as stochastic weight averaging recomputes batch-norm statistics
        (Izmailov et al. 2018): the running statistics of training describe the live encoder, not
        the averaged one (issue 9). Once per step; a no-op for models without such statistics."""
        if not self.polyak_statistics or self._calibrated_step == self.current_step:
            return
        if self._calibration_batches is None:
            cfg = self.experiment.train
            ds = data.excerpt_dataset(self.data_dir, n_samples=cfg.n_samples, batch_size=cfg.batch_size,
                                      seed=cfg.seed + CALIBRATION_SEED, split="train")
            self._calibration_batches = [x for x, _ in zip(ds, range(CALIBRATION_BATCHES))]
        self._swap_polyak()
        try:
            self.model.calibrate(self._calibration_batches)
        finally:
            self._swap_polyak()
        self._calibrated_step = self.current_step

    def _swap_polyak(self):
        for p, v in zip(self.polyak + self.polyak_statistics,
                        polyak_variables(self.model) + self.model.evaluation_statistics):
            tmp = tf.identity(v.value)
            v.assign(p)
            p.assign(tmp)

    @contextlib.contextmanager
    def polyak_weights(self):
        """The Polyak-averaged weights (app. A), with their own evaluation statistics
        (`calibrate_polyak`), are in the model for the duration of the block."""
        self.calibrate_polyak()
        self._swap_polyak()
        try:
            yield self.model
        finally:
            self._swap_polyak()

    def eval_budget(self, final: bool = False) -> dict:
        """One-second windows evaluated per split (`evaluation.select_sequences`; None: all).

        A config with `eval_batches` (cpu, tiny, demo) evaluates, at every evaluation, as many
        timesteps per split and protocol as `eval_batches` training batches hold
        (eval_batches * batch_size * n_samples), in whole windows, at least 2 (cpu: 41 windows;
        about 1 s of 2-core CPU time per window and protocol for a cpu-scale ADA). Without it
        (paper scale): periodic evaluations read `evaluation.DEFAULT_MAX_SEQUENCES` (a full pass
        over 4 h held out every 5,000 steps would dominate training) and the final one (the last
        step) the whole held-out split; the training split keeps the periodic budget."""
        cfg = self.experiment.train
        if cfg.eval_batches is not None:
            window = evaluation.sequence_length(data.load_manifest(self.data_dir))
            cap = max(2, -(-cfg.eval_batches * cfg.batch_size * cfg.n_samples // window))
            return {"train": cap, "eval": cap}
        return {"train": evaluation.DEFAULT_MAX_SEQUENCES, "eval": None if final else evaluation.DEFAULT_MAX_SEQUENCES}

    def evaluate(self, splits=("train", "eval"), max_batches: Optional[int] = None, final: bool = False,
                 budget: Optional[dict] = None) -> dict:
        """Both protocols (`tf_ada.evaluation`) on each split with Polyak-averaged weights.

        Returns (and writes to eval.json) `{split}_{nll,perplexity}_{paper,full}` and their `_se`
        (clustered by work), `{split}_{timesteps,sequences,codes_in_use}_{protocol}`,
        `{split}_works`; `{split}_nll` and `{split}_perplexity` repeat the paper protocol's
        (Table 1's) values. Per-window sums go to `evaluation.SEQUENCES_FILE` in the run folder
        for paired comparisons. Windows per split: `budget` ({split: cap or None for all}), else
        `max_batches * batch_size` for both splits, else `eval_budget(final)`."""
        cfg = self.experiment.train
        if budget is None:
            budget = (self.eval_budget(final) if max_batches is None
                      else {s: max_batches * cfg.batch_size for s in splits})
        manifest = data.load_manifest(self.data_dir)
        names = {s: manifest.eval_split if s == "eval" else s for s in splits}
        t0 = time.monotonic()
        with self.polyak_weights():
            per_window = evaluation.evaluate_model(
                self.model, self.data_dir, splits=[names[s] for s in splits],
                max_sequences={names[s]: budget.get(s) for s in splits},
                batch_timesteps=cfg.batch_size * cfg.n_samples, windows=self._eval_windows)
        per_window = {(s, p): per_window[(names[s], p)] for s in splits for p in evaluation.PROTOCOLS}
        result = {"step": self.current_step, "corpus_hash": data.corpus_hash(manifest),
                  "eval_seconds": round(time.monotonic() - t0, 1),
                  **{f"{s}_max_sequences": budget.get(s) for s in splits}}
        for (split, protocol), res in per_window.items():
            summary = evaluation.summarize(res, protocol)
            result[f"{split}_works"] = summary.pop("works")
            for k, v in summary.items():
                key = k[:-3] + f"_{protocol}_se" if k.endswith("_se") else f"{k}_{protocol}"
                result[f"{split}_{key}"] = v
        for split in splits:
            result[f"{split}_nll"] = result[f"{split}_nll_paper"]
            if f"{split}_perplexity_paper" in result:
                result[f"{split}_perplexity"] = result[f"{split}_perplexity_paper"]
                result[f"{split}_codes_in_use"] = result[f"{split}_codes_in_use_full"]
        with self.writer.as_default(step=self.current_step):
            for k, v in result.items():
                if k != "step" and isinstance(v, (int, float)):
                    tf.summary.scalar(f"eval/{k}", v)
        if self.is_chief:
            evaluation.save_results(os.path.join(self.out_dir, evaluation.SEQUENCES_FILE), per_window,
                                    {"step": self.current_step})
            fileio.atomic_write_json(os.path.join(self.out_dir, "eval.json"), result)
            self._append_history(result)
        self.log("eval: " + self.experiment.name + " " + " ".join(
            f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items() if k != "corpus_hash"))
        return result

    def _append_history(self, result: dict) -> None:
        """eval_history.jsonl: one line per evaluation (held-out NLL against step for model cards);
        a line for a step already recorded (an evaluation repeated after a resume) replaces it."""
        path = os.path.join(self.out_dir, EVAL_HISTORY)
        rows = [r for r in read_eval_history(self.out_dir) if r.get("step") != result["step"]]
        rows.append(result)
        fileio.atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in sorted(rows, key=lambda r: r["step"])))

    @property
    def _eval_windows(self) -> dict:
        """Prepared evaluation windows, read once per Trainer (the selection is deterministic)."""
        return self.__dict__.setdefault("_eval_windows_cache", {})

    def last_eval(self) -> dict:
        path = os.path.join(self.out_dir, "eval.json")
        if os.path.exists(path):
            with open(path) as f:
                return json.load(f)
        return self.evaluate()

    def write_audio(self, name: str, audio: np.ndarray, sample_rate: int = 16000) -> None:
        """Adds float audio `[T]` to TensorBoard (e.g. reconstructions)."""
        with self.writer.as_default(step=self.current_step):
            tf.summary.audio(name, np.asarray(audio, np.float32)[None, :, None], sample_rate, max_outputs=1)


EVAL_HISTORY = "eval_history.jsonl"


def read_eval_history(out_dir: str) -> list:
    """The evaluations of a run folder in step order (eval_history.jsonl; [] if none yet)."""
    path = os.path.join(out_dir, EVAL_HISTORY)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None) or not resolver.cluster_spec().as_dict():
        return True
    return resolver.task_type in (None, "chief") or (resolver.task_type == "worker" and resolver.task_id == 0)


def load_model(out_dir: str, polyak: bool = True):
    """Rebuilds a trained model from its folder alone (experiment.json + latest checkpoint);
    returns (model, experiment)."""
    model, experiment, _, _ = restore_run(out_dir, polyak)
    return model, experiment


class _TrainableList(tf.Module):
    """The checkpoint path `optimizer/_trainable_variables/N` of a Keras optimiser, without one."""

    def __init__(self, variables):
        super().__init__()
        self._trainable_variables = list(variables)


def restore_run(out_dir: str, polyak: bool = True):
    """`load_model` that also says what it restored: (model, experiment, step, checkpoint prefix).
    The step is the one stored in that checkpoint (the newest intact one)."""
    if not os.path.isdir(out_dir):
        raise runs.RunError(f"{out_dir}: not a folder; expected a tf-ada run folder")
    path = os.path.join(out_dir, "experiment.json")
    if not os.path.exists(path):
        raise runs.RunError(f"{out_dir}: no experiment.json; not a tf-ada run folder")
    experiment = runs.read_experiment(path)
    model = build_model(experiment.model)
    polyak_vars = [tf.Variable(v.value, trainable=False) for v in polyak_variables(model)]
    polyak_stats = [tf.Variable(v.value, trainable=False) for v in model.evaluation_statistics]
    step = tf.Variable(0, dtype=tf.int64)
    # the blocks' weights sit in Python lists, which tf.train.Checkpoint does not track under the
    # model; the Trainer's checkpoints reach every trainable weight through the optimiser's list
    ckpt = tf.train.Checkpoint(model=model, polyak=polyak_vars, polyak_statistics=polyak_stats, step=step,
                               optimizer=_TrainableList(model.trainable_variables))
    prefixes = runs.checkpoint_prefixes(os.path.join(out_dir, "checkpoints"))
    if not prefixes:
        raise runs.RunError(f"{out_dir}: no checkpoint in checkpoints/")
    restored = runs.restore_newest_intact(ckpt, prefixes, partial=True)
    if polyak:
        # a checkpoint written before the codebook was averaged (commit 55a4a56) has no Polyak
        # slot for it: keep the live codebook there rather than the fresh random one
        stored = set(tf.train.load_checkpoint(restored).get_variable_to_shape_map()) if restored else set()
        # and one written before the Polyak statistics were calibrated (issue 9) keeps the live
        # running statistics, as it was evaluated then
        for key, live, slots in (("polyak", polyak_variables(model), polyak_vars),
                                 ("polyak_statistics", model.evaluation_statistics, polyak_stats)):
            for i, (v, p) in enumerate(zip(live, slots)):
                if f"{key}/{i}/.ATTRIBUTES/VARIABLE_VALUE" in stored:
                    v.assign(p)
    return model, experiment, int(step.numpy()), restored
