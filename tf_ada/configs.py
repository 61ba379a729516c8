"""Frozen dataclass configs and the paper's models as named factories at three scales.

Scales:
  "paper": appendix A's exact sizes (for GPUs).
  "cpu":   the same structure (dilation pattern, filter lengths, gating, causality) with fewer
           repeats and channels, so a model trains to a useful NLL in tens of minutes on 2 cores.
  "tiny":  the same structure at toy size, for tests (seconds).

Derived numbers (dilations, receptive fields, FLOPs) are properties computed from the fields,
never typed in. Values the paper does not give are fields with our default, marked "our choice".
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import typing
from typing import Optional, Union

from tf_ada import ops, rows

SCALES = ("tiny", "cpu", "paper")
INPUT_KINDS = ("one_hot", "continuous", "vector")


@dataclasses.dataclass(frozen=True)
class WaveNetConfig:
    """A WaveNet stack (van den Oord et al. 2016a), as used for every network of the paper (sec. 3.3).

    Attributes:
      n_stages: dilation stages per repeat; dilations are 1, 2, ..., 2**(n_stages - 1).
      n_repeats: repeats of the dilation pattern (blocks = n_stages * n_repeats).
      filter_length: taps of each dilated convolution (2 for the local model, 3 elsewhere).
      residual_channels: "residual block size" (app. A): width of the residual stream.
      inner_channels: "inner block size" (app. A): outputs of the gate; the dilated convolution
        produces 2 * inner_channels (tanh half and sigmoid half).
      skip_channels: width of the skip connections and the output head. Not given in the paper;
        our choice: equal to residual_channels.
      causal: causal (autoregressive models) or centred (encoder, modulator) convolutions.
      input_kind: "one_hot" (a learned embedding of the n_input_classes symbols, i.e. a 1x1
        convolution of one-hot vectors), "continuous" (the mu-law value decoded to a scalar in
        [-1, 1], Table 1's "continuous" input) or "vector" (float vectors of n_input_classes
        channels, linearly projected: the modulator's input, the quantised queries).
      n_input_classes: input alphabet size (256 for mu-law audio, K for codes; the vector size
        for "vector" input).
      output_channels: outputs per timestep (256 logits for audio models; query dimension or
        bias channels for encoders and modulators).
      conditioning: whether every dilated convolution takes a time-dependent bias input
        (the local model of an ADA, conditioned by the modulator; sec. 3.3).
    """
    n_stages: int
    n_repeats: int
    filter_length: int
    residual_channels: int
    inner_channels: int
    skip_channels: int
    causal: bool = True
    input_kind: str = "one_hot"
    n_input_classes: int = 256
    output_channels: int = 256
    conditioning: bool = False
    name: str = "wavenet"

    def __post_init__(self):
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        if self.filter_length < 2:
            raise ValueError(f"filter_length must be >= 2, got {self.filter_length}")
        if not self.causal and self.filter_length % 2 == 0:
            raise ValueError(f"non-causal stacks need an odd filter_length, got {self.filter_length}")

    @property
    def dilations(self) -> list[int]:
        return ops.dilations(self.n_stages, self.n_repeats)

    @property
    def n_layers(self) -> int:
        return self.n_stages * self.n_repeats

    @property
    def gate_channels(self) -> int:
        """Outputs of each dilated convolution (and width of each conditioning bias): 2 x inner."""
        return 2 * self.inner_channels

    @property
    def conditioning_channels(self) -> int:
        """Width of the concatenated per-layer biases a conditioned stack takes."""
        return self.n_layers * self.gate_channels

    @property
    def half_receptive_field(self) -> int:
        """Steps seen to each side by a non-causal stack (0 to the future for a causal one)."""
        if self.causal:
            return 0
        return ops.noncausal_half_receptive_field(self.filter_length, self.dilations)

    @property
    def receptive_field(self) -> int:
        """Timesteps the output at t depends on: past inputs for a causal WaveNet (the model
        predicts x[t] from x[t - receptive_field : t]); 2 * half + 1 for a centred stack."""
        if self.causal:
            return ops.causal_receptive_field(self.filter_length, self.dilations)
        return 2 * self.half_receptive_field + 1

    def flops_per_timestep(self) -> int:
        """Multiply-adds x 2 of one forward timestep (matrix products only; elementwise ops excluded)."""
        r, g, i, s = self.residual_channels, self.gate_channels, self.inner_channels, self.skip_channels
        per_block = self.filter_length * r * g  # dilated conv
        residual = (self.n_layers - 1) * i * r  # residual 1x1 (none after the last block)
        skip = self.n_layers * i * s
        head = s * s + s * self.output_channels
        inp = {"one_hot": 0, "continuous": r, "vector": self.n_input_classes * r}[self.input_kind]
        return 2 * (self.n_layers * per_block + residual + skip + head + inp)


def _check_scale(scale: str) -> None:
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")


def _pick(scale: str, tiny, cpu, paper):
    _check_scale(scale)
    return {"tiny": tiny, "cpu": cpu, "paper": paper}[scale]


# Sizes per scale. cpu: same dilation pattern and filter length; fewer repeats and channels,
# chosen so one model trains through ~10^7 timesteps in tens of minutes on 2 cores (see README).

def local_model(scale: str = "paper", input_kind: str = "one_hot", conditioning: bool = True) -> WaveNetConfig:
    """ADA local model (app. A): 32 blocks = 4 x dilations 1..128, causal, k = 2, 128 -> 64 gated,
    residual 384; receptive field 1021 ("1024 timesteps or 64 ms")."""
    n_repeats, r, i = _pick(scale, (1, 16, 8), (2, 64, 32), (4, 384, 64))
    return WaveNetConfig(n_stages=_pick(scale, 4, 8, 8), n_repeats=n_repeats, filter_length=2,
                         residual_channels=r, inner_channels=i, skip_channels=r, causal=True,
                         input_kind=input_kind, conditioning=conditioning, name=f"local_model_{scale}")


def _noncausal(scale: str, name: str, input_kind: str, n_input_classes: int, output_channels: int) -> WaveNetConfig:
    n_repeats, c = _pick(scale, (1, 16), (1, 64), (2, 256))
    return WaveNetConfig(n_stages=_pick(scale, 4, 8, 8), n_repeats=n_repeats, filter_length=3,
                         residual_channels=c, inner_channels=c, skip_channels=c, causal=False,
                         input_kind=input_kind, n_input_classes=n_input_classes,
                         output_channels=output_channels, name=f"{name}_{scale}")


def encoder(scale: str = "paper", input_kind: str = "continuous", query_channels: int = 64) -> WaveNetConfig:
    """ADA encoder (app. A): 16 blocks = 2 x dilations 1..128, non-causal, k = 3, inner = residual
    = 256; 510 ("512") steps to each side at the audio rate. `query_channels` (D) is not given in
    the paper (our choice: 64 for VQ-VAE; AMAE sets it to K)."""
    return _noncausal(scale, "encoder", input_kind, 256, query_channels)


def modulator(scale: str = "paper", code_channels: int = 64, local: Optional[WaveNetConfig] = None) -> WaveNetConfig:
    """ADA modulator (app. A): same stack as the encoder, at the code rate. Input: the quantised
    queries (D-dim codebook vectors for VQ-VAE, K-dim one-hot vectors for AMAE), linearly
    embedded; output: one bias per gate channel of every dilated convolution of `local`."""
    local = local or local_model(scale)
    return _noncausal(scale, "modulator", "vector", code_channels, local.conditioning_channels)


def _unconditional(scale, name, n_stages, n_repeats, channels, input_kind, n_input_classes):
    return WaveNetConfig(n_stages=n_stages, n_repeats=n_repeats, filter_length=3, residual_channels=channels,
                         inner_channels=channels, skip_channels=channels, causal=True, input_kind=input_kind,
                         n_input_classes=n_input_classes, output_channels=n_input_classes,
                         name=f"{name}_{scale}")


def large_wavenet(scale: str = "paper", input_kind: str = "continuous", n_classes: int = 256) -> WaveNetConfig:
    """'Large' WaveNet (app. A): 30 blocks = 3 x dilations 1..512, k = 3, inner = residual = 512;
    receptive field 6139 ("6144", 384 ms). Input continuous for row 1.1; one-hot over codes as a prior."""
    n_stages, n_repeats, c = _pick(scale, (4, 1, 16), (10, 1, 64), (10, 3, 512))
    return _unconditional(scale, "large_wavenet", n_stages, n_repeats, c, input_kind, n_classes)


def very_large_wavenet(scale: str = "paper", input_kind: str = "continuous", n_classes: int = 256) -> WaveNetConfig:
    """'Very large' WaveNet (app. A, row 3.2): 60 blocks = 6 x dilations 1..512, k = 3, 512 wide;
    receptive field 12277 ("12288", 768 ms)."""
    n_stages, n_repeats, c = _pick(scale, (4, 2, 16), (10, 2, 64), (10, 6, 512))
    return _unconditional(scale, "very_large_wavenet", n_stages, n_repeats, c, input_kind, n_classes)


def thin_wavenet(scale: str = "paper", input_kind: str = "continuous", n_classes: int = 256) -> WaveNetConfig:
    """Thin WaveNet with a large receptive field (app. A, row 3.3): 39 blocks = 3 x dilations
    1..4096, k = 3, 192 wide; receptive field 49147 ("49152", 3072 ms)."""
    n_stages, n_repeats, c = _pick(scale, (5, 1, 8), (13, 1, 32), (13, 3, 192))
    return _unconditional(scale, "thin_wavenet", n_stages, n_repeats, c, input_kind, n_classes)


WAVENETS = {"local": local_model, "large": large_wavenet, "very_large": very_large_wavenet, "thin": thin_wavenet}
QUANTIZERS = ("vq", "amae", "amae_softmax")


@dataclasses.dataclass(frozen=True)
class ADAConfig:
    """An autoregressive discrete autoencoder (sec. 3, app. A).

    Attributes:
      encoder, modulator, local: the three WaveNets.
      quantizer: "vq" (VQ-VAE, Eq. 1), "amae" (ReLU + divisive normalisation, Eq. 2) or
        "amae_softmax" (softmax + entropy loss; row 1.6).
      hop: h, audio samples per code (8 or 64).
      n_codes: K (256: "8-bit codes").
      code_channels: D, the query size (VQ-VAE: our choice 64; AMAE: K).
      beta: VQ-VAE commitment scale (tuned per architecture in the paper; value not given: our 0.25).
      gamma: VQ-VAE K-means EMA decay (value not given: our 0.99).
      nu: AMAE diversity scale (value lost: our 0.1 with the normalisation of `ArgmaxQuantizer`).
      data_init, restart_dead_codes: codebook-collapse remedies (off for the paper rows).
      query_norm: VQ-VAE query normalisation before the nearest-code search: "none" (the paper
        as written), "l2" (unit-length queries and codes), "standardize" (per-channel batch
        normalisation without scale and offset), "whiten" (decorrelated as well) or
        "whiten_shrink" (whitened by each batch's covariance shrunk towards its diagonal; the VQ
        rows' choice, `VQ_REMEDIES`); see `VectorQuantizerEMA`.
    """
    encoder: WaveNetConfig
    modulator: WaveNetConfig
    local: WaveNetConfig
    quantizer: str = "vq"
    hop: int = 8
    n_codes: int = 256
    code_channels: int = 64
    beta: float = 0.25
    gamma: float = 0.99
    nu: float = 0.1
    data_init: bool = False
    restart_dead_codes: bool = False
    query_norm: str = "none"
    name: str = "ada"

    def __post_init__(self):
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {QUANTIZERS}, got {self.quantizer!r}")
        if self.quantizer != "vq" and (self.query_norm != "none" or self.data_init or self.restart_dead_codes):
            raise ValueError("query_norm, data_init and restart_dead_codes apply to the VQ-VAE quantiser only")
        if self.quantizer != "vq" and self.code_channels != self.n_codes:
            raise ValueError("AMAE queries have one channel per code: code_channels must equal n_codes")
        if self.encoder.output_channels != self.code_channels or self.modulator.n_input_classes != self.code_channels:
            raise ValueError("encoder output and modulator input must have code_channels channels")
        if self.modulator.output_channels != self.local.conditioning_channels or not self.local.conditioning:
            raise ValueError("the modulator must produce one bias per gate channel of the conditioned local model")

    @property
    def encoder_receptive_field(self) -> int:
        """Audio samples the encoder sees to each side of a timestep (510 at paper scale)."""
        return self.encoder.half_receptive_field

    @property
    def encoder_receptive_field_codes(self) -> float:
        """The encoder's one-sided receptive field in code steps (512 / 8 = 64 in sec. 4.2)."""
        return self.encoder.half_receptive_field / self.hop

    def flops_per_timestep(self) -> int:
        """Forward FLOPs per audio sample: encoder and local model at the audio rate, modulator
        at the code rate (1 / hop), plus the codebook distances for VQ-VAE."""
        vq = 2 * self.n_codes * self.code_channels / self.hop if self.quantizer == "vq" else 0
        return int(self.encoder.flops_per_timestep() + self.local.flops_per_timestep()
                   + self.modulator.flops_per_timestep() / self.hop + vq)

    @property
    def modulator_receptive_field_samples(self) -> int:
        """Audio samples the modulator's output at one code depends on, to each side."""
        return self.modulator.half_receptive_field * self.hop


def ada(scale: str, quantizer: str = "vq", input_kind: str = "continuous", hop: int = 8, name: str = "ada",
        code_channels: Optional[int] = None, **overrides) -> ADAConfig:
    """An ADA of appendix A at `scale`: encoder and modulator 2 x 1..128 (k = 3, non-causal),
    local model 4 x 1..128 (k = 2, causal), K = 256 codes. `input_kind` applies to the encoder
    and the local model (Table 1: "both on the encoder and decoder side").

    VQ-VAEs get `VQ_REMEDIES` (whitened queries, each batch's covariance shrunk towards its
    diagonal by D / (n + D), a codebook initialised from the first batch's
    queries, K-means decay gamma = 0.9; our choice against the early collapse, issue 9) unless
    `overrides` say otherwise; `VQ_AS_WRITTEN` gives the paper's quantiser exactly as written."""
    n_codes = 256
    d = (code_channels or VQ_CODE_CHANNELS) if quantizer == "vq" else n_codes
    if quantizer == "vq":
        overrides = {**VQ_REMEDIES, **overrides}
    local = local_model(scale, input_kind=input_kind, conditioning=True)
    return ADAConfig(encoder=encoder(scale, input_kind=input_kind, query_channels=d),
                     modulator=modulator(scale, code_channels=d, local=local), local=local,
                     quantizer=quantizer, hop=hop, n_codes=n_codes, code_channels=d, name=name, **overrides)


# The VQ-VAE rows' quantiser settings (issue 9, docs/codebook_cpu.md). As written in the paper, the
# fresh encoder's queries sit about 3x inside the codebook's scale and drift in offset and scale
# faster than the K-means codebook follows: 256 codes -> 3-8 in use within 20 steps.
VQ_AS_WRITTEN = {"query_norm": "none", "data_init": False, "gamma": 0.99}
VQ_CODE_CHANNELS = 64  # D, the VQ-VAE query size (not given in the paper)
# gamma 0.9 (against our earlier 0.99; the paper gives no value): used codes track their queries
# within about 10 steps. Whitened queries (against per-channel standardisation): standardised
# queries of cpu #1.2 collapse onto 1-2 directions (participation ratio 1.45 at step 600), so the
# codes tile a line; whitened, three runs kept 148-173 held-out codes at 600 steps against 79-132
# standardised, at the same NLL (docs/codebook_cpu.md section 7). Shrunk whitening ("whiten_shrink":
# each batch's covariance shrunk towards its diagonal by D / (n + D)): fully whitened, hop-64 row 1.7
# (256 queries of 64 channels per cpu batch) kept 41 held-out codes (perplexity 13.4), against 80
# standardised and 74 with the shrinkage (perplexity 31.2, NLL 2.482 against 2.521 whitened); at
# hop 8 (2,048 queries) the shrinkage is 0.03 (docs/codebook_cpu.md section 8)
VQ_REMEDIES = {"query_norm": "whiten_shrink", "data_init": True, "gamma": 0.9}

# Hyperparameters a model takes while it trains (`model.set_hyperparameters`, without recompiling the
# step): a VQ-VAE's beta and gamma (Eq. 1), which population based training perturbs (Table 2).
LIVE_HYPERPARAMETERS = ("beta", "gamma")


def live_hyperparameters(config) -> dict:
    """{name: value} of `LIVE_HYPERPARAMETERS` that `config` (a model config) trains with live:
    beta and gamma of a VQ-VAE; nothing for an AMAE or a WaveNet."""
    if getattr(config, "quantizer", None) != "vq":
        return {}
    return {k: getattr(config, k) for k in LIVE_HYPERPARAMETERS}


_CLASSES = {"WaveNetConfig": WaveNetConfig, "ADAConfig": ADAConfig}


def config_to_dict(config) -> dict:
    """A config (nested dataclasses) -> JSON-able dict with "class" tags."""
    out = {"class": type(config).__name__}
    for f in dataclasses.fields(config):
        v = getattr(config, f.name)
        out[f.name] = config_to_dict(v) if dataclasses.is_dataclass(v) else v
    return out


def config_from_dict(d: dict):
    """Inverse of `config_to_dict`."""
    d = dict(d)
    cls = _CLASSES[d.pop("class", "WaveNetConfig")]
    return cls(**{k: config_from_dict(v) if isinstance(v, dict) and "class" in v else v for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Attributes:
      batch_size: global batch (split over replicas).
      n_samples: excerpt length in timesteps (audio samples, or codes for models on codes).
      learning_rate: Adam step size (the paper's value is lost).
      warmup_steps: the step size rises linearly from learning_rate / warmup_steps to
        learning_rate over the first warmup_steps steps (0: none). Not in the paper; see
        `tf_ada.ops.warmup_learning_rate`.
      steps: total optimiser steps.
      polyak_decay: decay of the exponential moving average of the weights used for evaluation.
      log_every, eval_every, checkpoint_every: intervals in steps.
      eval_batches: evaluation budget: as many timesteps per split as this many training batches,
        in 1-s windows (None: `evaluation.DEFAULT_MAX_SEQUENCES` windows periodically and the
        whole held-out split at the last step; see `Trainer.eval_budget`).
      seed: data order and crops.
      jit_compile: XLA-compile the whole training step (forward, backward, Adam, EMA and Polyak
        updates) when one replica trains (our choice; about 2x on the cpu-scale ADA on 2 cores,
        BENCHMARKS.md). Several replicas keep the plain graph step. Off for the tiny scale,
        whose few steps would spend longer compiling than training.
      precision: "float32" or "mixed_bfloat16" (`train.build_model`; our option, issue 12:
        bfloat16 matrix products where the processor has them, float32 weights, quantisers,
        softmax and NLL). Evaluation during training uses the same precision.
    """
    batch_size: int = 8
    n_samples: int = 8192
    learning_rate: float = 2e-4
    warmup_steps: int = 0
    steps: int = 500_000
    polyak_decay: float = 0.9999
    log_every: int = 100
    eval_every: int = 5000
    checkpoint_every: int = 1000
    eval_batches: Optional[int] = None
    seed: int = 0
    jit_compile: bool = True
    precision: str = "float32"


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    model: Union[WaveNetConfig, ADAConfig]
    train: TrainConfig
    paper_row: Optional[str] = None

    def to_dict(self) -> dict:
        return {"name": self.name, "model": config_to_dict(self.model), "train": dataclasses.asdict(self.train),
                "paper_row": self.paper_row}

    @classmethod
    def from_dict(cls, d: dict) -> "Experiment":
        return cls(name=d["name"], model=config_from_dict(d["model"]), train=TrainConfig(**d["train"]),
                   paper_row=d.get("paper_row"))

    @classmethod
    def load(cls, out_dir: str) -> "Experiment":
        path = os.path.join(out_dir, "experiment.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{out_dir}: no experiment.json; not a tf-ada training folder")
        with open(path) as f:
            return cls.from_dict(json.load(f))


# --- Table 1 (sec. 4.1): ADAs on audio --------------------------------------------------------------

# The paper's rows are defined once, in tf_ada/rows.py (description, quantizer, input kind, hop,
# decoder RF and the paper's numbers); the functions below build their experiments.
TABLE1_ROWS = rows.TABLE1


def table1_train(scale: str, unconditional: bool = False, steps: Optional[int] = None) -> TrainConfig:
    """Training settings per scale. paper: app. A (500k steps; 200k for the unconditional WaveNet);
    batch, excerpt length and learning rate are not given (ours: 32 x 8192, 2e-4). cpu: sized so
    each row trains in about 15 minutes on 2 cores. tiny: a few steps for smoke tests.
    Learning-rate warm-up (our choice, not in the paper; issue 9): linear over the first 100 steps
    at cpu scale and 5,000 at paper scale, for every row alike; `steps` shorter than the default
    cap it at a sixth of the run."""
    base = _pick(scale,
                 TrainConfig(batch_size=2, n_samples=256, learning_rate=1e-3, steps=2, polyak_decay=0.9,
                             log_every=1, eval_every=2, checkpoint_every=1, eval_batches=2, jit_compile=False),
                 TrainConfig(batch_size=8, n_samples=2048, learning_rate=1e-3, steps=600, polyak_decay=0.99,
                             log_every=50, eval_every=600, checkpoint_every=100, eval_batches=40, warmup_steps=100),
                 TrainConfig(batch_size=32, n_samples=8192, learning_rate=2e-4, warmup_steps=5000,
                             steps=200_000 if unconditional else 500_000, polyak_decay=0.9999,
                             log_every=100, eval_every=5000, checkpoint_every=1000))
    if steps is None:
        return base
    # a shortened run keeps the warm-up's share of the run (cpu: 100 of 600 steps)
    return dataclasses.replace(base, steps=steps, warmup_steps=min(base.warmup_steps, steps // 6))


def table1_row(row: str, scale: str = "paper", steps: Optional[int] = None) -> Experiment:
    """The experiment of Table 1's row `row` ("1.1" ... "1.7") at `scale`."""
    spec = rows.lookup(TABLE1_ROWS, row, "Table 1")
    name = f"table1_{row.replace('.', '_')}_{scale}"
    if spec.quantizer is None:
        model = large_wavenet(scale, input_kind=spec.input_kind)
    else:
        model = ada(scale, quantizer=spec.quantizer, input_kind=spec.input_kind, hop=spec.hop, name=name)
    return Experiment(name=name, model=model, train=table1_train(scale, spec.quantizer is None, steps),
                      paper_row=row)


# --- Table 2 (sec. 4.3): second-level ADAs on the codes of #1.2 -------------------------------------

TABLE2_ROWS = rows.TABLE2
TABLE2_VARIANTS = rows.TABLE2_VARIANTS
SECOND_LEVEL_HOP = rows.SECOND_LEVEL_HOP  # Table 2: hop 8 over codes (64 audio samples per code)


def second_level_local(scale: str, decoder_rf: int) -> WaveNetConfig:
    """The local model (decoder) of a second-level ADA with a receptive field of `decoder_rf` code
    steps (Table 2: 32, 64, 128, 256). The paper gives only the receptive field; our choice: one
    repeat of dilations 1 .. decoder_rf / 2 with filter length 2 (RF = 1 + sum of dilations =
    decoder_rf exactly, where app. A's first-level 4 x 1..128 gives 1021 for "1024"), at the widths
    of the first-level local model of `scale`, on one-hot code input (256 classes, no ordinal relation)."""
    n_stages = int(round(math.log2(decoder_rf))) if decoder_rf > 1 else 0
    if n_stages < 1 or 2 ** n_stages != decoder_rf:
        raise ValueError(f"decoder_rf must be a power of two >= 2, got {decoder_rf}")
    base = local_model(scale, input_kind="one_hot", conditioning=True)
    return dataclasses.replace(base, n_stages=n_stages, n_repeats=1, name=f"local_model_rf{decoder_rf}_{scale}")


def second_level_ada(scale: str, quantizer: str, decoder_rf: int, name: str = "ada") -> ADAConfig:
    """A second-level ADA (sec. 4.3): `ada(scale, quantizer, "one_hot", hop 8)` on first-level codes
    (one-hot input to the encoder and the local model, a 256-way softmax over codes), with the
    local model of `second_level_local` and a modulator producing its biases."""
    base = ada(scale, quantizer=quantizer, input_kind="one_hot", hop=SECOND_LEVEL_HOP, name=name)
    local = second_level_local(scale, decoder_rf)
    modulator = dataclasses.replace(base.modulator, output_channels=local.conditioning_channels)
    return dataclasses.replace(base, local=local, modulator=modulator)


def decoder_receptive_field(model) -> int:
    """Code steps a second-level model's prediction of one code depends on, in the past: the local
    model's receptive field for an ADA, the WaveNet's own for row 2.1."""
    return (model.local if isinstance(model, ADAConfig) else model).receptive_field


def table2_row(row: str, scale: str = "paper", steps: Optional[int] = None) -> Experiment:
    """The experiment of Table 2's row `row` ("2.1" ... "2.6", or a `TABLE2_VARIANTS` run) at `scale`.
    Training settings are Table 1's at the same scale (`table1_train`; excerpts in code steps), the
    paper's for 2.1 those of its unconditional WaveNets (200,000 steps)."""
    spec = rows.lookup({**TABLE2_ROWS, **TABLE2_VARIANTS}, row, "Table 2")
    name = f"table2_{row.replace('.', '_').replace('-', '_')}_{scale}"
    if spec.quantizer is None:
        model = large_wavenet(scale, input_kind=spec.input_kind, n_classes=256)
    else:
        model = second_level_ada(scale, spec.quantizer, spec.decoder_rf, name=name)
    return Experiment(name=name, model=model, train=table1_train(scale, spec.quantizer is None, steps),
                      paper_row=row)


# --- Overrides and validation (issue 14): dotted keys into an experiment -----------------------------

class ConfigError(ValueError):
    """A key or value that does not fit a config; the message names the dotted key (`train.batch_size`)."""


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _type_name(hint) -> str:
    if typing.get_origin(hint) is Union:
        return " or ".join("null" if a is type(None) else _type_name(a) for a in typing.get_args(hint))
    if dataclasses.is_dataclass(hint):
        return f"{'an' if hint.__name__[0] in 'AEIOU' else 'a'} {hint.__name__}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _checked(value, hint, key: str):
    """`value` if it has the type `hint` (an int for a float field becomes a float); else a ConfigError."""
    if typing.get_origin(hint) is Union:
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is not type(None):
                try:
                    return _checked(value, a, key)
                except ConfigError:
                    pass
    elif dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key} must be {_type_name(hint)}, got {value!r}")


def _from_text(text: str, hint, key: str):
    """A command-line value (`--set KEY=TEXT`) read as the field's type."""
    if typing.get_origin(hint) is Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if type(None) in typing.get_args(hint) and text.strip().lower() in ("null", "none"):
            return None
        hint = args[0] if len(args) == 1 else hint
    try:
        if hint is bool:
            return {"true": True, "false": False, "1": True, "0": False}[text.strip().lower()]
        if hint is int:
            return int(text)
        if hint is float:
            return float(text)
    except (KeyError, ValueError):
        raise ConfigError(f"{key} must be {_type_name(hint)}, got {text!r}") from None
    if dataclasses.is_dataclass(hint) or typing.get_origin(hint) is Union:
        raise ConfigError(f"{key} is a whole config ({_type_name(hint)}); set its fields, e.g. {key}.NAME=VALUE")
    return text


def _field_names(obj) -> list[str]:
    return [f.name for f in dataclasses.fields(obj)]


def _unknown(key: str, name: str, obj) -> ConfigError:
    where = f" under {key.rpartition('.')[0]}" if "." in key else ""
    return ConfigError(f"unknown key {key!r}: {type(obj).__name__}{where} has no field {name!r}; "
                       f"valid keys: {', '.join(_field_names(obj))}")


def _tree(changes: dict) -> dict:
    """{"a.b": v, "a.c": w} -> {"a": {"b": _Leaf(v), "c": _Leaf(w)}}; a key given both as a value
    and as the prefix of another key is an error."""
    tree: dict = {}
    for key, value in changes.items():
        if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"bad key {key!r}: expected dotted field names, e.g. train.batch_size")
        node, parts = tree, key.split(".")
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if isinstance(node, _Leaf):
                raise ConfigError(f"{'.'.join(parts[: i + 1])} and {key} are both given")
        if parts[-1] in node:
            raise ConfigError(f"{key} is given together with keys under it")
        node[parts[-1]] = _Leaf(value)
    return tree


class _Leaf:
    def __init__(self, value):
        self.value = value


def _apply(obj, tree: dict, prefix: str):
    hints, updates = _hints(type(obj)), {}
    for name, node in tree.items():
        key = f"{prefix}{name}"
        if name not in hints or name not in _field_names(obj):
            raise _unknown(key, name, obj)
        if isinstance(node, _Leaf):
            updates[name] = _checked(node.value, hints[name], key)
        else:
            current = getattr(obj, name)
            if not dataclasses.is_dataclass(current):
                raise ConfigError(f"{key} is {_type_name(hints[name])}, not a config with fields; "
                                  f"set it as {key}=VALUE")
            updates[name] = _apply(current, node, key + ".")
    try:
        return dataclasses.replace(obj, **updates)
    except (TypeError, ValueError) as e:  # a config's own check (__post_init__) refused the combination
        raise ConfigError(f"{', '.join(_leaf_keys(tree, prefix))}: {e}") from None


def _leaf_keys(tree: dict, prefix: str) -> list[str]:
    return [k for name, node in tree.items()
            for k in ([prefix + name] if isinstance(node, _Leaf) else _leaf_keys(node, f"{prefix}{name}."))]


def override(config, changes: dict):
    """A copy of a frozen config with fields replaced by dotted key, type-checked and validated.

        override(experiment, {"train.batch_size": 16, "model.beta": 0.5, "model.local.residual_channels": 32})

    Keys follow the dataclass fields: an `Experiment` has `name`, `model` (a `WaveNetConfig` or an
    `ADAConfig`, whose `encoder`, `modulator` and `local` are `WaveNetConfig`s), `train` (a
    `TrainConfig`) and `paper_row`. All changes are applied together, so coupled fields (a
    modulator's output and the local model's gates) can change in one call. PBT perturbs
    hyperparameters through this.

    Raises:
      ConfigError: naming the key: an unknown key (with the valid keys at that level), a value of
        the wrong type (an int for a float field is accepted), or a result the configs refuse
        (`validate`).
    """
    result = _apply(config, _tree(changes), "")
    validate(result)
    return result


def parse_assignment(text: str) -> tuple[str, str]:
    """`"train.batch_size=16"` -> `("train.batch_size", "16")` (the value is read by `override_text`)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{text!r} is not KEY=VALUE (e.g. train.batch_size=16)")
    return key.strip(), value


def field_hint(config, key: str):
    """The declared type of the field at dotted `key` (resolving which model class `config` holds)."""
    obj, parts = config, key.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(obj):
            raise ConfigError(f"{'.'.join(parts[:i])} is not a config with fields; {key} does not exist")
        if part not in _field_names(obj):
            raise _unknown(".".join(parts[: i + 1]), part, obj)
        if i == len(parts) - 1:
            return _hints(type(obj))[part]
        obj = getattr(obj, part)


def override_text(config, assignments: list[str]):
    """`override` from command-line `KEY=VALUE` strings, each value read as its field's type
    (`true`/`false`, `null` for optional fields, numbers, or the text itself for strings)."""
    changes = {}
    for text in assignments:
        key, value = parse_assignment(text)
        if key in changes:
            raise ConfigError(f"{key} is set twice")
        changes[key] = _from_text(value, field_hint(config, key), key)
    return override(config, changes)


def train_config_problems(cfg: TrainConfig) -> list[str]:
    """What makes a `TrainConfig` unusable, one message per field naming it (empty when fine)."""
    problems = []
    for name in ("batch_size", "n_samples", "steps", "log_every", "eval_every", "checkpoint_every"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"train.{name} must be a positive integer, got {value!r}")
    if cfg.eval_batches is not None and (isinstance(cfg.eval_batches, bool) or not isinstance(cfg.eval_batches, int)
                                         or cfg.eval_batches < 1):
        problems.append(f"train.eval_batches must be a positive integer or null, got {cfg.eval_batches!r}")
    if isinstance(cfg.warmup_steps, bool) or not isinstance(cfg.warmup_steps, int) or cfg.warmup_steps < 0:
        problems.append(f"train.warmup_steps must be an integer >= 0, got {cfg.warmup_steps!r}")
    if not (isinstance(cfg.learning_rate, (int, float)) and math.isfinite(cfg.learning_rate) and cfg.learning_rate > 0):
        problems.append(f"train.learning_rate must be a positive number, got {cfg.learning_rate!r}")
    if not (isinstance(cfg.polyak_decay, (int, float)) and 0.0 <= cfg.polyak_decay < 1.0):
        problems.append(f"train.polyak_decay must be in [0, 1), got {cfg.polyak_decay!r}")
    from tf_ada.train import PRECISIONS
    if cfg.precision not in PRECISIONS:
        problems.append(f"train.precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    return problems


def model_problems(cfg, prefix: str) -> list[str]:
    problems = []
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            problems += model_problems(value, key + ".")
        elif isinstance(value, int) and not isinstance(value, bool) and value < 1:
            problems.append(f"{key} must be a positive integer, got {value!r}")
    if isinstance(cfg, ADAConfig):
        for name, (low, high) in {"beta": (0.0, None), "nu": (0.0, None), "gamma": (0.0, 1.0)}.items():
            value = getattr(cfg, name)
            if value < low or (high is not None and value >= high):
                bound = f"in [{low:g}, {high:g})" if high is not None else f">= {low:g}"
                problems.append(f"{prefix}{name} must be {bound}, got {value!r}")
        from tf_ada.layers.quantizers import QUERY_NORMS
        if cfg.query_norm not in QUERY_NORMS:
            problems.append(f"{prefix}query_norm must be one of {', '.join(QUERY_NORMS)}, got {cfg.query_norm!r}")
    return problems


def check_types(config, prefix: str = "") -> None:
    """Raises a ConfigError naming the first field (dotted) whose value does not have its declared type."""
    hints = _hints(type(config))
    for f in dataclasses.fields(config):
        value, key = getattr(config, f.name), prefix + f.name
        _checked(value, hints[f.name], key)
        if dataclasses.is_dataclass(value):
            check_types(value, key + ".")


def validate(config) -> None:
    """Raises a ConfigError listing every problem (types, sizes, ranges, training settings) of an
    `Experiment` or a model config; nothing when it can be trained."""
    check_types(config)
    model, train, prefix = config, None, ""
    if isinstance(config, Experiment):
        model, train, prefix = config.model, config.train, "model."
    elif isinstance(config, TrainConfig):
        model, train = None, config
    problems = (model_problems(model, prefix) if model is not None else []) + \
        (train_config_problems(train) if train is not None else [])
    if problems:
        raise ConfigError("; ".join(problems))


def check_experiment_dict(d) -> None:
    """Raises a ConfigError naming the first unknown key (dotted, with the valid ones) of an
    experiment read from JSON, before it is built (`Experiment.from_dict`)."""
    if not isinstance(d, dict):
        raise ConfigError(f"expected a JSON object, got {type(d).__name__}")
    _check_keys(d, [f.name for f in dataclasses.fields(Experiment)], "", "Experiment")
    if isinstance(d.get("model"), dict):
        _check_config_dict(d["model"], "model.")
    if isinstance(d.get("train"), dict):
        _check_keys(d["train"], [f.name for f in dataclasses.fields(TrainConfig)], "train.", "TrainConfig")


def _check_config_dict(d: dict, prefix: str) -> None:
    name = d.get("class", "WaveNetConfig")
    if name not in _CLASSES:
        raise ConfigError(f"{prefix}class must be one of {', '.join(_CLASSES)}, got {name!r}")
    fields = [f.name for f in dataclasses.fields(_CLASSES[name])]
    _check_keys(d, fields + ["class"], prefix, name)
    for k, v in d.items():
        if isinstance(v, dict) and "class" in v:
            _check_config_dict(v, f"{prefix}{k}.")


def _check_keys(d: dict, valid: list, prefix: str, cls_name: str) -> None:
    for k in d:
        if k not in valid:
            raise ConfigError(f"unknown key {prefix}{k!s}: {cls_name} has no field {k!r}; "
                              f"valid keys: {', '.join(v for v in valid if v != 'class')}")


def flat_items(config, prefix: str = "") -> dict:
    """{dotted key: value} of every field `override` can set (`tf-ada config --keys`)."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flat_items(value, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = value
    return out
