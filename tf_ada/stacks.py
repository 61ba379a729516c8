"""Table 3 (sec. 4.4): stacks of levels for sampling music top-down, and ancestral sampling through them.

A stack is a list of levels, bottom first: zero, one or two ADAs (each turning the codes of the level
above into the symbols of the level below: audio for a first-level ADA, first-level codes for a
second-level one) and, on top, an unconditional WaveNet "prior" (on audio for 3.1-3.3, on codes for
3.4-3.7). Every level reuses a trained row: Table 1's ADAs (`configs.table1_row`), Table 2's
second-level ADAs (`configs.table2_row`) and the large / very large / thin WaveNets of
`configs.WAVENETS`.

The stack's receptive field (Table 3's "RF") is the prior's, in audio time: the prior's receptive
field in its own steps times the hops of the ADAs below it (each code stands for `hop` steps of the
level below), at 16 kHz. Ours is computed from the configs (a causal WaveNet of app. A sees
1 + (k - 1) * sum(dilations) steps, 6139 for the large WaveNet); the paper states the nominal
powers of two ("6144", 384 ms).

Sampling (`sample_stack`): the prior's cached generation (`WaveNet.generate`) draws the top codes of
N streams as one batch; each ADA below renders them with its public `ADA.decode` (the local model's
cached generation, conditioned by the modulator), down to audio. Every level has its own seed and
temperature, recorded in `samples.json`.

Run folders: `StackRuns` names the run folder of each level (`{"stack": "3.6", "levels": {"first":
DIR, "second": DIR, "prior": DIR}}`, paths relative to the file); `load_stack` rebuilds each level's
model with its Polyak weights and checks that the levels fit (the prior predicts the codes the ADA
below reads; a second-level ADA reads the codes of the first).

Training a prior on codes of codes (issue 16 item 2, in part): a code corpus's records are the
input's records divided by the hop (2**18 audio samples -> 4096 second-level codes), shorter than
the paper-scale prior's excerpts (8192 steps) and receptive field (6139 steps); encode its corpus
with `encode_corpus(..., record_steps=...)` at least the prior's excerpt length.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Callable, Optional

import numpy as np

from tf_ada import configs, rows
from tf_ada.configs import ADAConfig, Experiment
from tf_ada.runs import RunError

SAMPLE_RATE = 16000
ROLES = ("first", "second", "prior")  # bottom to top

# Table 3 of the paper (tf_ada/rows.py, where the rows are defined once): {row: (description, level
# count, receptive field in ms)}; the human ratings are lost from our copy
PAPER_TABLE3 = {row: (spec.description, spec.n_levels, spec.receptive_field_ms) for row, spec in rows.TABLE3.items()}


@dataclasses.dataclass(frozen=True)
class Level:
    """One level of a stack.

    Attributes:
      role: "first" (an ADA on audio), "second" (an ADA on first-level codes) or "prior" (the
        unconditional WaveNet on top).
      experiment: what trains it (`configs.table1_row`, `table2_row`, or a prior's experiment).
      source: which trained row it is ("Table 1 row 1.2", ...).
    """
    role: str
    experiment: Experiment
    source: str

    @property
    def model(self):
        return self.experiment.model

    @property
    def hop(self) -> int:
        """Steps of the level below per step of this level's input (1 for the prior)."""
        return self.model.hop if isinstance(self.model, ADAConfig) else 1


@dataclasses.dataclass(frozen=True)
class Stack:
    """A Table 3 row: `levels` bottom first, the prior last."""
    row: str
    description: str
    scale: str
    levels: tuple

    @property
    def prior(self) -> Level:
        return self.levels[-1]

    @property
    def adas(self) -> tuple:
        return self.levels[:-1]

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def prior_hop(self) -> int:
        """Audio samples per step of the prior (the product of the ADAs' hops; 1 on audio)."""
        return int(np.prod([lv.hop for lv in self.adas], dtype=np.int64)) if self.adas else 1

    @property
    def receptive_field_samples(self) -> int:
        """The prior's receptive field in audio samples."""
        return self.prior.model.receptive_field * self.prior_hop

    @property
    def receptive_field_ms(self) -> float:
        return 1000.0 * self.receptive_field_samples / SAMPLE_RATE

    @property
    def paper_receptive_field_ms(self) -> int:
        return PAPER_TABLE3[self.row][2]

    def describe(self) -> dict:
        return {"row": self.row, "description": self.description, "scale": self.scale, "levels": [
            {"role": lv.role, "experiment": lv.experiment.name, "source": lv.source,
             "model": type(lv.model).__name__, "hop": lv.hop, "receptive_field_steps": _rf_steps(lv.model)}
            for lv in self.levels],
            "prior_hop": self.prior_hop, "receptive_field_samples": self.receptive_field_samples,
            "receptive_field_ms": round(self.receptive_field_ms, 2),
            "paper_receptive_field_ms": self.paper_receptive_field_ms}


def _rf_steps(model) -> int:
    return (model.local if isinstance(model, ADAConfig) else model).receptive_field


def prior_experiment(row: str, scale: str, steps: Optional[int] = None) -> Experiment:
    """The large WaveNet prior on 256 codes (one-hot) of a Table 3 stack, trained as the paper's
    unconditional WaveNets (`table1_train(..., unconditional=True)`). For 3.4 it is Table 2's row 2.1
    (the large WaveNet on the codes of #1.2)."""
    if row == "3.4":
        return configs.table2_row("2.1", scale, steps)
    return Experiment(name=f"table3_{row.replace('.', '_')}_prior_{scale}",
                      model=configs.large_wavenet(scale, input_kind="one_hot", n_classes=256),
                      train=configs.table1_train(scale, True, steps), paper_row=row)


def _unconditional(row: str, kind: str, scale: str, steps: Optional[int]) -> Experiment:
    if row == "3.1":
        return configs.table1_row("1.1", scale, steps)
    model = configs.WAVENETS[kind](scale, input_kind="continuous")
    return Experiment(name=f"table3_{row.replace('.', '_')}_{scale}", model=model,
                      train=configs.table1_train(scale, True, steps), paper_row=row)


def stack(row: str, scale: str = "paper", steps: Optional[int] = None) -> Stack:
    """Table 3's row `row` ("3.1" ... "3.7") at `scale`, its levels reusing the trained rows:
    3.1 = #1.1 (large WaveNet); 3.2 very large and 3.3 thin WaveNets on audio; 3.4 = #1.2 + large
    WaveNet prior on its codes (#2.1); 3.5 = #1.7 + prior; 3.6 = #1.2 + #2.2 (PBT VQ-VAE) + prior;
    3.7 = #1.2 + #2.4 (AMAE, decoder RF 64) + prior."""
    if row not in PAPER_TABLE3:
        raise ValueError(f"Table 3 has rows {sorted(PAPER_TABLE3)}, not {row!r}")
    description = PAPER_TABLE3[row][0]
    unconditional = {"3.1": ("large", "Table 1 row 1.1"), "3.2": ("very_large", "configs.very_large_wavenet"),
                     "3.3": ("thin", "configs.thin_wavenet")}
    if row in unconditional:
        kind, source = unconditional[row]
        levels = (Level("prior", _unconditional(row, kind, scale, steps), source),)
    else:
        first_row = "1.7" if row == "3.5" else "1.2"
        levels = (Level("first", configs.table1_row(first_row, scale, steps), f"Table 1 row {first_row}"),)
        if row in ("3.6", "3.7"):
            second_row = "2.2" if row == "3.6" else "2.4"
            levels += (Level("second", configs.table2_row(second_row, scale, steps), f"Table 2 row {second_row}"),)
        levels += (Level("prior", prior_experiment(row, scale, steps),
                         "Table 2 row 2.1" if row == "3.4" else f"large WaveNet on the codes of {levels[-1].source}"),)
    return Stack(row=row, description=description, scale=scale, levels=levels)


def receptive_field_table(scale: str = "paper") -> list[dict]:
    """Every stack's receptive field in ms (ours, computed) against the paper's."""
    out = []
    for row in PAPER_TABLE3:
        s = stack(row, scale)
        out.append({"row": row, "model": s.description, "levels": s.n_levels,
                    "rf_ms": round(s.receptive_field_ms, 2), "paper_rf_ms": s.paper_receptive_field_ms,
                    "ratio": round(s.receptive_field_ms / s.paper_receptive_field_ms, 4)})
    return out


# --- loading trained levels -----------------------------------------------------------------------

class StackError(RunError):
    """A stack description or run folder that does not make the stack; the message says which."""


def read_runs(path: str) -> tuple[str, dict]:
    """A stack description file -> (row, {role: run folder}); folders relative to the file."""
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError as e:
        raise StackError(f"{path}: cannot read the stack description ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise StackError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(d, dict) or not isinstance(d.get("levels"), dict):
        raise StackError(f'{path}: expected {{"stack": "3.6", "levels": {{"first": DIR, "second": DIR, '
                         f'"prior": DIR}}}}')
    base = os.path.dirname(os.path.abspath(path))
    return d.get("stack"), {role: _from_file(base, folder) for role, folder in d["levels"].items()}


def _to_file(root: str, level: str) -> str:
    """A level's place as a stack description records it: a run folder relative to the file's
    folder `root`, a shipped model as "pretrained:NAME"."""
    return level if is_shipped(level) else os.path.relpath(level, root)


def _from_file(base: str, recorded: str) -> str:
    return recorded if is_shipped(recorded) else os.path.join(base, recorded)


def read_corpora(path: str) -> dict:
    """{role: the data folder the level was trained on} from a stack description written by
    `train_stack` (empty for one that does not say); folders relative to the file."""
    with open(path) as f:
        d = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    trained_on = d.get("trained_on") if isinstance(d, dict) else None
    return {role: _from_file(base, folder) for role, folder in (trained_on or {}).items()}


def expected_roles(row: str) -> list[str]:
    return [lv.role for lv in stack(row, "tiny").levels]


@dataclasses.dataclass
class LoadedStack:
    row: str
    models: dict          # role -> model (Polyak weights)
    experiments: dict     # role -> Experiment read from the run folder
    folders: dict         # role -> run folder

    @property
    def roles(self) -> list[str]:
        return [r for r in ROLES if r in self.models]

    @property
    def prior_hop(self) -> int:
        return int(np.prod([self.models[r].config.hop for r in self.roles if r != "prior"], dtype=np.int64))

    @property
    def receptive_field_ms(self) -> float:
        return 1000.0 * self.models["prior"].config.receptive_field * self.prior_hop / SAMPLE_RATE


SHIPPED = "pretrained:"  # a level given as a shipped model (`tf_ada.pretrained`), not a run folder


def is_shipped(level: str) -> bool:
    """Whether a level's place is a shipped model, "pretrained:NAME" (as a code manifest's
    `source_checkpoint` names it), rather than a run folder."""
    return str(level).startswith(SHIPPED)


def shipped_level(source_checkpoint: Optional[str], weights_sha256: Optional[str] = None) -> Optional[str]:
    """"pretrained:NAME" when `source_checkpoint` names a shipped model that is installed and (given
    `weights_sha256`, a code manifest's) still has the weights the codes were encoded with; else None."""
    from tf_ada import pretrained
    if not is_shipped(source_checkpoint or ""):
        return None
    name = source_checkpoint[len(SHIPPED):]
    if name not in pretrained.available():
        return None
    files = pretrained.read_card(name)["weights"]["files"]
    if weights_sha256 and files.get(pretrained.WEIGHTS, {}).get("sha256") != weights_sha256:
        return None
    return source_checkpoint


def level_path(level: str) -> str:
    """A level's place as recorded and compared: a run folder's real path (the same through links
    and copies of the tree), or "pretrained:NAME"."""
    return level if is_shipped(level) else os.path.realpath(level)


def codes_writer(manifest) -> Optional[str]:
    """The level that wrote a code corpus (its `data.Manifest`): the run folder it records, else the
    shipped model it names while that model still has the weights the codes came from, else None."""
    return manifest.source_run or shipped_level(manifest.source_checkpoint, manifest.source_weights_sha256)


def level_step(level: str) -> Optional[int]:
    """The training step of a level: its run folder's newest checkpoint, a shipped model's card steps."""
    from tf_ada import pretrained, runs
    if is_shipped(level):
        return pretrained.read_card(level[len(SHIPPED):]).get("steps")
    return runs.newest_checkpoint_step(level) if os.path.isdir(level) else None


def shipped_minutes(level: str) -> tuple:
    """(training minutes, source) of a shipped model, from its card."""
    from tf_ada import pretrained
    seconds = pretrained.read_card(level[len(SHIPPED):]).get("wall_seconds")
    return (seconds / 60 if seconds else None), "the shipped model's card"


def encode_source(level: str):
    """(ADA with Polyak weights, its description for a code manifest) of a run folder or a shipped
    model: what `encode.encode_corpus` takes."""
    from tf_ada import encode
    return encode.source_of_pretrained(level[len(SHIPPED):]) if is_shipped(level) else encode.source_of_run(level)


def load_level(level: str):
    """(model with Polyak weights, experiment) of a run folder or a shipped model "pretrained:NAME"."""
    if is_shipped(level):
        from tf_ada import pretrained
        model, experiment, _ = pretrained.load(level[len(SHIPPED):])
        return model, experiment
    from tf_ada.train import load_model
    return load_model(level)


def load_stack(row: str, folders: dict, log: Callable[[str], None] = print,
               corpora: Optional[dict] = None) -> LoadedStack:
    """Rebuilds each level of stack `row` from its run folder (Polyak weights) and checks the fit:
    model kinds, class counts, and with `corpora` ({role: the data folder it trained on}) that each
    level above the bottom trained on codes written by the run folder of the level below."""
    from tf_ada.models.ada import ADA
    from tf_ada.models.wavenet import WaveNet
    roles = expected_roles(row)
    if sorted(folders) != sorted(roles):
        raise StackError(f"stack {row} has levels {', '.join(roles)}; got run folders for "
                         f"{', '.join(sorted(folders)) or 'none'}")
    models, experiments = {}, {}
    for role in roles:
        model, experiment = load_level(folders[role])
        want = WaveNet if role == "prior" else ADA
        if not isinstance(model, want):
            article = "a" if role == "prior" else "an"
            raise StackError(f"{folders[role]}: the {role} level must be {article} {want.__name__}, "
                             f"not a {type(model).__name__}")
        models[role], experiments[role] = model, experiment
        log(f"stack {row}: {role} level {experiment.name} from {folders[role]}")
    # the symbols each level predicts are what the level above's codes decode into
    below = None
    for role in roles:
        cfg = models[role].config
        reads = cfg.encoder.n_input_classes if isinstance(cfg, ADAConfig) else cfg.n_input_classes
        if below is None:
            if reads != 256:
                raise StackError(f"{folders[role]}: the bottom level must read 256-class mu-law audio")
        elif reads != below:
            raise StackError(f"{folders[role]}: the {role} level reads {reads} classes but the level below "
                             f"has {below} codes")
        if isinstance(cfg, ADAConfig):
            below = cfg.n_codes
    for below_role, role in zip(roles, roles[1:]):
        corpus = (corpora or {}).get(role)
        if corpus is None:
            continue
        from tf_ada import data as data_mod
        manifest = data_mod.load_manifest(corpus)
        source = codes_writer(manifest)
        # a shipped model counts only with the weights the codes were encoded with
        stale_shipped = source is None and is_shipped(manifest.source_checkpoint or "")
        if stale_shipped or (source is not None and level_path(source) != level_path(folders[below_role])):
            raise StackError(f"{folders[role]}: the {role} level trained on {corpus}, the codes of "
                             f"{source or manifest.source_checkpoint} (weights sha256 "
                             f"{(manifest.source_weights_sha256 or '?')[:12]}), not of the {below_role} level's "
                             f"run {folders[below_role]}")
    return LoadedStack(row=row, models=models, experiments=experiments, folders=dict(folders))


def train_stack(row: str, scale: str, data_dir: str, root: str, steps: Optional[int] = None,
                log: Callable[[str], None] = print, reuse: Optional[dict] = None, evaluate: bool = True) -> str:
    """Trains the levels of stack `row` bottom-up under `root` (resumable), each on the codes of the
    level below, and writes `root/stack_ROW.json` naming their run folders; returns its path.

    A level's run folder is `root/EXPERIMENT_NAME` and the codes it writes
    `root/codes_EXPERIMENT_NAME_stepSTEP` (STEP: the checkpoint encoded, so a level trained further
    gets new codes, never a clash with the old ones), so stacks trained under one root share their
    common levels (#1.2 for 3.4, 3.6 and 3.7). The code
    corpus read by the level above is encoded with records at least that level's excerpt length
    (`encode_corpus(record_steps=...)`). A finished level is not trained again (the Trainer resumes
    from its checkpoints and stops at its step count); a finished corpus is not encoded again.

    reuse: {role: {"run": run folder, "trained_on": its data folder}} of levels trained elsewhere
      (Table 1's or Table 2's run folders, `reproduce/table3.py`): used as they are, never trained
      here. A reused level's codes go to `root/codes_NAME_stepSTEP_HASH` (HASH: of the run folder's path), so
      they never mix with the codes of the level trained here under the same name; when the level
      above is reused too, its own `trained_on` corpus is used and nothing is encoded.
    evaluate: False trains the levels without their periodic and final held-out evaluations
      (`Trainer.train(evaluate=False)`): faster, and sampling needs none."""
    from tf_ada import data as data_mod, encode
    from tf_ada.train import Trainer
    st = stack(row, scale, steps)
    reuse = reuse or {}
    unknown = sorted(set(reuse) - {lv.role for lv in st.levels})
    if unknown:
        raise StackError(f"stack {row} has levels {', '.join(lv.role for lv in st.levels)}; cannot reuse "
                         f"{', '.join(unknown)}")
    folders, trained_on, source = {}, {}, data_dir
    for k, lv in enumerate(st.levels):
        given = reuse.get(lv.role)
        if given:
            folder = given["run"]
            source = given.get("trained_on") or source
            log(f"stack {row}: {lv.role} level {lv.experiment.name} reused from {folder} (trained on {source})")
        else:
            folder = os.path.join(root, lv.experiment.name)
            log(f"stack {row}: {lv.role} level {lv.experiment.name} ({lv.source}) on {source}")
            Trainer(lv.experiment, source, folder, log=log).train(evaluate=evaluate)
        folders[lv.role], trained_on[lv.role] = folder, source
        if lv.role != "prior":
            above = st.levels[k + 1]
            if (reuse.get(above.role) or {}).get("trained_on"):
                source = reuse[above.role]["trained_on"]
                continue
            model, meta = encode_source(folder)
            default = max(1, int(data_mod.load_manifest(source).chunk_samples) // lv.hop)
            # named by the checkpoint step: a level trained further writes new codes beside the old
            name = f"codes_{lv.experiment.name}_step{meta['source_step']}"
            if given:
                import hashlib
                name += "_" + hashlib.sha1(level_path(folder).encode()).hexdigest()[:8]
            codes = os.path.join(root, name)
            encode.encode_corpus(model, meta, source, codes, log=log,
                                 record_steps=max(above.experiment.train.n_samples, default))
            source = codes
    path = os.path.join(root, f"stack_{row}.json")
    os.makedirs(root, exist_ok=True)  # every level reused: nothing was written under root yet
    with open(path, "w") as f:
        json.dump({"stack": row, "scale": scale, "levels": {r: _to_file(root, d) for r, d in folders.items()},
                   "trained_on": {r: _to_file(root, d) for r, d in trained_on.items()},
                   "description": st.describe()}, f, indent=2)
    log(f"stack {row}: levels trained; {path}")
    return path


# --- top-down ancestral sampling ------------------------------------------------------------------

def level_seeds(seed: int, roles: list[str]) -> dict:
    """One seed per level, derived from `seed` (recorded in samples.json)."""
    return {role: int(seed) * 1000 + i for i, role in enumerate(roles)}


def _generation_flops(model) -> float:
    """FLOPs per generated step of a built level (`generation_flops` of its config)."""
    return generation_flops(model.config)


def generation_flops(config) -> float:
    """FLOPs per generated step of a level's config (an `ADAConfig` or a WaveNet config), as
    `sample_stack` weighs its progress: the network that runs at every step (a dry run's sampling cost)."""
    if isinstance(config, ADAConfig):
        return config.local.flops_per_timestep() + config.modulator.flops_per_timestep() / config.hop
    return config.flops_per_timestep()


def sample_stack(loaded: LoadedStack, seconds: float, n: int, out_dir: str, seed: int = 0,
                 temperatures: Optional[dict] = None, render_levels: bool = True,
                 log: Callable[[str], None] = print) -> dict:
    """Top-down ancestral sampling: prior -> (second-level decoder) -> first-level decoder -> audio.

    Args:
      loaded: `load_stack`'s levels.
      seconds: audio per stream (rounded up to a whole number of prior steps).
      n: streams, sampled together as one batch at every level.
      out_dir: where `samples.json`, `codes_ROLE.npy` (int `[n, T_role]`, each level's output) and
        the wavs go: `audio/stream_I.wav` (the stack's samples) and, with `render_levels`,
        `level_ROLE/stream_I.wav` for every code level: its codes rendered through the levels below
        with their own (render) seeds, so that what the codes fix can be heard apart from what the
        lower decoders' sampling adds. What an earlier sampling left there is removed first
        (`clear_samples`); samples.json lists the wavs written (`sample_wavs` reads them).
      seed: base seed; each level gets `level_seeds(seed, roles)[role]`.
      temperatures: {role: temperature} (default 1.0 for every level).

    Returns:
      The summary written to samples.json (seeds, temperatures, lengths, wall times, seconds of
      audio per wall-clock second).
    """
    from tf_ada import ops
    from tf_ada.audio import save_wav
    from tf_ada.progress import LogStream, Progress
    roles = loaded.roles
    temps = {role: float((temperatures or {}).get(role, 1.0)) for role in roles}
    for role, t in temps.items():
        if not t > 0:
            raise StackError(f"temperature of the {role} level must be > 0, got {t}")
    seeds = level_seeds(seed, roles)
    hop = loaded.prior_hop
    n_top = max(1, math.ceil(seconds * SAMPLE_RATE / hop))
    lengths = {}
    steps = n_top
    for role in reversed(roles):  # prior first; an ADA at role produces hop x the steps above
        if role != "prior":
            steps *= loaded.models[role].config.hop
        lengths[role] = steps
    n_audio = lengths[roles[0]]
    work = {role: lengths[role] * n * _generation_flops(loaded.models[role]) for role in roles}
    # progress over the levels, weighted by each level's generation FLOPs (the ETA of the levels below)
    progress = Progress(sum(work.values()) / 1e6, f"sample {loaded.row}", unit="MFLOP", interval=0.0,
                        stream=LogStream(log))
    clear_samples(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    log(f"sample {loaded.row}: {n} stream(s) x {n_audio / SAMPLE_RATE:.3f} s ({n_top} prior steps x hop {hop}); "
        f"levels top-down: {', '.join(reversed(roles))}")
    outputs, walls, t_start = {}, {}, time.monotonic()
    for role in reversed(roles):
        model, t0 = loaded.models[role], time.monotonic()
        if role == "prior":
            x = model.generate(n_top, batch_size=n, temperature=temps[role], seed=seeds[role], verbose=None)
        else:
            x = model.decode(outputs[_above(roles, role)], seed=seeds[role], temperature=temps[role])
        outputs[role] = np.asarray(x, np.int32)
        walls[role] = time.monotonic() - t0
        np.save(os.path.join(out_dir, f"codes_{role}.npy"), outputs[role])
        progress.update(work[role] / 1e6, note=f"{role} level: {lengths[role]:,} steps x {n} in {walls[role]:.1f} s")
    wall = time.monotonic() - t_start
    audio = outputs[roles[0]]
    wavs = {"audio": [f"audio/stream_{i:02d}.wav" for i in range(n)]}
    for i, rel in enumerate(wavs["audio"]):
        save_wav(os.path.join(out_dir, rel), ops.mu_law_decode(audio[i]).numpy())
    renders, t_render = {}, time.monotonic()
    if render_levels:
        for k, role in enumerate(roles[1:], start=1):  # code levels: render through the levels below
            render_seed, x = seeds[role] + 500, outputs[role]
            for below in reversed(roles[:k]):
                x = np.asarray(loaded.models[below].decode(x, seed=render_seed, temperature=temps[below],
                                                           verbose=False))
            wavs[role] = [f"level_{role}/stream_{i:02d}.wav" for i in range(n)]
            for i, rel in enumerate(wavs[role]):
                save_wav(os.path.join(out_dir, rel), ops.mu_law_decode(x[i]).numpy())
            renders[role] = {"seed": render_seed, "through": list(reversed(roles[:k])),
                             "folder": f"level_{role}"}
    render_wall = time.monotonic() - t_render
    rate = n * n_audio / SAMPLE_RATE / wall
    summary = {"stack": loaded.row, "streams": n, "seconds_requested": seconds,
               "seconds_per_stream": n_audio / SAMPLE_RATE, "base_seed": int(seed), "seeds": seeds,
               "temperatures": temps, "levels_top_down": list(reversed(roles)),
               "steps": lengths, "hops": {r: loaded.models[r].config.hop for r in roles if r != "prior"},
               "run_folders": {r: level_path(f) for r, f in loaded.folders.items()},
               "experiments": {r: e.name for r, e in loaded.experiments.items()},
               "receptive_field_ms": round(loaded.receptive_field_ms, 2),
               "paper_receptive_field_ms": PAPER_TABLE3[loaded.row][2],
               "wall_seconds": {r: round(w, 3) for r, w in walls.items()}, "wall_seconds_total": round(wall, 3),
               "audio_seconds_per_wall_second": rate, "level_renders": renders,
               "level_renders_wall_seconds": round(render_wall, 3),
               "files": {"audio": "audio/stream_NN.wav", "codes": {r: f"codes_{r}.npy" for r in roles}},
               "wavs": wavs}
    with open(os.path.join(out_dir, "samples.json"), "w") as f:
        json.dump(summary, f, indent=2)
    log(f"sample {loaded.row}: {n * n_audio / SAMPLE_RATE:.2f} s of audio in {wall:.1f} s wall "
        f"({rate:.4f} s of audio per wall-clock second) -> {out_dir}")
    return summary


def clear_samples(out_dir: str) -> None:
    """Removes what `sample_stack` writes in `out_dir` (samples.json, codes_*.npy, audio/, level_*/),
    so that a sampling with fewer streams or levels leaves no stale wav beside its own."""
    import glob
    import shutil
    if os.path.exists(os.path.join(out_dir, "samples.json")):
        os.remove(os.path.join(out_dir, "samples.json"))  # first: an interrupted run leaves no summary
    for path in glob.glob(os.path.join(out_dir, "codes_*.npy")):
        os.remove(path)
    for path in [os.path.join(out_dir, "audio")] + glob.glob(os.path.join(out_dir, "level_*")):
        if os.path.isdir(path):
            shutil.rmtree(path)


def sample_wavs(folder: str, level: Optional[str] = None) -> list[str]:
    """The wavs of a `sample_stack` folder that its samples.json lists, in stream order: the stack's
    samples (audio/stream_NN.wav), or with `level` the renders of that code level; nothing else
    that lies in those folders. A samples.json without a wav list (an older one) lists
    `streams` files named stream_NN.wav in audio/ (or in the level's render folder); a folder
    without samples.json: its sorted *.wav files (the folder says nothing more).

    Raises:
      StackError: samples.json lists a wav that does not exist, or has no such level.
    """
    import glob
    path = os.path.join(folder, "samples.json")
    if not os.path.exists(path):
        sub = "audio" if level is None else f"level_{level}"
        return sorted(glob.glob(os.path.join(folder, sub, "*.wav")))
    with open(path) as f:
        info = json.load(f)
    key = "audio" if level is None else level
    listed = (info.get("wavs") or {}).get(key)
    if listed is None:
        if level is None:
            sub = "audio"
        elif level in (info.get("level_renders") or {}):
            sub = info["level_renders"][level].get("folder", f"level_{level}")
        else:
            raise StackError(f"{path}: no rendered level {level!r}")
        listed = [f"{sub}/stream_{i:02d}.wav" for i in range(int(info.get("streams", 0)))]
    wavs = [os.path.join(folder, *rel.split("/")) for rel in listed]
    missing = [w for w in wavs if not os.path.isfile(w)]
    if missing:
        raise StackError(f"{path} lists {missing[0]}, which does not exist")
    return wavs


def _above(roles: list[str], role: str) -> str:
    return roles[roles.index(role) + 1]


def markdown_table(scale: str = "paper") -> str:
    """Table 3's rows with their levels and receptive fields (ours against the paper's)."""
    lines = [f"Table 3 stacks at scale {scale!r}: receptive field of the prior in audio time (16 kHz)", "",
             "| # | model | levels | level sources | RF (ours, ms) | RF (paper, ms) |", "|---|---|---|---|---|---|"]
    for r in receptive_field_table(scale):
        st = stack(r["row"], scale)
        sources = "; ".join(f"{lv.role}: {lv.source}" for lv in st.levels)
        lines.append(f"| {r['row']} | {r['model']} | {r['levels']} | {sources} | {r['rf_ms']:g} | {r['paper_rf_ms']} |")
    return "\n".join(lines)




if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description="Table 3's stacks, their levels and receptive fields; with "
                                                 "--train, train a stack's levels and write its stack_ROW.json")
    parser.add_argument("--scale", choices=configs.SCALES, default="paper")
    parser.add_argument("--train", choices=sorted(PAPER_TABLE3), help="the stack whose levels to train")
    parser.add_argument("--data", help="with --train: the prepared audio folder")
    parser.add_argument("--root", help="with --train: the folder of the levels' runs and code corpora")
    parser.add_argument("--steps", type=int, help="with --train: steps per level (default: the scale's)")
    args = parser.parse_args()
    if args.train:
        if not (args.data and args.root):
            parser.error("--train needs --data and --root")
        train_stack(args.train, args.scale, args.data, args.root, args.steps)
    else:
        print(markdown_table(args.scale))


__all__ = ["PAPER_TABLE3", "Level", "Stack", "stack", "prior_experiment", "receptive_field_table", "StackError",
           "read_runs", "read_corpora", "load_stack", "LoadedStack", "sample_stack", "level_seeds", "train_stack",
           "markdown_table", "generation_flops", "sample_wavs", "clear_samples"]
