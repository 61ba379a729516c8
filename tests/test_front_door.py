"""`tf-ada` as the one front door (issue 14): config -> --experiment, --set, --dry-run (train and
table1), --quiet with train.log, subcommands delegating to the reproduce and analysis scripts,
and help that shows every flag's default."""
import json
import os
import re

import pytest

from tf_ada import cli, configs, plan, runs
from tf_ada.bench import _cfg_dict


def run_cli(capsys, argv):
    """(exit code, stdout, stderr lines) of `tf-ada ARGV`."""
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


def test_config_writes_an_experiment_that_train_accepts(capsys, tmp_path):
    code, out, _ = run_cli(capsys, ["config", "--row", "1.2", "--scale", "tiny", "--set", "train.batch_size=4",
                                    "model.beta=0.5"])
    assert code == 0
    path = tmp_path / "exp.json"
    path.write_text(out)
    expected = configs.override(configs.table1_row("1.2", "tiny"), {"train.batch_size": 4, "model.beta": 0.5})
    assert runs.read_experiment(str(path)) == expected
    code, out, err = run_cli(capsys, ["train", "--experiment", str(path), "--dry-run", "--bench-dir", str(tmp_path)])
    assert code == 0, err
    assert "table1_1_2_tiny" in out and "x 4 x 256" in out


def test_config_keys_are_what_set_accepts(capsys):
    code, out, _ = run_cli(capsys, ["config", "--row", "1.5", "--scale", "tiny", "--keys"])
    assert code == 0
    lines = out.splitlines()
    assert "train.batch_size=2" in lines and "model.quantizer=amae" in lines
    exp = configs.table1_row("1.5", "tiny")
    assert configs.override_text(exp, lines) == exp


@pytest.mark.parametrize("setting,expected", [
    ("train.batch_sise=3", "--set: unknown key 'train.batch_sise': TrainConfig under train has no field"),
    ("model.gamma=2", "--set: model.gamma must be in [0, 1), got 2.0"),
    ("train.steps=ten", "--set: train.steps must be an integer, got 'ten'"),
])
def test_bad_overrides_are_one_line_naming_the_key_before_any_work(capsys, tmp_path, setting, expected):
    out_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, ["train", "--data", str(tmp_path), "--out", str(out_dir), "--row", "1.2",
                                    "--scale", "tiny", "--set", setting])
    assert code == 2 and len(err) == 1 and err[0].startswith(f"tf-ada train: error: {expected}")
    assert not out_dir.exists()


def test_train_needs_data_and_out_unless_dry_run(capsys):
    code, _, err = run_cli(capsys, ["train", "--row", "1.2"])
    assert code == 2 and err == ["tf-ada train: error: --data and --out required (or --dry-run)"]


def test_dry_run_reports_costs_and_trains_nothing(capsys, tmp_path):
    from tf_ada.train import build_model
    exp = configs.table1_row("1.2", "tiny")
    out_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, ["train", "--row", "1.2", "--scale", "tiny", "--dry-run", "--out", str(out_dir),
                                      "--bench-dir", str(tmp_path / "none")])
    assert code == 0, err
    n_trainable = sum(int(v.shape.num_elements()) for v in build_model(exp.model).trainable_variables)
    assert f"parameters           {n_trainable:,} trainable" in out
    assert f"receptive field      {exp.model.local.receptive_field} local model (past samples)" in out
    assert f"receptive field      {exp.model.encoder_receptive_field} encoder (samples each side)" in out
    assert f"FLOPs per timestep   {exp.model.flops_per_timestep() / 1e6:,.2f} MFLOP forward" in out
    assert "memory (estimate)" in out
    assert "time (estimate)      unavailable" in out and "tf-ada bench train --model ada-1.2 --scale tiny" in out
    assert not out_dir.exists()


def write_bench(folder, model_config, rate, gflops):
    folder.mkdir(exist_ok=True)
    payload = {"bench": "train", "config": _cfg_dict(model_config),
               "results": [{"model": "ada-1.2", "batch": 2, "n_samples": 256, "jit": False,
                            "timesteps_per_s": rate, "gflop_per_s": gflops}]}
    (folder / "train-ada-1.2-tiny.json").write_text(json.dumps(payload))


def test_time_estimate_uses_the_benchmark_of_the_same_model_else_scales_flops(tmp_path):
    exp = configs.table1_row("1.2", "tiny")
    write_bench(tmp_path / "bench", exp.model, rate=1000.0, gflops=2.0)
    d = plan.describe(exp, bench_dir=str(tmp_path / "bench"))
    timesteps = exp.train.steps * exp.train.batch_size * exp.train.n_samples
    assert d["seconds"] == pytest.approx(timesteps / 1000.0) and "measured for this model" in d["rate"]["how"]
    other = configs.table1_row("1.7", "tiny")  # another model: the benchmark's GFLOP/s over its FLOPs
    d = plan.describe(other, bench_dir=str(tmp_path / "bench"), steps=10)
    expected = 10 * other.train.batch_size * other.train.n_samples * 3 * other.model.flops_per_timestep() / 2e9
    assert d["seconds"] == pytest.approx(expected) and "scaled from" in d["rate"]["how"]
    assert "time (estimate)" in plan.format_plan(d) and "unavailable" not in plan.format_plan(d)


