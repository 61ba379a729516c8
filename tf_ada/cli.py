"""The `tf-ada` command line: prepare | corpus build | train | reconstruct | sample."""
from __future__ import annotations

import argparse
import os
import sys


def _cmd_prepare(args) -> int:
    from tf_ada import data
    overrides = None
    if args.splits:
        import csv
        with open(args.splits, newline="") as f:
            overrides = {row[0]: row[1] for row in csv.reader(f) if len(row) >= 2}
    options = data.PrepareOptions(eval_fraction=args.eval_fraction, seed=args.seed, min_seconds=args.min_seconds,
                                  normalize=args.normalize, split_overrides=overrides, resplit=args.resplit)
    manifest = data.prepare(args.src, args.out, options)
    print(data.summary(manifest))
    print(f"wrote {os.path.join(args.out, data.MANIFEST)}")
    return 0


def _cmd_corpus(args) -> int:
    from tf_ada.corpus import build
    sources = args.sources.split(",") if args.sources else build.ALL_SOURCES
    info = build.build(args.out, hours=args.hours, sources=sources, tiny=args.tiny, jobs=args.jobs, seed=args.seed)
    for source, s in sorted(info["sources"].items()):
        print(f"  {source:>11}: {s['pieces']:4d} pieces  {s['hours']:.2f} h" + ("  (solo piano)" if s["solo_piano"] else ""))
    print(f"  {'total':>11}: {info['total_hours']:.2f} h; {len(info['failed'])} piece(s) failed (see corpus.json)")
    from tf_ada import data
    print(data.summary(data.load_manifest(os.path.join(args.out, "data"))))
    print(f"corpus: shards in {os.path.join(args.out, 'data')}")
    return 0


def _cmd_train(args) -> int:
    from tf_ada import configs
    from tf_ada.configs import Experiment
    from tf_ada.train import Trainer
    if args.experiment:
        with open(args.experiment) as f:
            import json
            experiment = Experiment.from_dict(json.load(f))
    elif args.row:
        experiment = configs.table1_row(args.row, args.scale, steps=args.steps)
    else:
        experiment = Experiment.load(args.out)  # resume a folder
    trainer = Trainer(experiment, args.data, args.out)
    result = trainer.train(steps=args.steps)
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()})
    return 0


def _cmd_reconstruct(args) -> int:
    from tf_ada.audio import load_audio, save_wav
    from tf_ada.models.ada import ADA, reconstruct_audio
    from tf_ada.train import load_model
    model, experiment = load_model(args.checkpoint)
    if not isinstance(model, ADA):
        raise SystemExit(f"tf-ada reconstruct: {args.checkpoint} holds a {type(model).__name__}, not an ADA")
    audio = load_audio(args.input)
    if args.seconds:
        audio = audio[: int(args.seconds * 16000)]
    codes, recon = reconstruct_audio(model, audio, seed=args.seed, temperature=args.temperature)
    save_wav(args.output, recon.numpy())
    print(f"reconstruct: {args.input} -> {codes.shape[0]} codes (hop {model.config.hop}) -> {args.output}")
    return 0


def _cmd_sample(args) -> int:
    from tf_ada import ops
    from tf_ada.audio import save_wav
    from tf_ada.models.wavenet import WaveNet
    from tf_ada.train import load_model
    model, _ = load_model(args.checkpoint)
    if not isinstance(model, WaveNet):
        raise SystemExit("tf-ada sample: needs an unconditional WaveNet checkpoint")
    x = model.generate(int(args.seconds * 16000), batch_size=args.batch_size, seed=args.seed,
                       temperature=args.temperature)
    for i in range(args.batch_size):
        path = args.output if args.batch_size == 1 else args.output.replace(".wav", f"_{i}.wav")
        save_wav(path, ops.mu_law_decode(x[i]).numpy())
        print(f"sample: wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tf-ada", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="recordings folder (or MAESTRO layout) -> TFRecord shards + manifest.json")
    p.add_argument("src", help="folder of .wav/.flac/.ogg/.mp3 files, or a MAESTRO folder with its CSV")
    p.add_argument("out", help="output folder (re-run to resume)")
    p.add_argument("--eval-fraction", type=float, default=0.01, help="share of pieces held out (paper: 0.01)")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--min-seconds", type=float, default=1.0, help="skip recordings shorter than this")
    p.add_argument("--normalize", action="store_true", help="scale each recording to peak 0.99")
    p.add_argument("--splits", help="CSV of `relative_path_or_piece,split` rows overriding the split")
    p.add_argument("--resplit", action="store_true",
                   help="OUT was prepared with other split settings: remove its shards and prepare it again")
    p.set_defaults(func=_cmd_prepare)

    p = sub.add_parser("corpus", help="the built-in piano corpus")
    corpus_sub = p.add_subparsers(dest="corpus_command", required=True)
    p = corpus_sub.add_parser("build", help="render real compositions with the sampled piano, then prepare")
    p.add_argument("out")
    p.add_argument("--hours", type=float, default=3.0, help="all solo piano, plus other material up to this total")
    p.add_argument("--sources", help="comma-separated subset of jam,keyboard,chorales,quartets,palestrina")
    p.add_argument("--tiny", action="store_true", help="about one minute (two pieces), for tests")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_corpus)

    p = sub.add_parser("train", help="train (or resume) a WaveNet or an ADA")
    p.add_argument("--data", required=True, help="shard folder")
    p.add_argument("--out", required=True, help="run folder (checkpoints, experiment.json, tensorboard)")
    p.add_argument("--row", help="a Table 1 row, e.g. 1.2")
    p.add_argument("--scale", default="cpu", choices=["tiny", "cpu", "paper"])
    p.add_argument("--experiment", help="an experiment.json to train")
    p.add_argument("--steps", type=int)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("reconstruct", help="encode a recording with an ADA and decode it back")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--checkpoint", required=True, help="an ADA run folder")
    p.add_argument("--seconds", type=float, help="only the first seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.set_defaults(func=_cmd_reconstruct)

    p = sub.add_parser("sample", help="sample audio from an unconditional WaveNet run folder")
    p.add_argument("output")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0)
    p.set_defaults(func=_cmd_sample)

    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    except Exception as e:  # clear one-line errors for the expected failure kinds
        from tf_ada.data import DataError
        from tf_ada.corpus.fetch import MissingToolError
        from tf_ada.fileio import FolderBusyError
        if isinstance(e, (DataError, MissingToolError, FileNotFoundError, FolderBusyError)):
            print(f"tf-ada {args.command}: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
