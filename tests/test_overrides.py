"""Dotted overrides of an experiment (`configs.override`, issue 14): the one way to vary an experiment
(`tf-ada train --set`, PBT's perturbations). Every key and value is checked, and errors name the key."""
import dataclasses
import json

import pytest

from tf_ada import configs, runs
from tf_ada.configs import ConfigError

ADA = configs.table1_row("1.2", "cpu")
WAVENET = configs.table1_row("1.1", "cpu")


def test_override_replaces_exactly_the_named_fields():
    new = configs.override(ADA, {"train.batch_size": 16, "model.beta": 0.5, "model.local.name": "x"})
    assert (new.train.batch_size, new.model.beta, new.model.local.name) == (16, 0.5, "x")
    changed = {k for k, v in configs.flat_items(new).items() if configs.flat_items(ADA)[k] != v}
    assert changed == {"train.batch_size", "model.beta", "model.local.name"}
    assert ADA.train.batch_size == 8 and ADA.model.beta == 0.25  # the original is untouched (frozen)


def test_coupled_fields_change_together_in_one_call():
    """The modulator's outputs must match the local model's gates: one change alone is refused,
    both in one call pass."""
    with pytest.raises(ConfigError, match="model.local.inner_channels: the modulator must produce"):
        configs.override(ADA, {"model.local.inner_channels": 16})
    n_layers = ADA.model.local.n_layers
    new = configs.override(ADA, {"model.local.inner_channels": 16, "model.modulator.output_channels": n_layers * 32})
    assert new.model.local.gate_channels == 32 and new.model.modulator.output_channels == n_layers * 32


@pytest.mark.parametrize("key,level,valid", [
    ("train.batch_sise", "TrainConfig", "batch_size, n_samples, learning_rate"),
    ("nmae", "Experiment", "name, model, train, paper_row"),
    ("model.local.widht", "WaveNetConfig", "n_stages, n_repeats, filter_length"),
    ("model.commitment", "ADAConfig", "encoder, modulator, local, quantizer"),
])
def test_unknown_key_names_it_and_lists_the_valid_keys_at_its_level(key, level, valid):
    with pytest.raises(ConfigError) as info:
        configs.override(ADA, {key: 1})
    message = str(info.value)
    assert f"unknown key {key!r}" in message and level in message and f"valid keys: {valid}" in message


def test_a_field_of_the_other_model_class_is_unknown():
    with pytest.raises(ConfigError, match="unknown key 'model.beta': WaveNetConfig"):
        configs.override(WAVENET, {"model.beta": 0.5})


def test_a_scalar_is_not_a_config_and_a_config_is_not_a_scalar():
    with pytest.raises(ConfigError, match="model.quantizer is a string, not a config with fields"):
        configs.override(ADA, {"model.quantizer.beta": 0.5})
    with pytest.raises(ConfigError, match="model.local must be a WaveNetConfig, got 3"):
        configs.override(ADA, {"model.local": 3})


@pytest.mark.parametrize("key,value,expected", [
    ("train.batch_size", "16", "train.batch_size must be an integer, got '16'"),
    ("train.batch_size", 16.0, "train.batch_size must be an integer, got 16.0"),
    ("train.batch_size", True, "train.batch_size must be an integer, got True"),
    ("model.data_init", 1, "model.data_init must be true or false, got 1"),
    ("model.beta", "0.5", "model.beta must be a number, got '0.5'"),
    ("model.beta", float("nan"), "model.beta must be a number, got nan"),
    ("train.eval_batches", "all", "train.eval_batches must be an integer or null, got 'all'"),
    ("name", 3, "name must be a string, got 3"),
])
def test_wrong_type_names_the_key_and_the_type(key, value, expected):
    with pytest.raises(ConfigError) as info:
        configs.override(ADA, {key: value})
    assert str(info.value) == expected


def test_ints_widen_to_floats_and_optional_fields_take_none():
    new = configs.override(ADA, {"model.beta": 1, "train.eval_batches": None})
    assert new.model.beta == 1.0 and isinstance(new.model.beta, float) and new.train.eval_batches is None