def test_memory_estimate_scales_with_the_batch_and_matches_the_measured_order():
    exp = configs.table1_row("1.2", "cpu")
    a = plan.training_activation_floats(exp.model, 8 * 2048)
    assert plan.training_activation_floats(exp.model, 16 * 2048) == 2 * a
    # BENCHMARKS.md: the paper local model trains at 8 x 8192 with a peak RSS of 6.9 GB (XLA)
    local = configs.local_model("paper", conditioning=False)
    estimate = (plan.BYTES_PER_FLOAT * plan.training_activation_floats(local, 8 * 8192)
                + plan.STATE_COPIES * plan.BYTES_PER_FLOAT * plan.count_parameters(local)["total"])
    assert 0.5 < estimate / 6.9e9 < 2.0


def test_table1_dry_run_lists_every_row_and_trains_nothing(capsys, tmp_path):
    code, out, err = run_cli(capsys, ["table1", "--dry-run", "--scale", "tiny", "--rows", "1.1,1.7",
                                      "--out", str(tmp_path / "t1"), "--bench-dir", str(tmp_path / "none")])
    assert code == 0, err
    assert "table1_1_1_tiny (Table 1 row 1.1): WaveNet" in out and "table1_1_7_tiny (Table 1 row 1.7): ADA" in out
    assert "total time: unavailable (no benchmark rate for rows 1.1, 1.7)" in out
    assert not (tmp_path / "t1").exists()


def test_quiet_training_prints_nothing_and_logs_to_the_run_folder(capsys, audio_shards, tmp_path):
    out_dir = tmp_path / "run"
    code, out, _ = run_cli(capsys, ["train", "--data", audio_shards, "--out", str(out_dir), "--row", "1.1",
                                    "--scale", "tiny", "--steps", "1", "--quiet"])
    assert code == 0 and out == ""
    log = (out_dir / runs.LOG_FILE).read_text().splitlines()
    assert any("step 1/1" in line for line in log) and any(" eval: " in line for line in log)
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ", line) for line in log)


# --- delegation and help --------------------------------------------------------------------------

@pytest.mark.parametrize("command", sorted(cli.DELEGATED))
def test_delegated_commands_show_their_script_help_under_tf_ada(capsys, command):
    code, out, _ = run_cli(capsys, [command, "--help"])
    assert code == 0 and out.startswith(f"usage: tf-ada {command}")


def test_delegated_argument_errors_are_one_line_under_tf_ada(capsys):
    code, _, err = run_cli(capsys, ["profile", "--source", "audio", "--data", "D", "--out", "O", "--rf", "-1"])
    assert code == 2 and len(err) == 1 and err[0].startswith("tf-ada profile: error: argument --rf")
    code, _, err = run_cli(capsys, ["table1", "--rows", "1.9", "--dry-run"])
    assert code == 2 and err[-1].startswith("tf-ada table1: error: --rows: unknown row(s) 1.9")


def help_entries(text: str) -> dict:
    """{section: [entry text]} of an argparse help page (entries start two spaces in)."""
    sections, current, entries = {}, None, None
    for line in text.splitlines():
        if re.match(r"^\S.*:$", line):
            current, entries = line[:-1], []
            sections[current] = entries
        elif current and re.match(r"^  \S", line):
            entries.append(line.strip())
        elif current and line.startswith("   ") and entries:
            entries[-1] += " " + line.strip()
        elif not line.strip():
            current = None if current and entries else current
    return sections


HELP_PAGES = [["prepare"], ["corpus", "build"], ["train"], ["config"], ["export"], ["reconstruct"], ["sample"],
              ["encode"], ["table1"], ["table2"], ["figure2"], ["demo"], ["profile"], ["plot-profiles"],
              ["codebook-health"],
              ["bench", "data"], ["bench", "train"], ["bench", "generate"], ["pretrained", "export"]]


@pytest.mark.parametrize("argv", HELP_PAGES, ids=" ".join)
def test_help_describes_every_argument_and_shows_every_default(capsys, argv):
    code, out, _ = run_cli(capsys, argv + ["--help"])
    assert code == 0
    sections = help_entries(out)
    options = sections.get("options", [])
    assert options, out
    for entry in options:
        if entry.startswith(("-h, --help", "--version")):
            continue
        assert "default" in entry, f"{' '.join(argv)}: no default shown for {entry!r}"
    for entry in sections.get("positional arguments", []):
        if entry.startswith("{"):
            continue
        name, _, text = entry.partition(" ")
        assert text.strip(), f"{' '.join(argv)}: no help for {name}"


def test_every_command_is_listed_in_the_top_level_help(capsys):
    code, out, _ = run_cli(capsys, ["--help"])
    for command in ["prepare", "corpus", "train", "config", "export", "reconstruct", "encode", "sample",
                    *cli.DELEGATED]:
        assert re.search(rf"^    {re.escape(command)}\s", out, re.M), command


def test_export_output_must_be_a_keras_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, ["export", str(tmp_path), str(tmp_path / "model.h5")])
    assert code == 2 and len(err) == 1 and "argument output: must end in .keras" in err[0]


def test_reproduce_scripts_keep_working_as_modules_with_dry_run():
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "reproduce.table1", "--dry-run", "--scale", "tiny", "--rows", "1.2",
                           "--bench-dir", os.path.join(root, "no-such-folder")],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "table1_1_2_tiny" in proc.stdout
