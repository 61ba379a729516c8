"""Benchmarks: `python -m tf_ada.bench data|train|generate ... [--out FILE.json]`.

Each run prints a table and writes JSON. Speed targets live here, never in timed tests; every
JSON includes the machine's float32 matmul rate measured in the same run, so numbers from
different (noisy) machines can be compared as ratios.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import resource
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from tf_ada import fileio


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def matmul_gflops(n: int = 2048, repeats: int = 5, dtype=tf.float32) -> float:
    """Matmul rate of this machine (TensorFlow, n x n x n, float32 or bfloat16), best of `repeats`."""
    a = tf.cast(tf.random.normal([n, n]), dtype)
    b = tf.cast(tf.random.normal([n, n]), dtype)
    f = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b), tf.float32)))
    f(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(a, b).numpy()
        best = min(best, time.perf_counter() - t)
    return 2.0 * n ** 3 / best / 1e9


CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")


def cpu_info() -> dict:
    """The processor's model name and the flags that decide TensorFlow's fast paths (Linux)."""
    model, flags = platform.processor(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    return {"cpu_model": model, "cpu_flags": [f for f in CPU_FLAGS if f in flags]}


def machine_info() -> dict:
    """Where a benchmark ran: platform, processor flags, TensorFlow version, the code's git commit,
    thread settings (0 = TensorFlow's default, one thread per core) and the GPUs TensorFlow sees."""
    from tf_ada.runs import code_commit
    return {"platform": platform.platform(), "cpus": os.cpu_count(), **cpu_info(), "tensorflow": tf.__version__,
            "commit": code_commit(),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "gpus": [d.name for d in tf.config.list_logical_devices("GPU")]}


def print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in columns))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.3f}"
    return "" if v is None else str(v)


def write_json(path: str, payload: dict) -> None:
    if path:
        fileio.atomic_write_json(path, payload)
        print(f"wrote {path}")


# --- data ---------------------------------------------------------------------------------------

def _synthetic_shards(folder: str, minutes: float) -> str:
    from tf_ada.data import ShardWriter
    w = ShardWriter(folder, kind="audio", dtype="uint8", n_classes=256, sample_rate=16000)
    rng = np.random.default_rng(0)
    per_file = 16000 * 60
    for i in range(int(np.ceil(minutes))):
        w.add(f"synthetic{i}.wav", "train", rng.integers(0, 256, per_file), {})
    w.close()
    return folder


def bench_data(args) -> dict:
    from tf_ada.data import excerpt_dataset
    tmp = None
    data_dir = args.data
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory()
        data_dir = _synthetic_shards(tmp.name, minutes=20)
    ds = excerpt_dataset(data_dir, n_samples=args.n_samples, batch_size=args.batch_size, seed=0)
    it = iter(ds)
    for _ in range(5):  # warm-up: pipeline start, autotune
        next(it)
    n_batches = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        next(it).numpy()
        n_batches += 1
    elapsed = time.perf_counter() - start
    excerpts = n_batches * args.batch_size / elapsed
    row = {"data": args.data or "synthetic (20 min)", "batch": args.batch_size, "n_samples": args.n_samples,
           "excerpts_per_s": excerpts, "timesteps_per_s": excerpts * args.n_samples, "peak_rss_mib": peak_rss_mib()}
    print_table([row], list(row))
    if tmp:
        tmp.cleanup()
    return {"bench": "data", "machine": machine_info(), "results": [row]}


# --- models -------------------------------------------------------------------------------------

