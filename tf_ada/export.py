"""Exporting a trained run: `tf-ada export RUN OUT.keras [--saved-model DIR]`.

The run's model is rebuilt with `train.load_model` (Polyak-averaged weights, as evaluated) and written
  - as a Keras archive (`OUT.keras`: the config and every variable, incl. a VQ-VAE's codebook and
    its statistics), read back with `load_keras` (or `keras.saving.load_model` with
    `custom_objects=CUSTOM_OBJECTS`), which returns the same `WaveNet` or `ADA` class;
  - optionally as a TensorFlow SavedModel for serving (TF Serving, `tf.saved_model.load`), with
    the endpoint `serve`: mu-law audio int32 `[B, T]` -> {"logits" `[B, T, 256]`,
    "nll_per_step" `[B, T]`, "codes" `[B, T // hop]`} (T a multiple of the hop; `[B, 0]` for a WaveNet);
    an ADA also gets `encode`: audio -> codes (`serve` is also the `serving_default` signature).
    Sampling (cached generation) stays in Python.
"""
from __future__ import annotations

import contextlib
import io
import os

import keras
import tensorflow as tf

from tf_ada.models.ada import ADA
from tf_ada.models.wavenet import WaveNet

CUSTOM_OBJECTS = {"ADA": ADA, "WaveNet": WaveNet}


def export_keras(model, path: str) -> str:
    """Writes `model` to `path` (a `.keras` file)."""
    if not path.endswith(".keras"):
        raise ValueError(f"{path}: a Keras archive's name must end in .keras")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    model.save(path)
    return path


def load_keras(path: str):
    """The `WaveNet` or `ADA` that `export_keras` wrote to `path`."""
    return keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)


def serving_functions(model) -> dict:
    """{endpoint name: tf.function over int32 `[B, T]` audio} for a SavedModel."""
    spec = [tf.TensorSpec([None, None], tf.int32, name="audio")]

    @tf.function(input_signature=spec)
    def serve(audio):
        out = model.forward(audio, training=False)
        return {"logits": out.logits, "nll_per_step": out.nll_per_step, "codes": out.codes}

    functions = {"serve": serve}
    if isinstance(model, ADA):  # an ADA also serves its encoder alone (codes of audio)
        @tf.function(input_signature=spec)
        def encode(audio):
            return {"codes": model.encode(audio)}

        functions["encode"] = encode
    return functions


def export_saved_model(model, path: str) -> str:
    """Writes a SavedModel of `model` to the folder `path` with the endpoints of `serving_functions`."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn in serving_functions(model).items():
        archive.add_endpoint(name, fn)
    with contextlib.redirect_stdout(io.StringIO()):  # write_out always prints the endpoints
        archive.write_out(path, verbose=False)
    return path


def export_run(run_dir: str, keras_path: str, saved_model_dir: str | None = None) -> dict:
    """Exports the run folder `run_dir` with its Polyak-averaged weights (see the module docstring);
    returns what was written."""
    from tf_ada.train import load_model
    model, experiment = load_model(run_dir)
    written = {"keras": export_keras(model, keras_path), "model": type(model).__name__, "name": experiment.name}
    if saved_model_dir:
        written["saved_model"] = export_saved_model(model, saved_model_dir)
    return written
