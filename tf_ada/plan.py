"""What a training run will cost, without training: `tf-ada train --dry-run`, `tf-ada table1 --dry-run`.

For an `Experiment`: parameters (counted from the built model), receptive fields, forward FLOPs
per timestep (`flops_per_timestep()` of the config), a memory estimate, and an estimated time
from the rates that `python -m tf_ada.bench train` measured on this machine (JSON under
runs/bench/). Evaluation time is not included.

Memory estimate (training, float32): weights x 5 (weights, gradients, Adam's two moments, the
Polyak average) plus the activations kept for the backward pass, counted per timestep from each
WaveNet stack's sizes (`activation_floats_per_timestep`). It ignores XLA's fusion and
TensorFlow's allocator and runtime (about 0.7 GB of CPU memory), so read it as an order of
magnitude: the paper local model at 8 x 8192 is estimated at 8.6 GiB against a measured peak RSS
of 6.9 GB with XLA (BENCHMARKS.md). It is for the whole batch on one device; with several
replicas each holds the weights and its share of the activations.
"""
from __future__ import annotations

import glob
import json
import os
from typing import Optional

from tf_ada.configs import ADAConfig, Experiment, WaveNetConfig, config_to_dict

BENCH_DIR = os.path.join("runs", "bench")
BYTES_PER_FLOAT = 4
STATE_COPIES = 5  # weights, gradients, Adam m and v, Polyak average
BACKWARD_FACTOR = 3  # forward + backward ~ 3 x the forward FLOPs (as bench.py counts)


def activation_floats_per_timestep(config: WaveNetConfig) -> int:
    """Floats one WaveNet stack keeps per timestep for the backward pass: per block the k tap
    products (k x 2I), their sum (2I), the gate's tanh and sigmoid halves (2I), the gated output
    (I), the new residual stream (R) and, when conditioned, the bias repeated to this rate (2I);
    the input embedding (R), the skip products of all blocks (L x I), the head (3 x S) and the
    logits with their softmax (2 x output)."""
    c = config
    g, i, r, s = c.gate_channels, c.inner_channels, c.residual_channels, c.skip_channels
    per_block = c.filter_length * g + 2 * g + i + r + (g if c.conditioning else 0)
    return c.n_layers * (per_block + i) + r + 3 * s + 2 * c.output_channels


def training_activation_floats(model, timesteps: int) -> int:
    """Floats of activations kept for one training step over `timesteps` inputs (batch x length)."""
    if isinstance(model, WaveNetConfig):
        return timesteps * activation_floats_per_timestep(model)
    codes = timesteps // model.hop
    quantizer = codes * (model.n_codes + 2 * model.code_channels)  # distances, queries, quantised
    return (timesteps * (activation_floats_per_timestep(model.encoder)
                         + activation_floats_per_timestep(model.local))
            + codes * activation_floats_per_timestep(model.modulator) + quantizer)


def count_parameters(model_config) -> dict:
    """{"trainable": n, "total": n} of the built model (all variables, incl. a codebook and its
    K-means statistics)."""
    from tf_ada.train import build_model
    model = build_model(model_config)
    count = lambda vs: int(sum(int(v.shape.num_elements()) for v in vs))
    return {"trainable": count(model.trainable_variables), "total": count(model.variables)}


def receptive_fields(model_config) -> dict:
    """Receptive fields in timesteps of the model's input (audio samples, or codes for priors)."""
    if isinstance(model_config, ADAConfig):
        return {"local model (past samples)": model_config.local.receptive_field,
                "encoder (samples each side)": model_config.encoder_receptive_field,
                "encoder (codes each side)": model_config.encoder_receptive_field_codes,
                "modulator (samples each side)": model_config.modulator_receptive_field_samples}
    return {"model (past timesteps)": model_config.receptive_field}


def _bench_files(bench_dir: str) -> list[tuple[str, dict]]:
    out = []
    for path in sorted(glob.glob(os.path.join(bench_dir, "*.json"))):
        try:
            with open(path) as f:
                payload = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(payload, dict) and payload.get("bench") == "train" and payload.get("results"):
            out.append((path, payload))
    return out