def bench_model_config(model: str, scale: str):
    """local | large | very_large | thin | ada-1.2 (any Table 1 row: ada-1.1 ... ada-1.7)."""
    from tf_ada import configs
    if model.startswith("ada-"):
        return configs.table1_row(model[4:], scale).model
    if model == "local":  # the local model alone (unconditioned), as in the peers' comparison
        return configs.local_model(scale, conditioning=False)
    if model not in configs.WAVENETS:
        raise SystemExit(f"unknown model {model!r}; choose from {sorted(configs.WAVENETS)}")
    return configs.WAVENETS[model](scale)


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up: tracing and compilation
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_train(args) -> dict:
    """Training throughput: forward + backward + Adam on batch x n_samples excerpts."""
    from tf_ada.train import build_model, model_scalars
    cfg = bench_model_config(args.model, args.scale)
    peak = matmul_gflops()
    peak_bf16 = matmul_gflops(dtype=tf.bfloat16)
    net = build_model(cfg, args.precision)
    opt = tf.keras.optimizers.Adam(1e-4)
    x = tf.constant(np.random.default_rng(0).integers(0, 256, (args.batch_size, args.n_samples)), tf.int32)
    opt.build(net.trainable_variables)

    @tf.function(jit_compile=args.jit)
    def step(x):
        with tf.GradientTape() as tape:
            loss = model_scalars(net, x, training=True)[0]["loss"]
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return loss

    seconds = _timed(lambda: step(x).numpy(), args.repeats)
    steps = args.batch_size * args.n_samples / seconds
    gflops = 3 * cfg.flops_per_timestep() * steps / 1e9  # backward ~ 2x forward
    row = {"model": args.model, "batch": args.batch_size, "n_samples": args.n_samples, "jit": args.jit,
           "precision": args.precision,
           "timesteps_per_s": steps, "gflop_per_s": gflops, "matmul_peak_gflop_per_s": peak,
           "share_of_peak": gflops / peak, "matmul_peak_bf16_gflop_per_s": peak_bf16,
           "mflop_per_timestep_fwd": cfg.flops_per_timestep() / 1e6,
           "peak_rss_mib": peak_rss_mib()}
    print_table([row], list(row))
    return {"bench": "train", "machine": machine_info(), "config": _cfg_dict(cfg), "results": [row]}


def bench_generate(args) -> dict:
    """Cached generation: samples/s at each batch size (default 1 and 16), n_samples per sample,
    for each ring-buffer kind asked for (`--in-place auto|yes|no|both`; auto: the default of
    `WaveNet.generate`, in place without XLA). The FLOP bound is the same-run matmul peak divided
    by the model's FLOPs per timestep."""
    from tf_ada.models import WaveNet
    cfg = bench_model_config(args.model, args.scale)
    peak = matmul_gflops()
    net = WaveNet(cfg)
    from tf_ada.models.wavenet import default_groups
    kinds = {"auto": [None], "yes": [True], "no": [False], "both": [False, True]}[args.in_place]
    rows = []
    for batch in args.batch_sizes:
        for in_place in kinds:
            jit = batch == 1
            used = (not jit) if in_place is None else in_place
            auto = default_groups(batch, net.dilated_product_macs) if used and not jit else 1
            if args.groups in ("auto", "one", "both"):
                groupings = {"auto": [auto], "one": [1], "both": sorted({1, auto})}[args.groups]
            else:  # explicit counts, those that divide the batch
                groupings = [g for g in (int(v) for v in args.groups.split(",")) if batch % g == 0]
            for groups in groupings:
                rss_before = peak_rss_mib()
                seconds = _timed(lambda: net.generate(args.n_samples, batch_size=batch, seed=0, verbose=False,
                                                      in_place=in_place, groups=groups).numpy(), args.repeats)
                rate = args.n_samples * batch / seconds
                bound = peak * 1e9 / cfg.flops_per_timestep()
                rows.append({"model": cfg.name, "batch": batch, "n_samples": args.n_samples, "jit": jit,
                             "in_place": used, "groups": groups, "samples_per_s": rate, "steps_per_s": rate / batch,
                             "gflop_per_s": cfg.flops_per_timestep() * rate / 1e9,
                             "matmul_peak_gflop_per_s": peak, "share_of_flop_bound": rate / bound,
                             "peak_rss_mib": peak_rss_mib(), "rss_growth_mib": peak_rss_mib() - rss_before})
    print_table(rows, list(rows[0]))
    return {"bench": "generate", "machine": machine_info(), "config": _cfg_dict(cfg), "results": rows}


