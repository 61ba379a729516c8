"""The command line in-process through `main(argv)`: every bad argument, file or run folder ends
with one line naming it and exit code 2, before any work; unexpected errors keep their traceback."""
import json

import pytest
import tensorflow as tf

from tf_ada import cli, configs, fileio
from conftest import tone, write_audio


def run_cli(capsys, argv):
    """(exit code, stderr lines) of `tf-ada ARGV`."""
    code = cli.main(argv)
    return code, capsys.readouterr().err.strip().splitlines()


@pytest.fixture(scope="module")
def ada_run(tmp_path_factory):
    """An untrained tiny ADA run folder (experiment.json + one checkpoint) and a 1 s recording."""
    from tf_ada.train import build_model
    folder = tmp_path_factory.mktemp("ada")
    exp = configs.table1_row("1.2", "tiny", steps=1)
    model = build_model(exp.model)
    polyak = [tf.Variable(v.value) for v in model.trainable_variables]
    tf.train.Checkpoint(model=model, polyak=polyak, step=tf.Variable(1, dtype=tf.int64)).write(
        str(folder / "run" / "checkpoints" / "ckpt-1"))
    fileio.atomic_write_json(str(folder / "run" / "experiment.json"), exp.to_dict())
    write_audio(str(folder / "in.wav"), tone(1.0, 16000), 16000)
    return str(folder / "run"), str(folder / "in.wav")


@pytest.mark.parametrize("argv,argument", [
    (["prepare", "S", "O", "--eval-fraction", "-1"], "--eval-fraction"),
    (["prepare", "S", "O", "--eval-fraction", "2"], "--eval-fraction"),
    (["prepare", "S", "O", "--eval-fraction", "nan"], "--eval-fraction"),
    (["prepare", "S", "O", "--min-seconds", "-3"], "--min-seconds"),
    (["train", "--data", "D", "--out", "O", "--row", "1.2", "--steps", "-5"], "--steps"),
    (["train", "--data", "D", "--out", "O", "--row", "1.2", "--steps", "0"], "--steps"),
    (["reconstruct", "in.wav", "out.wav", "--checkpoint", "C", "--seconds", "0"], "--seconds"),
    (["reconstruct", "in.wav", "out.wav", "--checkpoint", "C", "--seconds", "-1"], "--seconds"),
    (["sample", "out.wav", "--checkpoint", "C", "--batch-size", "0"], "--batch-size"),
    (["sample", "out.wav", "--checkpoint", "C", "--seconds", "inf"], "--seconds"),
    (["corpus", "build", "O", "--jobs", "0"], "--jobs"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_bad_arguments_are_one_line_naming_the_argument(capsys, argv, argument):
    code, err = run_cli(capsys, argv)
    assert code == 2
    assert len(err) == 1 and f"argument {argument}" in err[0] and err[0].startswith("tf-ada")


def test_output_that_is_a_folder_or_unwritable_is_refused_before_work(capsys, tmp_path):
    code, err = run_cli(capsys, ["reconstruct", "in.wav", str(tmp_path), "--checkpoint", "C"])
    assert code == 2 and len(err) == 1 and "is a folder" in err[0]
    (tmp_path / "afile").write_text("x")
    code, err = run_cli(capsys, ["sample", str(tmp_path / "afile" / "out.wav"), "--checkpoint", "C"])
    assert code == 2 and len(err) == 1 and "is not a writable folder" in err[0]


def test_reconstruct_shorter_than_one_code_is_refused(capsys, ada_run, tmp_path):
    run, wav = ada_run
    code, err = run_cli(capsys, ["reconstruct", wav, str(tmp_path / "o.wav"), "--checkpoint", run,
                                 "--seconds", "0.0001"])
    assert code == 2 and len(err) == 1 and "--seconds 0.0001 is shorter than one code" in err[0]
    assert not (tmp_path / "o.wav").exists()


def test_reconstruct_with_a_wavenet_or_missing_run_is_one_line(capsys, tmp_path):
    code, err = run_cli(capsys, ["reconstruct", __file__, str(tmp_path / "o.wav"),
                                 "--checkpoint", str(tmp_path / "none")])
    assert code == 2 and len(err) == 1 and "not a folder" in err[0]


@pytest.mark.parametrize("field", ["batch_size", "n_samples", "checkpoint_every"])
def test_experiment_file_with_zero_settings_is_one_line(capsys, tmp_path, field):
    d = configs.table1_row("1.2", "tiny").to_dict()
    d["train"][field] = 0
    (tmp_path / "exp.json").write_text(json.dumps(d))
    code, err = run_cli(capsys, ["train", "--data", "D", "--out", str(tmp_path / "o"),
                                 "--experiment", str(tmp_path / "exp.json")])
    assert code == 2 and len(err) == 1 and f"train.{field} must be a positive integer, got 0" in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", ["{oops", '{"name": 1}', "[]"])
def test_damaged_experiment_json_when_resuming_is_one_line(capsys, tmp_path, content):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "experiment.json").write_text(content)
    code, err = run_cli(capsys, ["train", "--data", "D", "--out", str(tmp_path / "run")])
    assert code == 2 and len(err) == 1 and "experiment.json" in err[0]


def test_bad_data_folder_and_unknown_row_are_one_line(capsys, tmp_path):
    code, err = run_cli(capsys, ["prepare", str(tmp_path / "missing"), str(tmp_path / "o")])
    assert code == 2 and len(err) == 1 and "not a folder" in err[0]
    code, err = run_cli(capsys, ["train", "--data", "D", "--out", str(tmp_path / "o"), "--row", "9.9"])
    assert code == 2 and len(err) == 1 and "unknown Table 1 row '9.9'" in err[0]


def test_unexpected_errors_keep_their_traceback(monkeypatch):
    def broken(args):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(cli, "_cmd_prepare", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main(["prepare", "S", "O"])


@pytest.mark.parametrize("argv,argument", [(["--rf", "-1"], "--rf"), (["--max-steps", "0"], "--max-steps"),
                                           (["--rf", "1,x"], "--rf")])
def test_predictability_arguments_are_checked(capsys, argv, argument):
    from analysis import predictability
    with pytest.raises(SystemExit) as info:
        predictability.main(["--source", "audio", "--data", "D", "--out", "O"] + argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and f"argument {argument}" in err[0]


def test_a_listening_error_from_a_delegated_command_is_one_line(capsys, monkeypatch):
    """`ListeningError` lives in the library (tf_ada.ratings), re-exported by reproduce.listening:
    the command line knows it as a bad input without importing reproduce/."""
    from reproduce import listening
    from tf_ada import ratings
    assert listening.ListeningError is ratings.ListeningError
    assert ratings.ListeningError in cli.expected_errors()

    def refuse(argv, prog=None):
        raise listening.ListeningError("/x/samples: no audio/*.wav")
    monkeypatch.setattr(listening, "main", refuse)
    code, err = run_cli(capsys, ["listen", "--samples", "/x/samples", "--out", "O"])
    assert code == 2 and err == ["tf-ada listen: error: /x/samples: no audio/*.wav"]


def test_the_library_imports_nothing_from_reproduce():
    """tf_ada is the library; reproduce/ builds on it, never the other way round (the command
    line reaches reproduce/ only by module name, `DELEGATED`, at run time)."""
    import ast
    import pathlib
    package = pathlib.Path(cli.__file__).parent
    found = []
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.relative_to(package.parent)}:{node.lineno} imports {n}" for n in names
                      if n == "reproduce" or n.startswith("reproduce.")]
    assert not found, found
