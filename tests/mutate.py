"""Mutation testing of the paper's details (issue 14): `make mutate`.

Each mutant below changes one line of the library into a plausible misreading of the paper (or
of our evaluation protocol). For each, the script copies the repository to a temporary folder
(never touching the working tree, which others edit), applies the one-line change there, runs only
the tests named for it (`pytest -x -q`) with that copy first on `PYTHONPATH`, and reports the
mutant *killed* (the tests failed) or *survived* (they passed). It prints the kill rate and exits
non-zero when any mutant survives, when a mutant's line is no longer found (the list is stale), or
when the unmutated copy fails the tests (then nothing can be judged).

    python tests/mutate.py                 # every mutant, on a copy of the last commit (HEAD)
    python tests/mutate.py --worktree      # on a copy of the working tree (uncommitted edits too)
    python tests/mutate.py mean_pooling    # only the named mutants
    python tests/mutate.py --list

Add a mutant for every new paper detail (Tables 2 and 3 add theirs): (name, file, the exact text
of the original line's changed part, its replacement, the tests that should catch it).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    path: str        # file, relative to the repository root
    original: str    # text that must occur exactly once in the file, within one line
    mutated: str     # its replacement (one line)
    tests: tuple     # pytest node ids or files, relative to the repository root
    why: str         # the paper's detail it breaks


QUANT = "tf_ada/layers/quantizers.py"
T_QUANT = "tests/test_quantizers.py"

MUTANTS = [
    Mutant("mean_pooling", "tf_ada/models/ada.py",
           "return tf.reduce_mean(tf.reshape(h, [b, t // self.hop, self.hop, self.config.output_channels]), axis=2)",
           "return h[:, :: self.hop]",
           ("tests/test_ada.py",), "sec. 3.3: the encoder mean-pools each hop, not every hop-th frame"),
    Mutant("mu_law_constant", "tf_ada/ops.py",
           "companded = tf.sign(x) * tf.math.log1p(mu * tf.abs(x)) / math.log1p(mu)",
           "companded = tf.sign(x) * tf.math.log1p(mu * tf.abs(x)) / math.log1p(mu + 1.0)",
           ("tests/test_ops.py",), "mu-law: ln(1 + mu|x|) / ln(1 + mu), mu = 255"),
    Mutant("mu_law_decode", "tf_ada/ops.py",
           "return tf.sign(y) * (tf.pow(1.0 + mu, tf.abs(y)) - 1.0) / mu",
           "return tf.sign(y) * (tf.pow(mu, tf.abs(y)) - 1.0) / mu",
           ("tests/test_ops.py",), "mu-law expansion inverts the companding"),
    Mutant("straight_through_sign", QUANT,
           "quantized = q + tf.stop_gradient(q_hat - q)",
           "quantized = -q + tf.stop_gradient(q_hat + q)",
           (T_QUANT,), "Eq. 1: the straight-through estimator copies the gradient (+identity)"),
    Mutant("commitment_stop_gradient", QUANT,
           "commitment = tf.reduce_mean(tf.square(q - tf.stop_gradient(q_hat)))",
           "commitment = tf.reduce_mean(tf.square(tf.stop_gradient(q) - q_hat))",
           (T_QUANT,), "Eq. 1: beta ||q - [q_hat]||^2 trains the encoder, not the codebook"),
    Mutant("commitment_weight", QUANT,
           "loss=self.beta * commitment,",
           "loss=commitment,",
           (T_QUANT,), "Eq. 1: the commitment term is weighted by beta"),
    Mutant("ema_decay_use", "tf_ada/ops.py",
           "n = gamma * ema_counts + (1.0 - gamma) * counts",
           "n = (1.0 - gamma) * ema_counts + gamma * counts",
           ("tests/test_ops.py", T_QUANT), "K-means EMA: N <- gamma N + (1 - gamma) n"),
    Mutant("laplace_smoothing", "tf_ada/ops.py",
           "smoothed = (n + epsilon) / (total + k * epsilon) * total",
           "smoothed = n",
           ("tests/test_ops.py", T_QUANT), "Laplace smoothing of the EMA counts"),
    Mutant("unused_codes_keep_their_vector", "tf_ada/ops.py",
           "return n, m, tf.where((counts > 0)[:, None], m / smoothed[:, None], codebook)",
           "return n, m, m / smoothed[:, None]",
           ("tests/test_ops.py", T_QUANT), "K-means: a code assigned nothing keeps its vector (no drift to 0)"),
    Mutant("perplexity_entropy", "tf_ada/ops.py",
           "return tf.exp(-tf.reduce_sum(tf.math.xlogy(p, p)))",
           "return tf.exp(tf.reduce_sum(tf.math.xlogy(p, p)))",
           ("tests/test_ops.py",), "sec. 4.1: perplexity = exp(entropy of code usage)"),
    Mutant("amae_divisive_normalisation", QUANT,
           "return r / (tf.reduce_sum(r, -1, keepdims=True) + self.epsilon)",
           "return r",
           (T_QUANT,), "Eq. 2: relu outputs divided by their sum (onto the simplex)"),
    Mutant("diversity_target", QUANT,
           "diversity = self.n_codes * tf.reduce_sum(tf.square(mean_q - 1.0 / self.n_codes))",
           "diversity = self.n_codes * tf.reduce_sum(tf.square(mean_q - 1.0))",
           (T_QUANT,), "Eq. 2: the diversity loss pulls the mean usage towards 1/K"),
    Mutant("causal_shift", "tf_ada/models/wavenet.py",
           "shifted = tf.concat([tf.fill([tf.shape(x)[0], 1], self.start_value), x[:, :-1]], axis=1)",
           "shifted = x",
           ("tests/test_wavenet.py",), "WaveNet: p(x_t | x_<t), the input shifted right by one step"),
    Mutant("causal_taps", "tf_ada/layers/wavenet.py",
           "first = -(filter_length - 1) * dilation if causal else -(filter_length - 1) // 2 * dilation",
           "first = -(filter_length - 2) * dilation if causal else -(filter_length - 1) // 2 * dilation",
           ("tests/test_wavenet.py",), "causal dilated convolutions end at the current step"),
    Mutant("noncausal_taps", "tf_ada/layers/wavenet.py",
           "first = -(filter_length - 1) * dilation if causal else -(filter_length - 1) // 2 * dilation",
           "first = -(filter_length - 1) * dilation if causal else -(filter_length - 1) * dilation",
           ("tests/test_wavenet.py",), "app. A: the encoder and modulator are non-causal (centred taps)"),
    Mutant("dilation_doubling", "tf_ada/ops.py",
           "return [2 ** i for i in range(n_stages)] * n_repeats",
           "return [i + 1 for i in range(n_stages)] * n_repeats",
           ("tests/test_ops.py",), "app. A: dilations 1, 2, 4, ..., 2^(n-1), repeated"),
    Mutant("polyak_decay", "tf_ada/train.py",
           "p.assign(d * p + (1.0 - d) * v)",
           "p.assign((1.0 - d) * p + d * v)",
           ("tests/test_train.py::test_polyak_average_is_the_ema_of_the_weights",),
           "Polyak averaging: p <- decay p + (1 - decay) w"),
    Mutant("polyak_start", "tf_ada/train.py",
           "d = tf.where(self.step > 0, decay, 0.0)",
           "d = tf.where(self.step > 0, decay, decay)",
           ("tests/test_train.py::test_polyak_average_is_the_ema_of_the_weights",),
           "our choice (7362c1c): the average starts at the weights after the first step"),
    Mutant("per_sequence_perplexity", "tf_ada/evaluation.py",
           "fn = per_sequence_perplexity_estimate if protocol == \"paper\" else pooled_perplexity_estimate",
           "fn = pooled_perplexity_estimate if protocol == \"paper\" else per_sequence_perplexity_estimate",
           ("tests/test_evaluation.py",), "Table 1 caption: perplexity within each sequence, averaged"),
    Mutant("verdict_two_se", "tf_ada/evaluation.py",
           "if diff * sign > 2.0 * se:",
           "if diff * sign > 1.0 * se:",
           ("tests/test_evaluation.py",), "a claim holds only beyond 2 standard errors"),
]


def copy_repository(dest: str, worktree: bool) -> None:
    """HEAD (default) or the working tree's tracked and unignored files, into `dest`."""
    if not worktree:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
        return
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def apply(mutant: Mutant, root: str) -> str:
    """Applies the mutant to the copy at `root`; returns the original file text (to restore it)."""
    path = os.path.join(root, mutant.path)
    with open(path) as f:
        text = f.read()
    n = text.count(mutant.original)
    if n != 1:
        raise LookupError(f"{mutant.path}: the original text occurs {n} times (the list is stale)")
    with open(path, "w") as f:
        f.write(text.replace(mutant.original, mutant.mutated))
    return text