def matmul_chain(cfg, rows: int, gates: bool = False, dtype=tf.float32):
    """The products of one WaveNet timestep as plain matmuls over `rows` rows, chained as in the
    model (block l's input is block l-1's output), with the config's exact shapes: per block the
    dilated product `[R, k * 2I]` and the residual `[I, R]`, then the skip `[L * I, S]` and the head
    `[S, S]`, `[S, out]`. Nothing else (no biases, time shifts, caches, softmax), so its rate is
    what TensorFlow's matmuls alone reach for these shapes in one stream: the ceiling the real
    step (one group) is profiled against. The input product of `input_kind="vector"` configs is
    left out (none for one-hot or scalar inputs). gates: add the gated activation tanh * sigmoid
    (the only elementwise work kept). dtype: the products' type (bfloat16: float32 weights and
    input cast on use, as under the `mixed_bfloat16` policy).

    Returns (fn(x `[rows, R]`) -> `[rows, out]`, weights)."""
    r, g, i, k = cfg.residual_channels, cfg.gate_channels, cfg.inner_channels, cfg.filter_length
    rng = np.random.default_rng(0)
    w = lambda a, b: tf.Variable(rng.normal(0, 1 / np.sqrt(a), (a, b)).astype(np.float32))
    dilated = [w(r, k * g) for _ in range(cfg.n_layers)]
    residual = [w(i, r) for _ in range(cfg.n_layers - 1)]
    skip, head1, head2 = w(cfg.n_layers * i, cfg.skip_channels), w(cfg.skip_channels, cfg.skip_channels), \
        w(cfg.skip_channels, cfg.output_channels)

    def mm(a, w):
        return tf.matmul(a, tf.cast(w, dtype))

    def fn(x):
        x, zs = tf.cast(x, dtype), []
        for layer in range(cfg.n_layers):
            y = mm(x, dilated[layer])
            z = tf.tanh(y[:, :i]) * tf.sigmoid(y[:, i:g]) if gates else y[:, :i]
            zs.append(z)
            if layer < cfg.n_layers - 1:
                x = x + mm(z, residual[layer])
        return tf.cast(mm(mm(tf.nn.relu(mm(tf.concat(zs, 1), skip)), head1), head2), tf.float32)

    return fn, dilated + residual + [skip, head1, head2]


def bench_profile(args) -> dict:
    """Where a training step and a generation step of a WaveNet spend their time, by ablation
    (each part timed alone, best of `repeats`, same run, same matmul peak):

    training (batch x n_samples rows, XLA): the config's matmuls alone (forward; forward +
    backward), then the real model's forward + loss, forward + backward, and the full step with
    Adam. The gap between the matmuls alone and the model is everything that is not a product
    (time shifts, gates, biases, the 256-way softmax and its gradient, Adam's update).

    generation (each batch size, plain graph, one `tf.while_loop` of steps): the matmuls alone,
    with the gates, and the real cached step (`WaveNet.generate`, in place, one group). The
    matmuls alone at a few rows are the ceiling for the FLOP-bound share at that batch size."""
    cfg = bench_model_config(args.model, args.scale)
    if not hasattr(cfg, "residual_channels"):
        raise SystemExit("profile takes a WaveNet model (local | large | very_large | thin)")
    peaks = {"float32": matmul_gflops(), "mixed_bfloat16": matmul_gflops(dtype=tf.bfloat16)}
    rows = []

    def add(part, what, rows_per_call, seconds, flops_per_row, precision="float32"):
        """share_of_peak: against the same-run matmul peak of the part's precision (bf16 for mixed_bfloat16)."""
        rate = rows_per_call / seconds
        rows.append({"part": part, "what": what, "precision": precision, "rows": rows_per_call,
                     "ms_per_call": 1e3 * seconds, "rows_per_s": rate, "gflop_per_s": flops_per_row * rate / 1e9,
                     "share_of_peak": flops_per_row * rate / 1e9 / peaks[precision]})

    parts = set(getattr(args, "parts", "train,generate").split(","))
    if parts - {"train", "generate"}:
        raise SystemExit(f"--parts takes train and/or generate, got {sorted(parts)}")
    if "train" in parts:
        profile_training(args, cfg, add)
    if "generate" in parts:
        profile_generation(args, cfg, add)
    print_table(rows, list(rows[0]))
    return {"bench": "profile", "machine": machine_info(), "config": _cfg_dict(cfg),
            "matmul_peak_gflop_per_s": peaks["float32"], "matmul_peak_bf16_gflop_per_s": peaks["mixed_bfloat16"],
            "results": rows}


