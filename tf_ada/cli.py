"""The `tf-ada` command line: prepare | corpus build | train | config | export | reconstruct | encode |
sample, and the reproduction and analysis scripts: table1 | table2 | figure2 | demo | profile | plot-profiles |
codebook-health | bench | pretrained (each delegates to its module's own command line).

Arguments are checked before any work; an expected failure (a bad argument, file, data folder or
run folder, a missing tool, a busy folder) ends with one line `tf-ada CMD: error: ...` and exit
code 2; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import json
import math
import os
import sys

from tf_ada import __version__, rows


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help that shows every flag's default (unless its help already says "default") and keeps
    descriptions' line breaks."""

    def _get_help_string(self, action):
        if "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line naming the argument (exit code 2) and whose
    help shows every flag's default."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text!r}")
    return value


def fraction(text: str) -> float:
    """argparse type: a finite number in [0, 1)."""
    value = _finite(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text!r}")
    return value


def output_file(text: str) -> str:
    """argparse type: a file path that can be written (not a folder; its nearest existing parent
    is a writable folder), checked before any computation."""
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    parent = os.path.dirname(os.path.abspath(text))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: {parent} is not a writable folder")
    if os.path.exists(text) and not os.access(text, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: the file is read-only")
    return text


def _cmd_prepare(args) -> int:
    from tf_ada import data
    overrides = None
    if args.splits:
        import csv
        if not os.path.isfile(args.splits):
            raise data.DataError(f"{args.splits}: --splits file does not exist")
        with open(args.splits, newline="") as f:
            overrides = {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}
    options = data.PrepareOptions(eval_fraction=args.eval_fraction, seed=args.seed, min_seconds=args.min_seconds,
                                  normalize=args.normalize, split_overrides=overrides, resplit=args.resplit)
    manifest = data.prepare(args.src, args.out, options)
    print(data.summary(manifest))
    print(f"wrote {os.path.join(args.out, data.MANIFEST)}")
    return 0


def _cmd_corpus(args) -> int:
    from tf_ada import data
    from tf_ada.corpus import build
    sources = args.sources.split(",") if args.sources else build.ALL_SOURCES
    unknown = sorted(set(sources) - set(build.ALL_SOURCES))
    if unknown:
        raise data.DataError(f"--sources: unknown source(s) {', '.join(unknown)}; "
                             f"choose from {','.join(build.ALL_SOURCES)}")
    info = build.build(args.out, hours=args.hours, sources=sources, tiny=args.tiny, jobs=args.jobs, seed=args.seed)
    for source, s in sorted(info["sources"].items()):
        solo = "  (solo piano)" if s["solo_piano"] else ""
        print(f"  {source:>11}: {s['pieces']:4d} pieces  {s['hours']:.2f} h{solo}")
    print(f"  {'total':>11}: {info['total_hours']:.2f} h; {len(info['failed'])} piece(s) failed (see corpus.json)")
    print(data.summary(data.load_manifest(os.path.join(args.out, "data"))))
    print(f"corpus: shards in {os.path.join(args.out, 'data')}")
    return 0


def _experiment_from_args(args, resume_folder=None):
    """The experiment `--experiment FILE`, `--row` (at `--scale`, `--steps`) or the run folder to
    resume names, with the `--set KEY=VALUE` overrides applied (each checked; errors name the key)."""
    from tf_ada import configs, runs
    if args.experiment:
        experiment = runs.read_experiment(args.experiment)
    elif args.row:
        if args.row not in configs.TABLE1_ROWS:
            raise runs.RunError(f"--row: unknown Table 1 row {args.row!r}; "
                                f"choose from {', '.join(configs.TABLE1_ROWS)}")
        experiment = configs.table1_row(args.row, args.scale, steps=args.steps)
    elif resume_folder is not None:
        path = os.path.join(resume_folder, "experiment.json")
        if not os.path.exists(path):
            raise runs.RunError(f"{resume_folder}: no experiment.json to resume; give --row or --experiment")
        experiment = runs.read_experiment(path)
    else:
        raise runs.RunError("give --row or --experiment")
    if args.set:
        try:
            experiment = configs.override_text(experiment, args.set)
        except configs.ConfigError as e:
            raise runs.RunError(f"--set: {e}") from None
    return experiment


def _cmd_train(args) -> int:
    from tf_ada import runs
    if args.dry_run:
        return _dry_run(_experiment_from_args(args, resume_folder=args.out), args.steps, args.bench_dir)
    missing = [flag for flag, value in (("--data", args.data), ("--out", args.out)) if not value]
    if missing:
        raise runs.RunError(f"{' and '.join(missing)} required (or --dry-run)")
    experiment = _experiment_from_args(args, resume_folder=args.out)
    if args.quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tf_ada.train import Trainer
    trainer = Trainer(experiment, args.data, args.out, log=(lambda line: None) if args.quiet else print)
    result = trainer.train(steps=args.steps)
    if not args.quiet:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
        print(f"train: log in {os.path.join(args.out, runs.LOG_FILE)}")
    return 0


def _dry_run(experiment, steps, bench_dir) -> int:
    from tf_ada import plan
    print(plan.format_plan(plan.describe(experiment, bench_dir=bench_dir, steps=steps), experiment))
    return 0


def _cmd_config(args) -> int:
    from tf_ada import configs
    experiment = _experiment_from_args(args)
    if args.keys:
        for key, value in configs.flat_items(experiment).items():
            print(f"{key}={'null' if value is None else str(value).lower() if isinstance(value, bool) else value}")
    else:
        print(json.dumps(experiment.to_dict(), indent=2))
    return 0


def _cmd_export(args) -> int:
    from tf_ada import export
    written = export.export_run(args.run, args.output, saved_model_dir=args.saved_model)
    print(f"export: {written['name']} ({written['model']}, Polyak weights) -> {written['keras']}"
          + (f" and SavedModel {written['saved_model']}" if args.saved_model else ""))
    return 0


def _cmd_reconstruct(args) -> int:
    from tf_ada.audio import load_audio, save_wav
    from tf_ada.models.ada import ADA, reconstruct_audio
    from tf_ada.runs import RunError
    from tf_ada.train import load_model
    if not os.path.isfile(args.input):
        raise RunError(f"{args.input}: input recording does not exist")
    if args.pretrained:
        from tf_ada import pretrained
        model, experiment, _ = pretrained.load(args.pretrained)
    else:
        model, experiment = load_model(args.checkpoint)
    if not isinstance(model, ADA):
        raise RunError(f"{args.checkpoint or args.pretrained} holds a {type(model).__name__}, not an ADA")
    if args.seconds is not None and int(args.seconds * 16000) < model.config.hop:
        raise RunError(f"--seconds {args.seconds} is shorter than one code ({model.config.hop} samples "
                       f"= {model.config.hop / 16000:g} s)")
    audio = load_audio(args.input)
    if args.seconds is not None:
        audio = audio[: int(args.seconds * 16000)]
    codes, recon = reconstruct_audio(model, audio, seed=args.seed, temperature=args.temperature)
    save_wav(args.output, recon.numpy())
    print(f"reconstruct: {args.input} -> {codes.shape[0]} codes (hop {model.config.hop}) -> {args.output}")
    return 0


def _cmd_encode(args) -> int:
    from tf_ada import data, encode
    if not os.path.isdir(args.data):
        raise data.DataError(f"{args.data}: data folder does not exist")
    data.load_manifest(args.data)  # a bad folder is reported before the model is loaded
    if args.pretrained:
        model, source = encode.source_of_pretrained(args.pretrained)
    else:
        model, source = encode.source_of_run(args.checkpoint)
    manifest = encode.encode_corpus(model, source, args.data, args.out, chunk_codes=args.chunk_codes)
    print(data.summary(manifest))
    print(f"encode: codes in {args.out} (corpus hash {manifest.corpus_hash[:12]})")
    return 0


def _cmd_sample(args) -> int:
    if args.stack is not None:
        return _cmd_sample_stack(args)
    if args.output is None or args.checkpoint is None:
        from tf_ada.runs import RunError
        raise RunError("give OUTPUT.wav and --checkpoint RUN (an unconditional WaveNet), "
                       "or --stack ROW --runs FILE --out DIR")
    from tf_ada import ops
    from tf_ada.audio import save_wav
    from tf_ada.models.wavenet import WaveNet
    from tf_ada.runs import RunError
    from tf_ada.train import load_model
    model, _ = load_model(args.checkpoint)
    if not isinstance(model, WaveNet):
        raise RunError(f"{args.checkpoint}: needs an unconditional WaveNet checkpoint, not a {type(model).__name__}")
    x = model.generate(int(args.seconds * 16000), batch_size=args.batch_size, seed=args.seed,
                       temperature=args.temperature)
    for i in range(args.batch_size):
        path = args.output if args.batch_size == 1 else args.output.replace(".wav", f"_{i}.wav")
        save_wav(path, ops.mu_law_decode(x[i]).numpy())
        print(f"sample: wrote {path}")
    return 0


STACK_ROWS = tuple(rows.TABLE3)  # Table 3 (tf_ada/rows.py)


def _cmd_sample_stack(args) -> int:
    """`tf-ada sample --stack 3.6 --runs FILE --seconds S --n N --out DIR` (tf_ada.stacks)."""
    from tf_ada import stacks
    from tf_ada.runs import RunError as UsageError
    if args.out is None:
        raise UsageError("--stack: give --out DIR")
    if args.output is not None or args.checkpoint is not None:
        raise UsageError("--stack samples into --out DIR from the levels' run folders (--runs, --level); "
                         "OUTPUT.wav and --checkpoint are for one unconditional WaveNet")
    row, folders, corpora = args.stack, {}, {}
    if args.runs:
        named, folders = stacks.read_runs(args.runs)
        if named is not None and named != row:
            raise stacks.StackError(f"{args.runs} describes stack {named}, not {row}")
        corpora = stacks.read_corpora(args.runs)
    for text in args.level or []:
        role, sep, folder = text.partition("=")
        if not sep or role not in stacks.ROLES:
            raise UsageError(f"--level {text!r}: expected ROLE=RUN_FOLDER with ROLE one of {', '.join(stacks.ROLES)}")
        folders[role] = folder
        corpora.pop(role, None)  # what a replaced level trained on is not known here
    roles, temperatures = stacks.expected_roles(row), {}
    for text in args.level_temperature or []:
        role, sep, value = text.partition("=")
        try:
            temperatures[role] = positive_float(value)
        except (ValueError, argparse.ArgumentTypeError):
            raise UsageError(f"--level-temperature {text!r}: expected ROLE=T with T > 0") from None
        if role not in roles:
            raise UsageError(f"--level-temperature {text!r}: stack {row} has levels {', '.join(roles)}")
    temperatures = {r: temperatures.get(r, args.temperature) for r in roles}
    loaded = stacks.load_stack(row, folders, corpora=corpora)
    stacks.sample_stack(loaded, args.seconds, args.n, args.out, seed=args.seed, temperatures=temperatures,
                        render_levels=not args.no_level_renders)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="tf-ada", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="recordings folder (or MAESTRO layout) -> TFRecord shards + manifest.json")
    p.add_argument("src", help="folder of .wav/.flac/.ogg/.mp3 files, or a MAESTRO folder with its CSV")
    p.add_argument("out", help="output folder (re-run to resume)")
    p.add_argument("--eval-fraction", type=fraction, default=0.01, help="share of pieces held out (paper: 0.01)")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--min-seconds", type=non_negative_float, default=1.0, help="skip recordings shorter than this")
    p.add_argument("--normalize", action="store_true", help="scale each recording to peak 0.99")
    p.add_argument("--splits", help="CSV of `relative_path_or_piece,split` rows overriding the split")
    p.add_argument("--resplit", action="store_true",
                   help="OUT was prepared with other split settings: remove its shards and prepare it again")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("corpus", help="the built-in piano corpus")
    corpus_sub = p.add_subparsers(dest="corpus_command", required=True)
    p = corpus_sub.add_parser("build", help="render real compositions with the sampled piano, then prepare")
    p.add_argument("out", help="output folder: wav/, data/ (the prepared shards), corpus.json")
    p.add_argument("--hours", type=positive_float, default=None,
                   help="all solo piano, plus other material up to this total (not reproducible: which pieces "
                   "fit depends on render order); default: the pinned default corpus (tf_ada/corpus/"
                   "default_corpus.csv, the shipped models' corpus), or 3 h for a subset of --sources")
    p.add_argument("--sources", help="comma-separated subset of jam,keyboard,chorales,quartets,palestrina")
    p.add_argument("--tiny", action="store_true", help="about one minute (two pieces), for tests")
    p.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 2, help="parallel render jobs")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.set_defaults(func=_cmd_corpus)

    p = sub.add_parser("train", help="train (or resume) a WaveNet or an ADA",
                       description="Train (or resume) a WaveNet or an ADA into a run folder.\n\nThe experiment: "
                       "--row, --experiment FILE (e.g. from tf-ada config), or the folder's\nown experiment.json "
                       "(resume); --set changes fields of it. Every line logged also goes\nto OUT/train.log.")
    p.add_argument("--data", help="shard folder (tf-ada prepare / corpus build); required unless --dry-run")
    p.add_argument("--out", help="run folder (checkpoints, experiment.json, train.log, tensorboard); "
                   "required unless --dry-run")
    _experiment_arguments(p)
    p.add_argument("--steps", type=positive_int, help="total steps to train to (default: the experiment's)")
    p.add_argument("--dry-run", action="store_true",
                   help="print parameters, receptive fields, FLOPs, a memory estimate and the estimated time "
                   "(from --bench-dir), and train nothing")
    p.add_argument("--bench-dir", default=os.path.join("runs", "bench"),
                   help="where `tf-ada bench train` wrote its JSON (for --dry-run's time estimate)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (the log still goes to train.log)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("config", help="print an experiment as JSON (for tf-ada train --experiment)",
                       description="Print an experiment as JSON, e.g.\n\n  tf-ada config --row 1.2 --scale cpu "
                       "--set train.batch_size=16 > exp.json\n  tf-ada train --experiment exp.json --data DIR "
                       "--out DIR")
    _experiment_arguments(p)
    p.add_argument("--steps", type=positive_int,
                   help="with --row: the row's steps, warm-up kept in proportion (default: the row's)")
    p.add_argument("--keys", action="store_true", help="print every KEY=VALUE that --set accepts instead of JSON")
    p.set_defaults(func=_cmd_config)

    p = sub.add_parser("export", help="export a run's model as a .keras file (and a SavedModel for serving)",
                       description="Export a run folder's model (its Polyak-averaged weights, as evaluated) as\n"
                       "a Keras archive (load it with tf_ada.export.load_keras) and, with --saved-model,\n"
                       "a TensorFlow SavedModel whose `serve` endpoint maps int32 mu-law audio [B, T]\n"
                       "to logits, NLL per step and (ADA) codes.")
    p.add_argument("run", help="a run folder (experiment.json + checkpoints)")
    p.add_argument("output", type=keras_file, help="the .keras file to write")
    p.add_argument("--saved-model", metavar="DIR", type=saved_model_dir, help="also write a SavedModel to DIR")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("reconstruct", help="encode a recording with an ADA and decode it back")
    p.add_argument("input", help="a recording (wav, flac, ogg, mp3; any rate)")
    p.add_argument("output", type=output_file, help="the reconstruction (.wav, 16 kHz)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="an ADA run folder")
    which.add_argument("--pretrained", metavar="NAME",
                       help="a shipped model (tf_ada.pretrained), e.g. 1.2-cpu or 1.5-cpu; no training needed")
    p.add_argument("--seconds", type=positive_float, help="only the first seconds")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    p.set_defaults(func=_cmd_reconstruct)

    p = sub.add_parser("encode", help="write the codes of every split of a data folder under an ADA (resumable)",
                       description="Encode every recording of every split of DATA with an ADA's Polyak weights,\n"
                       "whole recordings with full context, into code shards in OUT (int16; hop, source\n"
                       "checkpoint and corpus hash in OUT/manifest.json). Re-run to resume. OUT is the\n"
                       "data folder of second-level models (tf-ada train --data OUT, tf-ada table2).")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", metavar="RUN", help="an ADA run folder")
    which.add_argument("--pretrained", metavar="NAME", help="a shipped model (tf_ada.pretrained), e.g. 1.2-cpu")
    p.add_argument("data", help="a prepared data folder (tf-ada prepare / corpus build), or code shards")
    p.add_argument("out", help="the code shard folder to write (re-run to resume)")
    p.add_argument("--chunk-codes", type=positive_int, default=4096,
                   help="codes per encoder call (the codes do not depend on it)")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("sample", help="sample audio from an unconditional WaveNet run folder, or top-down "
                                      "through a Table 3 stack (--stack)")
    p.add_argument("output", nargs="?", type=output_file,
                   help="the .wav to write (OUT_i.wav for each of a batch); without --stack")
    p.add_argument("--checkpoint", help="an unconditional WaveNet run folder; without --stack")
    p.add_argument("--seconds", type=positive_float, default=2.0, help="length of each sample")
    p.add_argument("--batch-size", type=positive_int, default=1, help="samples drawn at once; without --stack")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (--stack: the base of every level's seed)")
    p.add_argument("--temperature", type=positive_float, default=1.0, help="sampling temperature (every level)")
    p.add_argument("--stack", choices=STACK_ROWS,
                   help="a Table 3 stack: sample top-down through the cached generation of every level")
    p.add_argument("--runs", help='with --stack: a JSON file {"stack": ROW, "levels": {"first": DIR, '
                                  '"second": DIR, "prior": DIR}} (folders relative to the file; a shipped '
                                  'model as "pretrained:NAME")')
    p.add_argument("--level", action="append", metavar="ROLE=DIR",
                   help="with --stack: the run folder of a level (first, second, prior), or a shipped "
                   "model as pretrained:NAME; overrides --runs")
    p.add_argument("--level-temperature", action="append", metavar="ROLE=T",
                   help="with --stack: one level's temperature (default --temperature)")
    p.add_argument("--n", type=positive_int, default=1, help="with --stack: streams, sampled as one batch")
    p.add_argument("--out", help="with --stack: the folder to write (samples.json, codes, a wav per level)")
    p.add_argument("--no-level-renders", action="store_true",
                   help="with --stack: skip rendering each code level again through the levels below")
    p.set_defaults(func=_cmd_sample)

    for name, (module, text) in DELEGATED.items():  # listed here; main() hands their arguments over
        p = sub.add_parser(name, help=text, add_help=False)
        p.add_argument("args", nargs=argparse.REMAINDER, help=f"the arguments of python -m {module} (see --help)")
    return parser


def _experiment_arguments(p) -> None:
    """--row, --scale, --experiment and --set, shared by train and config."""
    p.add_argument("--row", help="a Table 1 row, e.g. 1.2")
    p.add_argument("--scale", default="cpu", choices=["tiny", "cpu", "paper"], help="the size of --row's models")
    p.add_argument("--experiment", metavar="FILE", help="an experiment JSON (from tf-ada config, or experiment.json)")
    p.add_argument("--set", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="change fields by dotted key, e.g. train.batch_size=16 model.beta=0.5 "
                   "(tf-ada config --keys lists them)")


def keras_file(text: str) -> str:
    """argparse type: a writable file name ending in .keras."""
    if not text.endswith(".keras"):
        raise argparse.ArgumentTypeError(f"must end in .keras, got {text!r}")
    return output_file(text)


def saved_model_dir(text: str) -> str:
    """argparse type: a folder for a SavedModel (not an existing file)."""
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder for the SavedModel")
    return text


# the reproduction and analysis scripts: `tf-ada NAME ARGS` runs `python -m MODULE ARGS`
DELEGATED = {
    "table1": ("reproduce.table1", "Table 1: train, evaluate and report every row (--dry-run: costs only)"),
    "table2": ("reproduce.table2", "Table 2: code corpus, second-level ADAs (PBT for VQ-VAE), report"),
    "table3": ("reproduce.table3", "Table 3: stacks' levels, top-down samples, listening page, measures, report"),
    "figure2": ("reproduce.figure2", "Figure 2: predictability profiles of audio and codes, with the claims"),
    "demo": ("reproduce.demo", "the demo: corpus, Table 1 at demo scale, an HTML page"),
    "profile": ("analysis.predictability", "one predictability profile (sec. 4.2) of audio or an ADA's codes"),
    "plot-profiles": ("analysis.plot_profiles", "plot predictability profiles as Figure 2"),
    "codebook-health": ("analysis.codebook_health", "probe a VQ-VAE's codebook while it trains (issue 9)"),
    "bench": ("tf_ada.bench", "benchmarks: data | train | generate (JSON under runs/bench/)"),
    "pretrained": ("tf_ada.pretrained", "the shipped models: list | export RUN NAME"),
    "listen": ("reproduce.listening", "Table 3 listening page: samples of every stack, real excerpts, blind rating"),
    "ratings": ("tf_ada.ratings", "Table 3 human evaluation: ratings summarize FILES --key KEY [--out table.md|csv]"),
}


def _delegate(command: str, argv: list) -> int:
    """Runs `python -m MODULE ARGV` in this process, its usage and errors under `tf-ada COMMAND`."""
    module_name = DELEGATED[command][0]
    module = importlib.import_module(module_name)
    saved, sys.argv[0] = sys.argv[0], f"tf-ada {command}"  # argparse's prog, unless main takes one
    try:
        takes_prog = "prog" in inspect.signature(module.main).parameters
        code = module.main(argv, prog=f"tf-ada {command}") if takes_prog else module.main(argv)
    except SystemExit as e:  # --help, an argparse error (already printed), or a message
        if isinstance(e.code, str):
            print(f"tf-ada {command}: error: {e.code}", file=sys.stderr)
            return 2
        return e.code or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if isinstance(e, expected_errors()):
            print(f"tf-ada {command}: error: {e}", file=sys.stderr)
            return 2
        raise
    finally:
        sys.argv[0] = saved
    return code or 0


def main(argv=None) -> int:
    """Runs one command; returns its exit code (0, 2 for bad input, 130 when interrupted)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # an entry point: TensorFlow's start-up chatter off
    if argv and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a bad argument (already reported in one line)
        return e.code
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # clear one-line errors for the expected failure kinds
        if isinstance(e, expected_errors()):
            print(f"tf-ada {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise


def expected_errors() -> tuple:
    """The exception types that mean a bad input (argument, file, folder, run) rather than a bug."""
    from tf_ada.audio import AudioError
    from tf_ada.configs import ConfigError
    from tf_ada.corpus.fetch import MissingToolError
    from tf_ada.data import DataError
    from tf_ada.fileio import FolderBusyError
    from tf_ada.runs import RunError
    from tf_ada.ratings import ListeningError, RatingsError
    from tf_ada.train import DivergenceError
    return (AudioError, ConfigError, DataError, DivergenceError, FileNotFoundError, FolderBusyError, ListeningError,
            MissingToolError, RatingsError, RunError)


if __name__ == "__main__":
    sys.exit(main())