def run_tests(root: str, tests, timeout: float) -> tuple[int, float]:
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "PYTHONDONTWRITEBYTECODE": "1"}
    start = time.time()
    try:
        rc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        rc = -1
    return rc, time.time() - start


def check_imports_from_copy(root: str) -> None:
    env = {**os.environ, "PYTHONPATH": root}
    got = subprocess.run([sys.executable, "-c", "import tf_ada, os; print(os.path.realpath(tf_ada.__file__))"],
                         cwd=root, env=env, check=True, capture_output=True, text=True).stdout.strip()
    if not got.startswith(os.path.realpath(root)):
        raise SystemExit(f"mutate: tf_ada imports from {got}, not from the copy {root}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only these mutants (default: all)")
    parser.add_argument("--worktree", action="store_true", help="mutate a copy of the working tree, not of HEAD")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--no-baseline", action="store_true", help="skip running the unmutated tests first")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per test run (default 900)")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        parser.error(f"unknown mutants {unknown}; known: {sorted(known)}")
    chosen = [known[n] for n in args.names] if args.names else MUTANTS
    if args.list:
        for m in chosen:
            print(f"{m.name:30s} {m.path}: {m.why}\n{'':30s} tests: {' '.join(m.tests)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="tf-ada-mutate-") as root:
        copy_repository(root, args.worktree)
        check_imports_from_copy(root)
        if not args.no_baseline:
            tests = sorted({t for m in chosen for t in m.tests})
            rc, seconds = run_tests(root, tests, args.timeout * len(chosen))
            print(f"baseline (unmutated): {'pass' if rc == 0 else f'FAIL (pytest exit {rc})'} in {seconds:.0f} s",
                  flush=True)
            if rc != 0:
                return 2
        results = {}
        for m in chosen:
            try:
                original = apply(m, root)
            except LookupError as e:
                results[m.name] = "stale"
                print(f"{m.name:30s} STALE    {e}", flush=True)
                continue
            try:
                rc, seconds = run_tests(root, m.tests, args.timeout)
            finally:
                with open(os.path.join(root, m.path), "w") as f:
                    f.write(original)
            # pytest: 1 = tests failed, 2 = interrupted (e.g. an import error under -x); 4/5 = bad usage
            # or no tests collected, which judge nothing; -1 = timed out (counted killed, and shown)
            status = {0: "survived", 1: "killed", 2: "killed", -1: "killed"}.get(rc, "error")
            results[m.name] = status
            note = " (timed out)" if rc == -1 else ("" if status != "error" else f" (pytest exit {rc})")
            print(f"{m.name:30s} {status.upper():8s} {seconds:5.0f} s{note}  [{m.why}]", flush=True)
    killed = sum(s == "killed" for s in results.values())
    print(f"kill rate: {killed}/{len(results)} ({100.0 * killed / max(len(results), 1):.0f} %)")
    bad = sorted(n for n, s in results.items() if s != "killed")
    if bad:
        print(f"not killed: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