def profile_training(args, cfg, add) -> None:
    """`bench_profile`'s training parts, each passed to `add(part, what, rows, seconds, flops_per_row)`."""
    from tf_ada.train import build_model, model_scalars
    precision = getattr(args, "precision", "float32")
    dtype = tf.bfloat16 if precision == "mixed_bfloat16" else tf.float32
    fwd = cfg.flops_per_timestep()
    n = args.batch_size * args.n_samples
    chain, weights = matmul_chain(cfg, n, dtype=dtype)
    x = tf.random.stateless_normal([n, cfg.residual_channels], seed=[0, 1])
    f_chain = tf.function(lambda x: tf.reduce_sum(chain(x)), jit_compile=True)
    add = functools.partial(add, precision=precision)
    add("train", "matmuls alone, forward", n, _timed(lambda: f_chain(x).numpy(), args.repeats), fwd)

    @tf.function(jit_compile=True)
    def chain_grads(x):
        with tf.GradientTape() as tape:
            out = tf.reduce_sum(chain(x))
        return [tf.reduce_sum(g) for g in tape.gradient(out, weights)]

    add("train", "matmuls alone, forward + backward", n, _timed(lambda: chain_grads(x)[0].numpy(), args.repeats),
        3 * fwd)
    net = build_model(cfg, precision)
    opt = tf.keras.optimizers.Adam(1e-4)
    opt.build(net.trainable_variables)
    audio = tf.constant(np.random.default_rng(0).integers(0, 256, (args.batch_size, args.n_samples)), tf.int32)
    f_loss = tf.function(lambda a: model_scalars(net, a, training=True)[0]["loss"], jit_compile=True)
    add("train", "model forward + loss", n, _timed(lambda: f_loss(audio).numpy(), args.repeats), fwd)

    def grads_of(a):
        with tf.GradientTape() as tape:
            loss = model_scalars(net, a, training=True)[0]["loss"]
        return tape.gradient(loss, net.trainable_variables)

    f_grads = tf.function(lambda a: tf.add_n([tf.reduce_sum(g) for g in grads_of(a)]), jit_compile=True)
    add("train", "model forward + backward", n, _timed(lambda: f_grads(audio).numpy(), args.repeats), 3 * fwd)

    @tf.function(jit_compile=True)
    def full(a):
        grads = grads_of(a)
        opt.apply_gradients(zip(grads, net.trainable_variables))
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    add("train", "full step (+ Adam)", n, _timed(lambda: full(audio).numpy(), args.repeats), 3 * fwd)


def profile_generation(args, cfg, add) -> None:
    """`bench_profile`'s generation parts at each of `args.batch_sizes`."""
    from tf_ada.models import WaveNet
    fwd = cfg.flops_per_timestep()
    wavenet = WaveNet(cfg)
    steps = args.gen_steps
    for batch in args.batch_sizes:
        for gates in (False, True):
            chain, _ = matmul_chain(cfg, batch, gates=gates)

            @tf.function
            def loop(x0, chain=chain):
                return tf.while_loop(lambda j, x: j < steps, lambda j, x: (j + 1, x + 1e-3 * chain(x)[:, :1]),
                                     (tf.constant(0), x0))[1]

            x0 = tf.random.stateless_normal([batch, cfg.residual_channels], seed=[2, 3])
            add(f"generate b{batch}", "matmuls alone" + (" + gates" if gates else ""), batch * steps,
                _timed(lambda: loop(x0).numpy(), args.repeats), fwd)
        add(f"generate b{batch}", "real cached step (in place, 1 group)", batch * steps,
            _timed(lambda: wavenet.generate(steps, batch_size=batch, seed=0, jit=False, in_place=True, groups=1,
                                            verbose=False).numpy(), args.repeats), fwd)


def _cfg_dict(cfg) -> dict:
    from tf_ada.configs import config_to_dict
    rf = getattr(cfg, "receptive_field", None)
    if rf is None:  # an ADA: the local model's
        rf = cfg.local.receptive_field
    return {**config_to_dict(cfg), "receptive_field": rf}