def training_rate(model_config, jit: bool, bench_dir: str = BENCH_DIR, precision: str = "float32") -> Optional[dict]:
    """The training rate in timesteps/s for `model_config` from `bench_dir`'s training benchmarks:
    a benchmark of the same model (preferring the same XLA setting and precision) gives its rate;
    otherwise the fastest measured GFLOP/s of another model is scaled by this model's FLOPs.
    None when there is no training benchmark. Returns {"timesteps_per_s", "source", "how"}."""
    benches = _bench_files(bench_dir)
    if not benches:
        return None
    want = config_to_dict(model_config)
    same = [(p, b) for p, b in benches
            if {k: v for k, v in b.get("config", {}).items() if k != "receptive_field"} == want]
    if same:  # prefer the same XLA setting and precision
        same.sort(key=lambda pb: (pb[1]["results"][0].get("jit") != jit,
                                  pb[1]["results"][0].get("precision", "float32") != precision))
        path, payload = same[0]
        row = payload["results"][0]
        how = (f"measured for this model ({row['batch']} x {row['n_samples']}, "
               f"{'XLA' if row.get('jit') else 'no XLA'}, {row.get('precision', 'float32')})")
        return {"timesteps_per_s": float(row["timesteps_per_s"]), "source": path, "how": how}
    path, payload = max(benches, key=lambda pb: pb[1]["results"][0].get("gflop_per_s", 0.0))
    row = payload["results"][0]
    gflops = float(row["gflop_per_s"])
    rate = gflops * 1e9 / (BACKWARD_FACTOR * model_config.flops_per_timestep())
    return {"timesteps_per_s": rate, "source": path,
            "how": f"scaled from {row['model']}'s {gflops:,.1f} GFLOP/s (another model; FLOPs ratio)"}


def describe(experiment: Experiment, bench_dir: str = BENCH_DIR, steps: Optional[int] = None) -> dict:
    """Everything `format_plan` prints about training `experiment` to `steps` (default: its own)."""
    model, train = experiment.model, experiment.train
    steps = train.steps if steps is None else steps
    timesteps_per_step = train.batch_size * train.n_samples
    params = count_parameters(model)
    state_bytes = STATE_COPIES * BYTES_PER_FLOAT * params["total"]
    activation_bytes = BYTES_PER_FLOAT * training_activation_floats(model, timesteps_per_step)
    flops = model.flops_per_timestep()
    rate = training_rate(model, train.jit_compile, bench_dir, getattr(train, "precision", "float32"))
    seconds = None if rate is None else steps * timesteps_per_step / rate["timesteps_per_s"]
    kind = f"ADA ({model.quantizer}, hop {model.hop})" if isinstance(model, ADAConfig) else "WaveNet"
    return {"name": experiment.name, "paper_row": experiment.paper_row, "model": kind,
            "parameters": params, "receptive_fields": receptive_fields(model),
            "flops_per_timestep": flops, "steps": steps, "batch_size": train.batch_size,
            "n_samples": train.n_samples, "timesteps": steps * timesteps_per_step,
            "training_flops": BACKWARD_FACTOR * flops * steps * timesteps_per_step,
            "memory_bytes": {"weights_and_optimizer": state_bytes, "activations": activation_bytes,
                             "total": state_bytes + activation_bytes},
            "rate": rate, "seconds": seconds, "bench_dir": bench_dir}


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024.0


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def bench_command(experiment: Experiment) -> Optional[str]:
    """The benchmark that measures this experiment's training rate: a Table 1 row's model at the
    scale whose config it equals (None for other models: the estimate then scales FLOPs)."""
    from tf_ada import configs
    row = experiment.paper_row
    if row not in configs.TABLE1_ROWS:
        return None
    for scale in configs.SCALES:
        if configs.table1_row(row, scale).model == experiment.model:
            return f"tf-ada bench train --model ada-{row} --scale {scale}"
    return None


def format_plan(d: dict, experiment: Optional[Experiment] = None) -> str:
    """The dry run's report of `describe(...)`, one fact per line."""
    row = f" (Table {d['paper_row'][0]} row {d['paper_row']})" if d["paper_row"] else ""
    p, m = d["parameters"], d["memory_bytes"]
    lines = [f"{d['name']}{row}: {d['model']}",
             f"  parameters           {p['trainable']:,} trainable, {p['total']:,} in all"]
    for what, value in d["receptive_fields"].items():
        lines.append(f"  receptive field      {value:,g} {what}")
    lines += [f"  FLOPs per timestep   {d['flops_per_timestep'] / 1e6:,.2f} MFLOP forward "
              f"(x{BACKWARD_FACTOR} with the backward pass)",
              f"  training             {d['steps']:,} steps x {d['batch_size']} x {d['n_samples']:,} = "
              f"{d['timesteps']:,} timesteps, {d['training_flops'] / 1e15:,.3f} PFLOP",
              f"  memory (estimate)    {_bytes(m['total'])}: {_bytes(m['weights_and_optimizer'])} weights and "
              f"optimiser state, {_bytes(m['activations'])} activations per step"]
    if d["rate"] is None:
        command = bench_command(experiment) if experiment is not None else None
        hint = f"; run `{command}` first" if command else "; run `tf-ada bench train` first"
        lines.append(f"  time (estimate)      unavailable: no training benchmark in {d['bench_dir']}{hint}")
    else:
        r = d["rate"]
        lines.append(f"  time (estimate)      {_duration(d['seconds'])} of training at {r['timesteps_per_s']:,.0f} "
                     f"timesteps/s, {r['how']}; {r['source']}; evaluations not included")
    return "\n".join(lines)
