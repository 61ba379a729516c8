import json

from tf_ada import bench, cli


def test_bench_data_writes_json(tmp_path):
    out = tmp_path / "data.json"
    assert bench.main(["data", "--seconds", "0.5", "--batch-size", "2", "--n-samples", "1024", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["results"][0]
    assert row["excerpts_per_s"] > 0 and row["timesteps_per_s"] == row["excerpts_per_s"] * 1024


def test_cli_prepare_end_to_end(recordings, tmp_path, capsys):
    out = tmp_path / "shards"
    assert cli.main(["prepare", str(recordings), str(out), "--eval-fraction", "0.3"]) == 0
    text = capsys.readouterr().out
    assert "skipped 4 file(s)" in text and "corrupt.flac" in text and "manifest.json" in text
    assert cli.main(["prepare", str(tmp_path / "missing"), str(out)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_bench_train_and_generate_write_json(tmp_path):
    out = tmp_path / "t.json"
    assert bench.main(["train", "--model", "local", "--scale", "tiny", "--batch-size", "2", "--n-samples", "64",
                       "--repeats", "1", "--no-jit", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["results"][0]
    assert row["timesteps_per_s"] > 0 and 0 < row["share_of_peak"] and row["matmul_peak_gflop_per_s"] > 1
    assert row["precision"] == "float32" and row["matmul_peak_bf16_gflop_per_s"] > 1
    out = tmp_path / "g.json"
    assert bench.main(["generate", "--model", "large", "--scale", "tiny", "--batch-sizes", "1,3", "--n-samples", "50",
                       "--repeats", "1", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert [r["batch"] for r in payload["results"]] == [1, 3]
    assert payload["config"]["receptive_field"] == 31
    assert [r["in_place"] for r in payload["results"]] == [False, True]  # generate's defaults
    assert all(0 < r["share_of_flop_bound"] for r in payload["results"])
    assert bench.main(["generate", "--model", "large", "--scale", "tiny", "--batch-sizes", "2", "--n-samples", "20",
                       "--repeats", "1", "--in-place", "both", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert [r["in_place"] for r in payload["results"]] == [False, True]
    assert bench.main(["generate", "--model", "large", "--scale", "tiny", "--batch-sizes", "32", "--n-samples", "20",
                       "--repeats", "1", "--groups", "1,2,3", "--out", str(out)]) == 0
    assert [r["groups"] for r in json.loads(out.read_text())["results"]] == [1, 2]  # 3 does not divide 32
    machine = payload["machine"]
    assert machine["tensorflow"].startswith("2.16") and "cpu_flags" in machine and "intra_op_threads" in machine
    assert "commit" in machine


def test_bench_train_ada_row(tmp_path):
    out = tmp_path / "a.json"
    assert bench.main(["train", "--model", "ada-1.2", "--scale", "tiny", "--batch-size", "2", "--n-samples", "64",
                       "--repeats", "1", "--no-jit", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["results"][0]["model"] == "ada-1.2" and payload["config"]["quantizer"] == "vq"
    assert payload["results"][0]["mflop_per_timestep_fwd"] > 0


def test_cli_train_and_reconstruct(audio_shards, tmp_path, capsys):
    from conftest import tone, write_audio
    run = str(tmp_path / "run")
    assert cli.main(["train", "--data", audio_shards, "--out", run, "--row", "1.2", "--scale", "tiny",
                     "--steps", "1"]) == 0
    wav = write_audio(str(tmp_path / "in.wav"), tone(0.05, 16000), 16000)
    assert cli.main(["reconstruct", wav, str(tmp_path / "out.wav"), "--checkpoint", run]) == 0
    assert "100 codes (hop 8)" in capsys.readouterr().out
    assert (tmp_path / "out.wav").stat().st_size > 1000
    # resuming the folder without naming the experiment continues it
    assert cli.main(["train", "--data", audio_shards, "--out", run, "--steps", "2"]) == 0


def test_profile_chain_has_the_models_flops_and_writes_every_part(tmp_path):
    # the matmul-only chain the profile compares against must do exactly the model's products
    # (all but a vector input's, which the chain leaves out)
    import numpy as np
    from tf_ada import configs
    for cfg in (configs.local_model("paper"), configs.large_wavenet("paper"), configs.thin_wavenet("cpu")):
        _, weights = bench.matmul_chain(cfg, 1)
        macs = sum(int(np.prod(w.shape)) for w in weights)
        inp = {"one_hot": 0, "continuous": cfg.residual_channels,
               "vector": cfg.n_input_classes * cfg.residual_channels}[cfg.input_kind]
        assert 2 * (macs + inp) == cfg.flops_per_timestep()
    out = tmp_path / "p.json"
    assert bench.main(["profile", "--model", "local", "--scale", "tiny", "--batch-size", "1", "--n-samples", "64",
                       "--batch-sizes", "2", "--gen-steps", "5", "--repeats", "1", "--out", str(out)]) == 0
    parts = [(r["part"], r["what"]) for r in json.loads(out.read_text())["results"]]
    assert len(parts) == 8 and parts[-1] == ("generate b2", "real cached step (in place, 1 group)")
    assert all(r["ms_per_call"] > 0 for r in json.loads(out.read_text())["results"])
    assert bench.main(["profile", "--model", "local", "--scale", "tiny", "--batch-size", "1", "--n-samples", "64",
                       "--parts", "train", "--precision", "mixed_bfloat16", "--repeats", "1", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert [r["precision"] for r in payload["results"]] == ["mixed_bfloat16"] * 5
    assert payload["matmul_peak_bf16_gflop_per_s"] > 0