def main(argv=None, prog: str = "python -m tf_ada.bench") -> int:
    from tf_ada.cli import HelpFormatter
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    default_out = "runs/bench/WHAT-MODEL-SCALE.json"
    p = sub.add_parser("data", help="input pipeline: excerpts/s and timesteps/s", formatter_class=HelpFormatter)
    p.add_argument("--data", help="shard folder (default: 20 minutes of synthetic shards)")
    p.add_argument("--batch-size", type=int, default=8, help="excerpts per batch")
    p.add_argument("--n-samples", type=int, default=16384, help="timesteps per excerpt")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to read batches")
    p.add_argument("--out", default="runs/bench/data.json", help="JSON to write")
    p.set_defaults(func=bench_data)

    p = sub.add_parser("train", help="training timesteps/s (forward + backward + Adam)", formatter_class=HelpFormatter)
    p.add_argument("--model", default="local", help="local | large | very_large | thin | ada-1.2 (any Table 1 row)")
    p.add_argument("--scale", default="paper", choices=["tiny", "cpu", "paper"], help="model sizes (configs.py)")
    p.add_argument("--batch-size", type=int, default=8, help="excerpts per step")
    p.add_argument("--n-samples", type=int, default=8192, help="timesteps per excerpt")
    p.add_argument("--repeats", type=int, default=3, help="timed steps (the best is kept) after one warm-up")
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=True, help="XLA-compile the step")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                   help="compute precision of the WaveNets (train.build_model)")
    p.add_argument("--out", default=None, help=f"JSON to write (default: {default_out})")
    p.set_defaults(func=bench_train)

    p = sub.add_parser("generate", help="cached generation samples/s (batch 1, 16, 64)", formatter_class=HelpFormatter)
    p.add_argument("--model", default="local", help="local | large | very_large | thin")
    p.add_argument("--scale", default="paper", choices=["tiny", "cpu", "paper"], help="model sizes (configs.py)")
    p.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[1, 16, 64],
                   help="comma-separated batch sizes")
    p.add_argument("--n-samples", type=int, default=2000, help="samples generated per sequence")
    p.add_argument("--repeats", type=int, default=2, help="timed runs (the best is kept) after one warm-up")
    p.add_argument("--in-place", default="auto", choices=["auto", "yes", "no", "both"],
                   help="ring buffers updated in place (variables) or copied (tensors); auto: generate's default")
    p.add_argument("--groups", default="auto",
                   help="side-by-side streams per batch (in place only): auto (generate's default), one, both "
                        "(1 and the default), or counts such as 1,2 (those dividing the batch)")
    p.add_argument("--out", default=None, help=f"JSON to write (default: {default_out})")
    p.set_defaults(func=bench_generate)
    p = sub.add_parser("profile", help="where a training and a generation step spend their time (ablation)",
                       description=bench_profile.__doc__, formatter_class=HelpFormatter)
    p.add_argument("--model", default="local", help="local | large | very_large | thin")
    p.add_argument("--scale", default="paper", choices=["tiny", "cpu", "paper"], help="model sizes (configs.py)")
    p.add_argument("--batch-size", type=int, default=4, help="training excerpts per step")
    p.add_argument("--n-samples", type=int, default=8192, help="training timesteps per excerpt")
    p.add_argument("--batch-sizes", type=lambda s: [int(v) for v in s.split(",")], default=[1, 16, 64],
                   help="generation batch sizes")
    p.add_argument("--gen-steps", type=int, default=500, help="generation steps timed per call")
    p.add_argument("--parts", default="train,generate", help="which parts to profile: train, generate or both")
    p.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"],
                   help="the training parts' precision (generation is float32)")
    p.add_argument("--repeats", type=int, default=2, help="timed calls (the best is kept) after one warm-up")
    p.add_argument("--out", default=None, help=f"JSON to write (default: {default_out})")
    p.set_defaults(func=bench_profile)
    args = parser.parse_args(argv)
    payload = args.func(args)
    out = args.out or f"runs/bench/{args.what}-{getattr(args, 'model', 'data')}-{getattr(args, 'scale', '')}.json"
    write_json(out, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