@pytest.mark.parametrize("key,value,expected", [
    ("train.batch_size", 0, "train.batch_size must be a positive integer, got 0"),
    ("train.polyak_decay", 1.0, "train.polyak_decay must be in [0, 1), got 1.0"),
    ("train.learning_rate", -1e-3, "train.learning_rate must be a positive number"),
    ("train.warmup_steps", -1, "train.warmup_steps must be an integer >= 0"),
    ("train.precision", "float16", "train.precision must be one of float32, mixed_bfloat16, got 'float16'"),
    ("model.gamma", 1.0, "model.gamma must be in [0, 1), got 1.0"),
    ("model.beta", -0.1, "model.beta must be >= 0"),
    ("model.hop", 0, "model.hop must be a positive integer, got 0"),
    ("model.encoder.n_stages", 0, "model.encoder.n_stages must be a positive integer"),
    ("model.query_norm", "batch", "model.query_norm must be one of none, l2, standardize"),
    ("model.quantizer", "amae", "model.quantizer: query_norm, data_init and restart_dead_codes apply to the VQ-VAE"),
    ("model.encoder.input_kind", "raw", "model.encoder.input_kind: input_kind must be one of"),
])
def test_values_the_configs_cannot_use_are_refused_naming_the_key(key, value, expected):
    with pytest.raises(ConfigError) as info:
        configs.override(ADA, {key: value})
    assert expected in str(info.value)


@pytest.mark.parametrize("changes,expected", [
    ({"model.local": ADA.model.local, "model.local.name": "x"}, "model.local and model.local.name are both given"),
    ({"model.local.name": "x", "model.local": ADA.model.local}, "model.local is given together with keys under it"),
    ({"train..steps": 3}, "bad key 'train..steps'"),
])
def test_malformed_change_sets(changes, expected):
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        configs.override(ADA, changes)


def test_override_text_reads_each_value_as_its_field_type():
    new = configs.override_text(ADA, ["train.batch_size=16", "train.learning_rate=1e-3", "model.data_init=false",
                                      "train.eval_batches=null", "name=row 1.2 (b16)", "train.jit_compile=True"])
    assert (new.train.batch_size, new.train.learning_rate, new.model.data_init, new.train.eval_batches,
            new.name, new.train.jit_compile) == (16, 1e-3, False, None, "row 1.2 (b16)", True)


@pytest.mark.parametrize("text,expected", [
    ("train.steps=many", "train.steps must be an integer, got 'many'"),
    ("model.data_init=maybe", "model.data_init must be true or false, got 'maybe'"),
    ("model.local=3", "model.local is a whole config (a WaveNetConfig)"),
    ("train.batch_size", "'train.batch_size' is not KEY=VALUE"),
    ("train.nope=1", "unknown key 'train.nope'"),
])
def test_override_text_errors(text, expected):
    with pytest.raises(ConfigError) as info:
        configs.override_text(ADA, [text])
    assert expected in str(info.value)


def test_every_key_listed_by_flat_items_round_trips_through_override_text():
    """`tf-ada config --keys` prints KEY=VALUE lines that --set reads back to the same experiment."""
    for exp in (ADA, WAVENET, configs.table1_row("1.5", "tiny")):
        text = [f"{k}={'null' if v is None else str(v).lower() if isinstance(v, bool) else v}"
                for k, v in configs.flat_items(exp).items()]
        assert configs.override_text(exp, text) == exp


@pytest.mark.parametrize("scale", configs.SCALES)
def test_every_paper_row_is_valid(scale):
    for row in configs.TABLE1_ROWS:
        configs.validate(configs.table1_row(row, scale))


def test_an_overridden_experiment_is_written_and_read_back(tmp_path):
    new = configs.override(ADA, {"train.batch_size": 4, "model.gamma": 0.9})
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(new.to_dict()))
    assert runs.read_experiment(str(path)) == new


@pytest.mark.parametrize("edit,expected", [
    (lambda d: d["train"].update(batch_sise=3), r"unknown key train\.batch_sise: TrainConfig has no field"),
    (lambda d: d["model"]["local"].update(widht=3), r"unknown key model\.local\.widht: WaveNetConfig"),
    (lambda d: d["model"].update({"class": "Foo"}), r"model\.class must be one of WaveNetConfig, ADAConfig"),
    (lambda d: d["model"].update(beta="0.5"), r"model\.beta must be a number, got '0\.5'"),
    (lambda d: d["model"].update(hop=0), r"model\.hop must be a positive integer, got 0"),
])
def test_experiment_files_are_checked_key_by_key(tmp_path, edit, expected):
    d = ADA.to_dict()
    edit(d)
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(d))
    with pytest.raises(runs.RunError, match=expected) as info:
        runs.read_experiment(str(path))
    assert str(info.value).startswith(str(path))


def test_train_config_checks_are_shared_by_files_and_overrides():
    bad = dataclasses.replace(ADA.train, steps=0, polyak_decay=2.0)
    assert configs.train_config_problems(bad) == ["train.steps must be a positive integer, got 0",
                                                  "train.polyak_decay must be in [0, 1), got 2.0"]
    with pytest.raises(runs.RunError, match="where: train.steps must be a positive integer, got 0; train.polyak"):
        runs.check_train_config(bad, "where")
