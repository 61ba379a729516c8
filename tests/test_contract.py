"""The one model contract (issue 14): every trainable model gives a `ModelOutput` through `forward`,
and the Trainer, the evaluation and the exporters read models only through it."""
import ast
import pathlib

import numpy as np
import pytest
import tensorflow as tf

from tf_ada import configs, evaluation
from tf_ada.models import ADA, ModelOutput, WaveNet, model_class
from tf_ada.train import build_model, model_scalars

ROOT = pathlib.Path(__file__).resolve().parents[1]

MODELS = {
    "wavenet": lambda: configs.large_wavenet("tiny"),
    "wavenet-on-codes": lambda: configs.table2_row("2.1", "tiny").model,
    "vq": lambda: configs.table1_row("1.2", "tiny").model,
    "amae": lambda: configs.table1_row("1.5", "tiny").model,
    "second-level-amae": lambda: configs.table2_row("2.4", "tiny").model,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_gives_the_same_output_type(name):
    config = MODELS[name]()
    model = build_model(config)
    assert isinstance(model, model_class(config))
    t = 4 * model.hop * 4
    n_classes = getattr(config, "n_input_classes", None) or config.local.n_input_classes
    x = tf.constant(np.random.default_rng(0).integers(0, n_classes, (2, t)), tf.int32)
    out = model.forward(x, training=False)
    assert isinstance(out, ModelOutput)
    assert out.logits.shape[:2] == (2, t) and out.nll_per_step.shape == (2, t)
    np.testing.assert_allclose(float(out.nll), float(tf.reduce_mean(out.nll_per_step)), rtol=1e-6)
    # the NLL is the softmax cross-entropy of the logits at the targets
    logp = tf.nn.log_softmax(out.logits).numpy()
    ref = -np.take_along_axis(logp, x.numpy()[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(out.nll_per_step.numpy(), ref, rtol=1e-5, atol=1e-5)
    has_codes = isinstance(model, ADA)
    assert out.codes.shape == (2, t // model.hop if has_codes else 0)
    scalars, nll_steps = model_scalars(model, x, training=False)
    assert {"loss", "nll"} <= set(scalars)
    if has_codes:
        assert {"perplexity", "codes_in_use"} <= set(scalars)
        assert float(scalars["loss"]) >= float(scalars["nll"]) - 1e-6
    else:
        assert float(scalars["loss"]) == pytest.approx(float(scalars["nll"]))
    nll, codes = evaluation.forward(model, x)
    np.testing.assert_allclose(nll.numpy(), out.nll_per_step.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(codes.numpy(), out.codes.numpy())
    assert [id(v) for v in model.polyak_variables][:len(model.trainable_variables)] == \
        [id(v) for v in model.trainable_variables]


def test_live_hyperparameters_reach_the_quantiser_and_only_a_vq_vae_takes_them():
    vq = build_model(configs.table1_row("1.2", "tiny").model)
    vq.set_hyperparameters(beta=0.5, gamma=0.8)
    assert float(vq.quantizer.beta) == pytest.approx(0.5) and float(vq.quantizer.gamma) == pytest.approx(0.8)
    assert configs.live_hyperparameters(vq.config) == {"beta": vq.config.beta, "gamma": vq.config.gamma}
    amae = build_model(configs.table1_row("1.5", "tiny").model)
    assert configs.live_hyperparameters(amae.config) == {}
    with pytest.raises(ValueError, match="no live hyperparameters"):
        amae.set_hyperparameters(beta=0.5)
    net = WaveNet(configs.large_wavenet("tiny"))
    net.set_hyperparameters()  # nothing to set is fine
    with pytest.raises(ValueError):
        net.set_hyperparameters(gamma=0.9)


@pytest.mark.parametrize("module", ["tf_ada/train.py", "tf_ada/evaluation.py"])
def test_trainer_and_evaluation_do_not_branch_on_the_model_type(module):
    """They import no model class and test no model or config type: a new model (a prior on
    codes, a second-level ADA) needs no new branch there."""
    tree = ast.parse((ROOT / module).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not imported & {"ADA", "WaveNet", "VectorQuantizerEMA", "ArgmaxQuantizer"}
    names = {"ADA", "WaveNet", "ADAConfig", "WaveNetConfig", "VectorQuantizerEMA", "ArgmaxQuantizer"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
            kinds = node.args[1]
            used = {getattr(e, "id", getattr(e, "attr", None)) for e in getattr(kinds, "elts", [kinds])}
            assert not used & names, f"{module}:{node.lineno} branches on {used & names}"
