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
