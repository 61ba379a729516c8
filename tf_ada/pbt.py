"""Population based training of beta and gamma (Jaderberg et al. 2017), as the paper uses it for the
second-level VQ-VAEs (sec. 4.3, Table 2, app. A), on keras-tuner's oracle and its distributed mode.

The paper: a population of 20; beta and gamma initialised log-uniformly (the ranges are lost from our
copy); every 5,000 iterations one or more values randomly increased or decreased by 20%; no
perturbation in the first 10,000 iterations; fitness is the log-likelihood.

What we do (each choice ours where the paper is silent; all are `PBTConfig` fields):
  * Members are `Trainer` run folders, `POP/members/member_NN/`, trained for `ready_steps` per
    keras-tuner trial. A trial = one interval of one member.
  * beta ~ log-uniform on `beta_range` (default [0.1, 2.0]: van den Oord et al. 2017 report results
    unchanged for beta in 0.1-2.0; the paper tuned it per architecture). gamma is log-uniform in
    its EMA rate 1 - gamma on `gamma_range` (default gamma in [0.8, 0.999], i.e. 1 - gamma in
    [1e-3, 0.2], memories of 5 to 1,000 steps, around the VQ rows' 0.9 and van den Oord et al.'s
    0.99). Explore multiplies beta, and gamma's rate 1 - gamma, by 0.8 or 1.2: 20% of gamma
    itself would leave (0, 1) from 0.99 (x1.2 = 1.19) and change its memory a hundredfold
    (x0.8 = 0.79).
  * Explore: each value is perturbed with probability `perturb_probability` (default 1, Jaderberg's
    "perturb"), at least one always.
  * Schedule: intervals end at ready_steps, 2 ready_steps, ... and the last step. At an interval end
    s >= `warmup_steps` (and before the last step), truncation selection: the members in the bottom
    `truncation` (20%) by fitness copy the whole checkpoint of a member drawn uniformly from the top
    20% (weights, Polyak averages, Adam state, codebook and K-means EMA statistics, step: one
    tf.train checkpoint, copied byte for byte) and its hyperparameters, then explore.
    Paper scale: 20 members, every 5,000 steps after 10,000; cpu: 6 members, every 100 after 200.
  * Generations are synchronous: the oracle ranks the members once all have reported the same
    step (fitness falls with training, so members are compared at equal steps); a worker that
    finds nothing to do waits (keras-tuner's IDLE) at that barrier.
  * Fitness = -NLL (nats per timestep, the paper protocol's one-second windows) of the live
    weights (Jaderberg's "current model"; `fitness_weights="polyak"` scores the Polyak averages,
    which at paper scale, decay 0.9999, span two intervals and so would score a member largely by
    the weights it had before its last exploit) on a fixed, deterministic set of
    `fitness_windows` windows of `fitness_split`. Default: the training split, "carved" as a
    subset chosen once by `evaluation.select_sequences` (spread over works, a seed of its own);
    these windows stay in the training data. A data folder holding a split named e.g. "fitness"
    (`PrepareOptions.split_overrides`) gives a fitness split withheld from training. PBT never
    reads the held-out eval split.
  * Divergence: a non-finite training loss (`train.DivergenceError`), a non-finite fitness, a
    fitness NLL above `max_nll` (default 2 log K, twice a uniform guess: an NLL blow-up), or an
    interval that fails for good, marks the member diverged; it is replaced at that interval's end
    by a copy of a top member, before the warm-up too (without perturbation there).

Distributed (keras-tuner's own mode): the same command runs on every machine, with
`KERASTUNER_ORACLE_IP` and `KERASTUNER_ORACLE_PORT` (the chief's address) and
`KERASTUNER_TUNER_ID` ("chief" for the oracle, "tuner0", "tuner1", ... for workers). The chief
serves the oracle; each worker trains the members it is given with the project `Trainer` (and its
default strategy). `POP` must be one folder shared by all machines (checkpoints are copied between
members' folders and the workers read each other's). Without the variables, one process is
oracle and worker. Resuming: run the same command again. A restarted chief keeps each running
interval with its worker (not keras-tuner's default of handing it to another); workers retry calls
while the chief is away; a restarted worker (same KERASTUNER_TUNER_ID) gets its interval back and
resumes the member from its newest checkpoint. (`TF_ADA_FAULT=pbt-trial-ended:N` kills the chief
right after it recorded the N-th interval, before it answers the worker: `tf_ada.faults`.)

Files in `POP/`: population.json (settings), lineage.json (every interval, exploit and
replacement; `read_lineage`), lineage.png (`plot_lineage`), members/member_NN/ (run folders, each
with member.json: the checkpoint copies it received, with sha256 of each file), tuner/ (keras-tuner's
oracle.json and trial_*/trial.json).
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from typing import Callable, Optional, Sequence

import keras_tuner as kt
import numpy as np
from keras_tuner.src.distribute import utils as dist_utils

from tf_ada import configs, evaluation, faults, fileio, runs
from tf_ada.configs import ADAConfig, Experiment
from tf_ada.train import DivergenceError, Trainer

HYPERPARAMETERS = ("beta", "gamma")
MEMBERS_DIR = "members"
MEMBER_FILE = "member.json"
LINEAGE_FILE = "lineage.json"
PLOT_FILE = "lineage.png"
POPULATION_FILE = "population.json"
TUNER_PROJECT = "tuner"
LINEAGE_FORMAT = "tf-ada-pbt-lineage/1"
FITNESS_SEED = 1  # select_sequences seed of the fitness windows (evaluation uses 0)


class PBTError(RuntimeError):
    """A population that cannot go on (settings changed, a checkpoint to copy is gone, all diverged)."""


@dataclasses.dataclass(frozen=True)
class PBTConfig:
    """Population based training settings (see the module docstring for each choice).

    Attributes:
      population: members (paper: 20).
      ready_steps: steps per interval; exploit/explore happens at interval ends (paper: 5,000).
      warmup_steps: no exploit/explore at interval ends before this step (paper: 10,000).
      total_steps: steps per member (None: the experiment's `train.steps`).
      beta_range: beta's initial log-uniform range.
      gamma_range: gamma's initial range, log-uniform in 1 - gamma.
      perturb_factors: explore multiplies beta and 1 - gamma by one of these (Jaderberg: 0.8, 1.2).
      perturb_probability: chance that each value is perturbed (at least one always is).
      truncation: fraction of the population in the bottom (copies) and in the top (copied).
      fitness_split: split of the data folder the fitness windows come from.
      fitness_windows: one-second windows in the fitness set (fixed for the whole run).
      fitness_weights: "live" (the weights being trained) or "polyak" (their Polyak averages).
      max_nll: fitness NLL above which a member counts as diverged (None: 2 log K).
      seed: initial draws and every exploit/explore decision.
    """
    population: int = 20
    ready_steps: int = 5000
    warmup_steps: int = 10000
    total_steps: Optional[int] = None
    beta_range: tuple = (0.1, 2.0)
    gamma_range: tuple = (0.8, 0.999)
    perturb_factors: tuple = (0.8, 1.2)
    perturb_probability: float = 1.0
    truncation: float = 0.2
    fitness_split: str = "train"
    fitness_windows: int = 64
    fitness_weights: str = "live"
    max_nll: Optional[float] = None
    seed: int = 0

    def __post_init__(self):
        if self.population < 2:
            raise ValueError(f"population must be at least 2, got {self.population}")
        if self.ready_steps < 1 or self.warmup_steps < 0:
            raise ValueError("ready_steps must be positive and warmup_steps not negative")
        lo, hi = self.beta_range
        if not 0 < lo <= hi:
            raise ValueError(f"beta_range must satisfy 0 < low <= high, got {self.beta_range}")
        lo, hi = self.gamma_range
        if not 0 <= lo <= hi < 1:
            raise ValueError(f"gamma_range must satisfy 0 <= low <= high < 1, got {self.gamma_range}")
        if self.fitness_weights not in ("live", "polyak"):
            raise ValueError(f"fitness_weights must be 'live' or 'polyak', got {self.fitness_weights!r}")
        if not 0 < self.truncation <= 0.5:
            raise ValueError(f"truncation must be in (0, 0.5], got {self.truncation}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "PBTConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def pbt_schedule(scale: str) -> PBTConfig:
    """The population and schedule per scale: paper (20 members, every 5,000 steps after 10,000);
    cpu (6 members, every 100 steps after 200, 16 fitness windows); tiny (2 members, every step
    after the first, 2 windows)."""
    schedules = {"tiny": PBTConfig(population=2, ready_steps=1, warmup_steps=1, fitness_windows=2),
                 "cpu": PBTConfig(population=6, ready_steps=100, warmup_steps=200, fitness_windows=16),
                 "paper": PBTConfig(population=20, ready_steps=5000, warmup_steps=10000, fitness_windows=256)}
    if scale not in schedules:
        raise ValueError(f"scale must be one of {configs.SCALES}, got {scale!r}")
    return schedules[scale]


# --- the pure parts: schedule, draws, selection ------------------------------------------------------

def boundaries(total_steps: int, ready_steps: int) -> list[int]:
    """Interval ends: ready_steps, 2 ready_steps, ... below total_steps, then total_steps."""
    return list(range(ready_steps, total_steps, ready_steps)) + [total_steps]


def sample_hyperparameters(rng: np.random.Generator, config: PBTConfig) -> dict:
    """One member's initial {"beta", "gamma"}: beta log-uniform, gamma log-uniform in 1 - gamma."""
    b_lo, b_hi = config.beta_range
    g_lo, g_hi = config.gamma_range
    beta = math.exp(rng.uniform(math.log(b_lo), math.log(b_hi)))
    rate = math.exp(rng.uniform(math.log(1.0 - g_hi), math.log(1.0 - g_lo)))
    return {"beta": float(beta), "gamma": float(1.0 - rate)}


def perturb(rng: np.random.Generator, hyperparameters: dict, config: PBTConfig) -> dict:
    """Explore: each of beta and 1 - gamma multiplied by a factor drawn from `perturb_factors`, with
    probability `perturb_probability` each and at least one of them (gamma kept in [0, 1))."""
    chosen = [name for name in HYPERPARAMETERS if rng.uniform() < config.perturb_probability]
    if not chosen:
        chosen = [HYPERPARAMETERS[int(rng.integers(len(HYPERPARAMETERS)))]]
    out = dict(hyperparameters)
    for name in HYPERPARAMETERS:
        if name not in chosen:
            continue
        factor = float(config.perturb_factors[int(rng.integers(len(config.perturb_factors)))])
        if name == "gamma":
            out["gamma"] = float(1.0 - min(1.0, (1.0 - out["gamma"]) * factor))
        else:
            out[name] = float(out[name] * factor)
    return out


def truncation_count(population: int, fraction: float) -> int:
    """Members in each of the top and bottom sets: fraction x population, rounded, 1 to population // 2."""
    return max(1, min(population // 2, int(math.floor(fraction * population + 0.5))))


def _healthy(f) -> bool:
    return f is not None and math.isfinite(f)


def truncation_selection(fitness: Sequence[Optional[float]], fraction: float, rng: np.random.Generator,
                         diverged_only: bool = False) -> dict:
    """Who copies whom: {member: source member}.

    Members are ranked by fitness (higher is better; None or non-finite = diverged, ranked last).
    The bottom `truncation_count` and every diverged member copy a member drawn uniformly from the
    top `truncation_count` healthy ones. With `diverged_only` (before the warm-up), only the
    diverged members do.

    Raises:
      PBTError: no member is healthy.
    """
    n = len(fitness)
    k = truncation_count(n, fraction)
    healthy = sorted((i for i in range(n) if _healthy(fitness[i])), key=lambda i: (-fitness[i], i))
    diverged = [i for i in range(n) if not _healthy(fitness[i])]
    if diverged and not healthy:
        raise PBTError("every member of the population diverged; nothing to copy")
    top = healthy[:k]
    bottom = set(diverged) if diverged_only else (set((healthy + diverged)[-k:]) | set(diverged)) - set(top)
    return {i: int(top[int(rng.integers(len(top)))]) for i in sorted(bottom)}


# --- member folders ---------------------------------------------------------------------------------

def member_dir(population_dir: str, member: int) -> str:
    return os.path.join(population_dir, MEMBERS_DIR, f"member_{member:02d}")


def read_member_record(folder: str) -> dict:
    path = os.path.join(folder, MEMBER_FILE)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def checkpoint_files(run_dir: str, step: int) -> list[str]:
    """File names of checkpoint `ckpt-{step}` of a run folder (its .index and .data-* shards)."""
    folder = os.path.join(run_dir, "checkpoints")
    prefix = f"{runs.CHECKPOINT_PREFIX}-{step}."
    names = sorted(f for f in os.listdir(folder) if f.startswith(prefix)) if os.path.isdir(folder) else []
    if f"{runs.CHECKPOINT_PREFIX}-{step}.index" not in names:
        return []
    return [f for f in names if f.endswith(".index") or ".data-" in f]


def copy_checkpoint(src_dir: str, step: int, dst_dir: str) -> dict:
    """Replaces `dst_dir/checkpoints` by a byte-identical copy of checkpoint `ckpt-{step}` of `src_dir`
    (weights, Polyak averages, optimiser state, codebook and EMA statistics, step).

    The copy is made in `checkpoints.incoming` and swapped in by renames, so an interrupted copy
    leaves either the old checkpoints or the new ones (or both aside), and running it again
    completes it. Returns {file name: sha256}, identical for the source and the copy.

    Raises:
      PBTError: the source has no such checkpoint, or a copy differs from its source.
    """
    names = checkpoint_files(src_dir, step)
    if not names:
        raise PBTError(f"{src_dir}: no checkpoint at step {step} to copy (was it rotated away?)")
    incoming = os.path.join(dst_dir, "checkpoints.incoming")
    shutil.rmtree(incoming, ignore_errors=True)
    os.makedirs(incoming)
    hashes = {}
    for name in names:
        src = os.path.join(src_dir, "checkpoints", name)
        dst = os.path.join(incoming, name)
        shutil.copyfile(src, dst)
        hashes[name] = fileio.sha256_file(src)
        if fileio.sha256_file(dst) != hashes[name]:
            raise PBTError(f"{dst}: the copy of {src} differs from it")
    runs.reconcile_index(incoming, log=lambda line: None)  # writes the index naming ckpt-{step}
    current = os.path.join(dst_dir, "checkpoints")
    trash = os.path.join(dst_dir, "checkpoints.replaced")
    shutil.rmtree(trash, ignore_errors=True)
    if os.path.exists(current):
        os.rename(current, trash)
    os.rename(incoming, current)
    shutil.rmtree(trash, ignore_errors=True)
    return hashes


def apply_exploit(population_dir: str, member: int, source: int, step: int, trial_id: str) -> Optional[dict]:
    """Copies `source`'s checkpoint at `step` into `member`'s folder once per trial (member.json
    records the trial, so a repeated trial does not copy again); returns the copy's record, or
    None if it was applied already."""
    folder = member_dir(population_dir, member)
    record = read_member_record(folder)
    if record.get("applied_trial") == trial_id:
        return None
    hashes = copy_checkpoint(member_dir(population_dir, source), step, folder)
    copy = {"trial": trial_id, "source": source, "step": step, "sha256": hashes, "time": time.time()}
    record.update(member=member, applied_trial=trial_id, copies=record.get("copies", []) + [copy])
    fileio.atomic_write_json(os.path.join(folder, MEMBER_FILE), record)
    return copy


def member_experiment(base: Experiment, member: int, hyperparameters: dict, total_steps: int,
                      ready_steps: int) -> Experiment:
    """The experiment of one member: `base` with the member's beta and gamma, a data seed of its own
    (so members copied from one source go separate ways), `total_steps`, and a checkpoint at every
    interval end only (the snapshot others copy stays on disk for two more intervals)."""
    return configs.override(base, {"name": f"{base.name}_pbt{member:02d}",
                                   "model.beta": float(hyperparameters["beta"]),
                                   "model.gamma": float(hyperparameters["gamma"]),
                                   "train.seed": base.train.seed + 7919 * member, "train.steps": int(total_steps),
                                   "train.checkpoint_every": int(ready_steps)})


# --- training a member: the project Trainer ------------------------------------------------------------

class TrainerRunner:
    """Trains members with `tf_ada.train.Trainer` and measures their fitness.

    A worker keeps each member's Trainer (up to `cache_size`, None: all) so that the training step is
    traced and compiled once per member; at every interval it `reload`s the member's folder (which
    another worker may have trained, or an exploit replaced), which also sets beta and gamma in
    the compiled step.
    """

    def __init__(self, experiment: Experiment, data_dir: str, config: PBTConfig, total_steps: int,
                 cache_size: Optional[int] = None, log: Callable[[str], None] = print):
        self.experiment, self.data_dir, self.config, self.total_steps = experiment, data_dir, config, total_steps
        self.cache_size, self.log = cache_size, log
        self._trainers: "collections.OrderedDict" = collections.OrderedDict()
        self._windows: dict = {}

    def _trainer(self, folder: str, member: int, experiment: Experiment):
        trainer = self._trainers.pop(member, None)
        if trainer is not None and trainer.out_dir == folder and runs.checkpoint_prefixes(
                os.path.join(folder, "checkpoints")):
            trainer.reload(experiment)
        else:
            # a member without checkpoints starts from scratch (a cached Trainer may hold the
            # weights of a failed attempt); experiment.json first, so the Trainer accepts new beta/gamma
            fileio.atomic_write_json(os.path.join(folder, "experiment.json"), experiment.to_dict())
            trainer = Trainer(experiment, self.data_dir, folder, log=self.log)
        self._trainers[member] = trainer
        while self.cache_size is not None and len(self._trainers) > self.cache_size:
            self._trainers.popitem(last=False)
        return trainer

    def train(self, folder: str, member: int, hyperparameters: dict, stop_step: int) -> dict:
        """Trains member `member` (folder `folder`) with `hyperparameters` up to `stop_step`;
        returns {"nll", "nll_se", "step"} of its fitness. Raises `train.DivergenceError`."""
        experiment = member_experiment(self.experiment, member, hyperparameters, self.total_steps,
                                       self.config.ready_steps)
        trainer = self._trainer(folder, member, experiment)
        try:
            trainer.train(steps=stop_step, evaluate=False)
        except DivergenceError:
            self._trainers.pop(member, None)  # its live weights are not finite
            raise
        return dict(self.fitness(trainer), step=trainer.current_step)

    def fitness(self, trainer) -> dict:
        """{"nll", "nll_se"}: NLL on the fitness windows (paper protocol) of the live or the Polyak
        weights (`PBTConfig.fitness_weights`)."""
        cfg = self.config
        key = (cfg.fitness_split, cfg.fitness_windows)
        if key not in self._windows:
            self._windows[key] = evaluation.prepare_windows(
                self.data_dir, cfg.fitness_split, "paper", evaluation.context_of(self.experiment.model),
                cfg.fitness_windows, seed=FITNESS_SEED)
        windows = self._windows[key]
        batch = max(1, trainer.experiment.train.batch_size * trainer.experiment.train.n_samples // windows.x.shape[1])
        with trainer.polyak_weights() if cfg.fitness_weights == "polyak" else contextlib.nullcontext():
            results = evaluation.evaluate_windows(trainer.model, windows, batch)
        est = evaluation.nll_estimate(results)
        return {"nll": float(est.value), "nll_se": float(est.se)}


# --- keras-tuner: the oracle ---------------------------------------------------------------------------

def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(float(x)) else None


TrialStatus = kt.engine.trial.TrialStatus


class PBTOracle(kt.Oracle):
    """Population based training as a keras-tuner `Oracle` (see the module docstring).

    Each trial is one interval of one member; its hyperparameter values carry the member's
    beta and gamma and the orders for the worker: `pbt/member`, `pbt/start`, `pbt/stop`, and
    `pbt/copy_from` / `pbt/copy_step` (the member whose checkpoint at that step to copy first,
    or -1). The oracle's state (members, decisions, lineage) is saved with keras-tuner's own
    state in `tuner/oracle.json`, atomically, and the lineage to `lineage.json`.

    Args:
      config: the `PBTConfig`.
      total_steps: steps per member.
      population_dir: the shared population folder.
      max_nll: fitness NLL above which a member counts as diverged.
      initial: optional initial hyperparameters per member (default: drawn with `config.seed`).
    """

    def __init__(self, config: PBTConfig, total_steps: int, population_dir: str, max_nll: float,
                 initial: Optional[Sequence[dict]] = None):
        space = kt.HyperParameters()
        space.Float("beta", *config.beta_range, sampling="log")
        space.Float("gamma", *config.gamma_range, sampling="reverse_log")
        super().__init__(objective=kt.Objective("fitness", "max"), hyperparameters=space,
                         allow_new_entries=False, tune_new_entries=False, seed=config.seed + 1,
                         max_retries_per_trial=2)
        self.verbose = 0
        self.config, self.total_steps, self.population_dir = config, int(total_steps), population_dir
        self.max_nll = float(max_nll)
        self.boundaries = boundaries(self.total_steps, config.ready_steps)
        rng = np.random.default_rng([config.seed, 0])
        draws = list(initial) if initial is not None else [sample_hyperparameters(rng, config)
                                                           for _ in range(config.population)]
        if len(draws) != config.population:
            raise ValueError(f"initial holds {len(draws)} members, the population {config.population}")
        self.members = [{"member": i, "beta": float(h["beta"]), "gamma": float(h["gamma"]), "step": 0,
                         "fitness": None, "nll": None, "diverged": False, "trial": None, "tuner": None}
                        for i, h in enumerate(draws)]
        self.decisions: dict = {}  # str(step) -> {str(member): {"source", "beta", "gamma", ...}}
        self.events = [{"kind": "start", "member": m["member"], "step": 0, "beta": m["beta"],
                        "gamma": m["gamma"], "time": time.time()} for m in self.members]
        self.stopped: Optional[str] = None
        self._requesting: Optional[str] = None
        self._saved_ongoing: dict = {}

    # -- creating trials

    @kt.synchronized
    def create_trial(self, tuner_id):
        self._requesting = tuner_id
        return super().create_trial(tuner_id)

    def populate_space(self, trial_id):
        if self.stopped:
            return {"status": TrialStatus.STOPPED}
        low = min(m["step"] for m in self.members)
        running = [m for m in self.members if m["trial"] is not None]
        if low >= self.total_steps:
            if not running:
                self._finish("finished")
                return {"status": TrialStatus.STOPPED}
            return {"status": TrialStatus.IDLE}
        eligible = [m for m in self.members if m["step"] == low and m["trial"] is None]
        if not eligible:
            return {"status": TrialStatus.IDLE}  # the barrier: others still train towards `low`
        if low > 0 and str(low) not in self.decisions:
            try:
                self._decide(low)
            except PBTError as e:
                self._finish(f"stopped: {e}")
                return {"status": TrialStatus.STOPPED}
        # prefer a member this worker trained last (its Trainer is cached there)
        member = next((m for m in eligible if m["tuner"] == self._requesting), eligible[0])
        decision = self.decisions.get(str(low), {}).get(str(member["member"]))
        stop = next(b for b in self.boundaries if b > low)
        copy_from, copy_step = -1, -1
        if decision is not None:
            member.update(beta=decision["beta"], gamma=decision["gamma"], diverged=False)
            copy_from, copy_step = decision["source"], low
        member.update(trial=trial_id, tuner=self._requesting)
        return {"status": TrialStatus.RUNNING,
                "values": {"beta": member["beta"], "gamma": member["gamma"], "pbt/member": member["member"],
                           "pbt/start": low, "pbt/stop": stop, "pbt/copy_from": copy_from,
                           "pbt/copy_step": copy_step}}

    def _decide(self, step: int) -> None:
        """Exploit/explore decisions for every member at interval end `step` (all members are there)."""
        rng = np.random.default_rng([self.config.seed, step])
        explore = step >= self.config.warmup_steps
        fitness = [None if m["diverged"] else m["fitness"] for m in self.members]
        copies = truncation_selection(fitness, self.config.truncation, rng, diverged_only=not explore)
        decided = {}
        for i, j in copies.items():
            source = self.members[j]
            before = {"beta": source["beta"], "gamma": source["gamma"]}
            after = perturb(rng, before, self.config) if explore else dict(before)
            reason = "diverged" if self.members[i]["diverged"] else "truncation"
            decided[str(i)] = {"source": j, **after}
            self.events.append({"kind": "exploit", "member": i, "step": step, "source": j, "reason": reason,
                                "source_fitness": source["fitness"], "fitness": self.members[i]["fitness"],
                                "copied": before, "beta": after["beta"], "gamma": after["gamma"],
                                "perturbed": explore, "time": time.time()})
        self.decisions[str(step)] = decided

    def _finish(self, why: str) -> None:
        if self.stopped:
            return
        self.stopped = why
        healthy = [m for m in self.members if not m["diverged"] and _healthy(m["fitness"])]
        best = max(healthy, key=lambda m: m["fitness"]) if healthy else None
        self.events.append({"kind": "end", "reason": why, "step": min(m["step"] for m in self.members),
                            "best_member": best["member"] if best else None,
                            "best_fitness": best["fitness"] if best else None, "time": time.time()})
        self.save()

    # -- ending trials

    @kt.synchronized
    def end_trial(self, trial):
        stored = self.trials[trial.trial_id]
        member = self.members[int(stored.hyperparameters.values["pbt/member"])]
        if member["trial"] != trial.trial_id:  # recorded already (a call repeated after a restart)
            self._pop_ongoing(trial.trial_id)
            return
        stored.status, stored.message = trial.status, trial.message
        self._run_times[trial.trial_id] += 1
        member["tuner"] = next((t for t, o in self.ongoing_trials.items() if o.trial_id == trial.trial_id),
                               member["tuner"])  # a retried interval may have moved to another worker
        if stored.status == TrialStatus.INVALID and self._run_times[trial.trial_id] <= self.max_retries_per_trial:
            self._retry_queue.append(trial.trial_id)  # the member keeps its trial; any worker retries it
        else:
            if stored.status != TrialStatus.COMPLETED:
                stored.status = TrialStatus.FAILED
            self._record(member, stored)
            self.end_order.append(trial.trial_id)
        self._save_trial(stored)
        self._pop_ongoing(trial.trial_id)
        self.save()
        faults.point("pbt-trial-ended")  # tests kill the chief here, before it answers the worker

    def _metric(self, trial, name):
        """The value last reported (a report repeated after a restart is appended, not averaged in)."""
        if not trial.metrics.exists(name):
            return None
        history = trial.metrics.get_history(name)
        return float(history[-1].value[-1]) if history else None

    def _record(self, member: dict, trial) -> None:
        values = trial.hyperparameters.values
        nll = self._metric(trial, "nll")
        fitness = self._metric(trial, "fitness")
        failed = trial.status != TrialStatus.COMPLETED
        diverged = (failed or bool(self._metric(trial, "diverged")) or not _healthy(fitness)
                    or not _healthy(nll) or nll > self.max_nll)
        trial.score = fitness if _healthy(fitness) else float("-inf")
        member.update(step=int(values["pbt/stop"]), fitness=_finite_or_none(fitness), nll=_finite_or_none(nll),
                      diverged=diverged, trial=None)
        self.events.append({"kind": "interval", "member": member["member"], "step": member["step"],
                            "start": int(values["pbt/start"]), "beta": member["beta"], "gamma": member["gamma"],
                            "fitness": member["fitness"], "nll": member["nll"],
                            "nll_se": _finite_or_none(self._metric(trial, "nll_se")), "diverged": diverged,
                            "failed": failed, "trial": trial.trial_id, "tuner": member["tuner"],
                            "seconds": _finite_or_none(self._metric(trial, "seconds")), "time": time.time()})

    def _pop_ongoing(self, trial_id):
        for tuner_id, ongoing in list(self.ongoing_trials.items()):
            if ongoing.trial_id == trial_id:
                self.ongoing_trials.pop(tuner_id)

    def score_trial(self, trial):
        trial.score = self._metric(trial, "fitness")

    # -- state

    def get_state(self):
        return {**super().get_state(), "pbt": {
            "members": self.members, "decisions": self.decisions, "events": self.events,
            "stopped": self.stopped, "config": self.config.to_dict(), "total_steps": self.total_steps}}

    def set_state(self, state):
        super().set_state(state)
        pbt = state["pbt"]
        if PBTConfig.from_dict(pbt["config"]) != self.config or pbt["total_steps"] != self.total_steps:
            raise PBTError(f"{self._get_oracle_fname()}: the population was started with other settings "
                           f"({pbt['config']}, {pbt['total_steps']} steps)")
        self.members, self.decisions, self.events = pbt["members"], pbt["decisions"], pbt["events"]
        self.stopped = pbt["stopped"]
        self._saved_ongoing = dict(state["ongoing_trials"])

    def reload(self):
        """keras-tuner's reload hands the intervals that were running to any worker. A distributed
        chief keeps each with its worker instead, which either finishes it (and reports) or,
        restarted with the same KERASTUNER_TUNER_ID, gets it back and resumes the member from its
        checkpoints. (In one process nothing else runs: keras-tuner's way, the process retries them.)"""
        super().reload()
        if not dist_utils.has_chief_oracle():
            return
        kept = set(self._saved_ongoing.values())
        self._retry_queue = [t for t in self._retry_queue if t not in kept]
        self.ongoing_trials = {tuner: self.trials[t] for tuner, t in self._saved_ongoing.items()}

    def save(self):
        fileio.atomic_write_json(self._get_oracle_fname(), self.get_state())
        fileio.atomic_write_json(os.path.join(self.population_dir, LINEAGE_FILE), self.lineage())

    def _save_trial(self, trial):
        fileio.atomic_write_json(os.path.join(self._get_trial_dir(trial.trial_id), "trial.json"),
                                 trial.get_state())

    def lineage(self) -> dict:
        return {"format": LINEAGE_FORMAT, "config": self.config.to_dict(), "total_steps": self.total_steps,
                "boundaries": self.boundaries, "max_nll": self.max_nll, "stopped": self.stopped,
                "members": [{k: m[k] for k in ("member", "beta", "gamma", "step", "fitness", "nll", "diverged")}
                            for m in self.members],
                "events": self.events}


# --- keras-tuner: the tuner (a worker) -------------------------------------------------------------------

class _RetryingClient:
    """Wraps keras-tuner's `OracleClient`: a call that fails because the chief is away (gRPC
    UNAVAILABLE, e.g. it was killed mid-call) is repeated until it answers, for up to `patience_s`."""

    CALLS = ("get_space", "update_space", "create_trial", "update_trial", "end_trial", "get_trial",
             "get_best_trials")

    def __init__(self, client, patience_s: float, log):
        self._client, self._patience_s, self._log = client, patience_s, log

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name not in self.CALLS:
            return attr

        def call(*args, **kwargs):
            import grpc
            t0, wait = time.monotonic(), 1.0
            while True:
                try:
                    return attr(*args, **kwargs)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() - t0 > self._patience_s:
                        raise
                    self._log(f"pbt: the chief oracle is unavailable ({name}); retrying in {wait:.0f} s")
                    time.sleep(wait)
                    wait = min(2 * wait, 30.0)
        return call


class PBTTuner(kt.engine.base_tuner.BaseTuner):
    """Runs the oracle's trials: copies a checkpoint when told to (once per trial, under the
    member folder's lock), trains the member one interval with `runner`, returns its fitness.

    Args:
      oracle: a `PBTOracle`.
      runner: trains a member: `runner.train(folder, member, {"beta", "gamma"}, stop_step)` ->
        {"nll", "nll_se", ...}, raising `train.DivergenceError` on a non-finite loss
        (`TrainerRunner`; tests pass toy runners).
      population_dir: the shared population folder (keras-tuner's project is `tuner/` in it).
      idle_seconds: wait between requests while the oracle has nothing to give (the barrier).
      patience_s: how long a worker keeps retrying calls to an unavailable chief.
    """

    def __init__(self, oracle, runner, population_dir: str, idle_seconds: float = 1.0,
                 patience_s: float = 3600.0, log: Callable[[str], None] = print):
        super().__init__(oracle=oracle, hypermodel=None, directory=population_dir, project_name=TUNER_PROJECT)
        self.runner, self.population_dir, self.log = runner, population_dir, log
        self.idle_seconds = idle_seconds
        self._started_since_last_request = True
        if self._is_worker():
            self.oracle = _RetryingClient(self.oracle, patience_s, log)

    def pre_create_trial(self):
        if not self._started_since_last_request:  # the last request was answered IDLE
            time.sleep(self.idle_seconds)
        self._started_since_last_request = False

    def on_trial_begin(self, trial):
        self._started_since_last_request = True

    def on_search_begin(self):
        self.save()  # a process killed in its first interval resumes from here

    def run_trial(self, trial, *args, **kwargs):
        try:
            return self._run_interval(trial)
        except Exception as e:  # keras-tuner marks the trial INVALID (retried) and keeps only the traceback
            self.log(f"pbt: trial {trial.trial_id} failed: {type(e).__name__}: {e}")
            raise

    def _run_interval(self, trial):
        v = trial.hyperparameters.values
        member, start, stop = int(v["pbt/member"]), int(v["pbt/start"]), int(v["pbt/stop"])
        hyperparameters = {"beta": float(v["beta"]), "gamma": float(v["gamma"])}
        folder = member_dir(self.population_dir, member)
        t0 = time.monotonic()
        with fileio.FolderLock(folder, f"PBT member {member}, trial {trial.trial_id} ({self.tuner_id})"):
            if int(v["pbt/copy_from"]) >= 0:
                copy = apply_exploit(self.population_dir, member, int(v["pbt/copy_from"]),
                                     int(v["pbt/copy_step"]), trial.trial_id)
                if copy:
                    self.log(f"pbt: member {member} copied member {copy['source']}'s checkpoint at step "
                             f"{copy['step']}; beta {hyperparameters['beta']:.4g} gamma "
                             f"{hyperparameters['gamma']:.5g}")
            self.log(f"pbt: {self.tuner_id} trains member {member} steps {start} -> {stop} "
                     f"(trial {trial.trial_id})")
            try:
                result = self.runner.train(folder, member, hyperparameters, stop)
            except DivergenceError as e:
                self.log(f"pbt: member {member} diverged: {e}")
                return {"fitness": float("-inf"), "diverged": 1.0, "seconds": time.monotonic() - t0}
        nll = float(result["nll"])
        metrics = {"fitness": -nll, "nll": nll, "diverged": 0.0, "seconds": time.monotonic() - t0}
        if result.get("nll_se") is not None and math.isfinite(result["nll_se"]):
            metrics["nll_se"] = float(result["nll_se"])
        self.log(f"pbt: member {member} at step {stop}: fitness NLL {nll:.4f}")
        return metrics

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        fileio.atomic_write_json(self._get_tuner_fname(), self.get_state())


def role() -> str:
    """"chief", "worker" (keras-tuner's KERASTUNER_* variables) or "local" (one process)."""
    if not dist_utils.has_chief_oracle():
        return "local"
    return "chief" if dist_utils.is_chief_oracle() else "worker"


def check_population(population_dir: str, experiment: Experiment, config: PBTConfig, total_steps: int,
                     write: bool) -> None:
    """population.json records what the population trains; a later run (or a worker) with other
    settings is refused. `write`: record them if absent (the chief or a single process)."""
    path = os.path.join(population_dir, POPULATION_FILE)
    settings = {"experiment": experiment.to_dict(), "pbt": config.to_dict(), "total_steps": total_steps}
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved != json.loads(json.dumps(settings)):
            raise PBTError(f"{path}: the population in {population_dir} was started with other settings; "
                           f"use the same experiment and PBT settings to resume, or another folder")
    elif write:
        fileio.atomic_write_json(path, settings)


def default_max_nll(experiment: Experiment) -> float:
    """2 log K, K the model's output classes: twice the NLL of a uniform guess."""
    return 2.0 * math.log(experiment.model.local.output_channels)


def run_population(experiment: Experiment, data_dir: str, population_dir: str, config: PBTConfig,
                   runner=None, initial: Optional[Sequence[dict]] = None, idle_seconds: float = 1.0,
                   log: Callable[[str], None] = print) -> Optional[dict]:
    """Trains a population of `experiment` (a VQ-VAE) with population based training.

    In one process, or, with keras-tuner's KERASTUNER_* variables set, as the chief oracle or as
    one worker (run the same call on every machine; `population_dir` shared by all). Running it
    again resumes. Returns the lineage (`read_lineage`) where the oracle runs, None on a worker."""
    if not isinstance(experiment.model, ADAConfig) or experiment.model.quantizer != "vq":
        raise PBTError(f"{experiment.name}: PBT tunes the VQ-VAE's beta and gamma; this is not a VQ-VAE")
    total = int(config.total_steps or experiment.train.steps)
    where = role()
    os.makedirs(population_dir, exist_ok=True)
    check_population(population_dir, experiment, config, total, write=where != "worker")
    max_nll = config.max_nll if config.max_nll is not None else default_max_nll(experiment)
    oracle = PBTOracle(config, total, population_dir, max_nll, initial=initial)
    runner = runner or TrainerRunner(experiment, data_dir, config, total, log=log)
    tuner = PBTTuner(oracle, runner, population_dir, idle_seconds=idle_seconds, log=log)
    log(f"pbt: {experiment.name}: {config.population} members x {total} steps, intervals of {config.ready_steps}, "
        f"exploit/explore from step {config.warmup_steps}; {where} ({tuner.tuner_id}) in {population_dir}")
    tuner.search(verbose=0)
    if where == "worker":
        return None
    lineage = read_lineage(population_dir)
    try:
        plot_lineage(population_dir)
    except Exception as e:  # noqa: BLE001  (a plot must not lose a finished population)
        log(f"pbt: could not draw {PLOT_FILE}: {e}")
    return lineage


# --- lineage ------------------------------------------------------------------------------------------

def read_lineage(population_dir: str) -> dict:
    """lineage.json of a population: its settings, members now, and every event in order:
    "start" (initial beta, gamma), "interval" (a member reached `step`: fitness, NLL and its SE,
    diverged), "exploit" (at `step`, `member` copied `source`'s checkpoint and hyperparameters
    `copied`, then took `beta`/`gamma`; `reason` "truncation" or "diverged"), "end"."""
    with open(os.path.join(population_dir, LINEAGE_FILE)) as f:
        return json.load(f)


def member_history(lineage: dict, member: int) -> list:
    """(step, beta, gamma, fitness or None) of one member in order: its start, every interval end, and
    after each exploit its new values at the same step."""
    rows = []
    for e in lineage["events"]:
        if e.get("member") != member:
            continue
        if e["kind"] in ("start", "interval", "exploit"):
            rows.append((e["step"], e["beta"], e["gamma"], e.get("fitness") if e["kind"] == "interval" else None))
    return rows


def plot_lineage(population_dir: str, path: Optional[str] = None) -> str:
    """Draws beta, 1 - gamma (log scales) and fitness (-NLL) of every member against the step, with
    each exploit as a dashed line from the source's point to the member's new one (Agg backend);
    returns the file written (default `POP/lineage.png`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    lineage = read_lineage(population_dir)
    n = lineage["config"]["population"]
    fig, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    colours = plt.get_cmap("tab20" if n > 10 else "tab10")
    for m in range(n):
        rows = member_history(lineage, m)
        c = colours(m % colours.N)
        steps = [r[0] for r in rows]
        axes[0].plot(steps, [r[1] for r in rows], "-", color=c, lw=1.2, label=f"member {m}")
        axes[1].plot(steps, [1.0 - r[2] for r in rows], "-", color=c, lw=1.2)
        fit = [(r[0], r[3]) for r in rows if r[3] is not None]
        if fit:
            axes[2].plot(*zip(*fit), "o-", color=c, lw=1.2, ms=3)
    for e in lineage["events"]:
        if e["kind"] == "exploit":
            c = colours(e["member"] % colours.N)
            axes[0].plot([e["step"]] * 2, [e["copied"]["beta"], e["beta"]], "--", color=c, lw=0.8)
            axes[1].plot([e["step"]] * 2, [1 - e["copied"]["gamma"], 1 - e["gamma"]], "--", color=c, lw=0.8)
            axes[0].plot(e["step"], e["beta"], "^", color=c, ms=5)
        elif e["kind"] == "interval" and e["diverged"]:  # at the foot of the fitness axes
            axes[2].plot(e["step"], 0.03, "x", color=colours(e["member"] % colours.N), ms=8,
                         transform=axes[2].get_xaxis_transform())
    axes[0].set(yscale="log", ylabel="beta")
    axes[1].set(yscale="log", ylabel="1 - gamma")
    axes[2].set(ylabel="fitness (-NLL, nats)", xlabel="step")
    cfg = lineage["config"]
    for ax in axes:
        ax.axvline(cfg["warmup_steps"], color="grey", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, ncol=4)
    axes[0].set_title(f"PBT lineage: {n} members, exploit/explore every {cfg['ready_steps']} steps from step "
                      f"{cfg['warmup_steps']} (dotted line)\n^ copied (dashed: from the source's value) and "
                      f"perturbed; x diverged", fontsize=10)
    fig.tight_layout()
    path = path or os.path.join(population_dir, PLOT_FILE)
    tmp = path + ".partial.png"
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def best_member(population_dir: str) -> dict:
    """The member with the highest latest fitness among those not diverged, with its folder."""
    lineage = read_lineage(population_dir)
    healthy = [m for m in lineage["members"] if not m["diverged"] and m["fitness"] is not None]
    if not healthy:
        raise PBTError(f"{population_dir}: no member with a finite fitness")
    best = max(healthy, key=lambda m: m["fitness"])
    return dict(best, folder=member_dir(population_dir, best["member"]))


# --- command line ---------------------------------------------------------------------------------------

def _experiment_from_args(args) -> Experiment:
    experiment = (runs.read_experiment(args.experiment) if args.experiment
                  else configs.table1_row(args.row, args.scale, steps=args.steps))
    return configs.override_text(experiment, args.set) if args.set else experiment


def main(argv=None) -> int:
    """`python -m tf_ada.pbt run ...` (on every machine of a distributed population) and `plot POP`."""
    p = argparse.ArgumentParser(prog="python -m tf_ada.pbt", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train a population (resumes); KERASTUNER_* variables for several machines")
    r.add_argument("data", help="prepared data folder (audio or code shards)")
    r.add_argument("out", help="population folder (shared by every machine)")
    r.add_argument("--experiment", help="an experiment.json to train (a VQ-VAE)")
    r.add_argument("--row", default="1.2", help="or a Table 1 VQ-VAE row (default 1.2)")
    r.add_argument("--scale", default="cpu", choices=configs.SCALES,
                   help="the row's size and the PBT schedule (pbt_schedule; the options below change it)")
    r.add_argument("--steps", type=int, help="steps per member (default: the experiment's)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change the experiment by dotted key (e.g. train.batch_size=4); repeatable")
    r.add_argument("--population", type=int, help="members (tiny 2, cpu 6, paper 20)")
    r.add_argument("--ready-steps", type=int, help="steps per interval (tiny 1, cpu 100, paper 5000)")
    r.add_argument("--warmup-steps", type=int, help="no exploit/explore before (tiny 1, cpu 200, paper 10000)")
    r.add_argument("--beta-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="default 0.1 2.0")
    r.add_argument("--gamma-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="default 0.8 0.999")
    r.add_argument("--fitness-split", help="split of the fitness windows (default train)")
    r.add_argument("--fitness-windows", type=int, help="one-second fitness windows (tiny 2, cpu 16, paper 256)")
    r.add_argument("--fitness-weights", choices=("live", "polyak"), help="default live")
    r.add_argument("--seed", type=int, help="initial draws and decisions (default 0)")
    r.add_argument("--idle-seconds", type=float, default=1.0, help="a worker's wait at the generation barrier")
    r.add_argument("--quiet", action="store_true", help="log PBT lines only, not the Trainer's")
    pl = sub.add_parser("plot", help="draw POP/lineage.png from POP/lineage.json")
    pl.add_argument("out")
    args = p.parse_args(argv)
    if args.command == "plot":
        print(plot_lineage(args.out))
        return 0
    experiment = _experiment_from_args(args)
    config = pbt_schedule(args.scale)
    names = ("population", "ready_steps", "warmup_steps", "fitness_split", "fitness_windows", "fitness_weights", "seed")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    overrides.update({k: tuple(getattr(args, k)) for k in ("beta_range", "gamma_range") if getattr(args, k)})
    if args.steps:
        overrides["total_steps"] = args.steps
    config = dataclasses.replace(config, **overrides)

    def log(line):
        if not args.quiet or line.startswith("pbt:"):
            print(line, flush=True)
    lineage = run_population(experiment, args.data, args.out, config, idle_seconds=args.idle_seconds, log=log)
    if lineage is not None:
        best = best_member(args.out)
        print(json.dumps({"best_member": best["member"], "fitness": best["fitness"], "beta": best["beta"],
                          "gamma": best["gamma"], "folder": best["folder"], "stopped": lineage["stopped"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
