"""The trainable models and their one contract (`outputs.ModelOutput`, `model_class`)."""
from tf_ada.models.outputs import ModelOutput, nll_per_timestep  # noqa: F401
from tf_ada.models.wavenet import WaveNet  # noqa: F401
from tf_ada.models.ada import ADA, ADAOutput  # noqa: F401

# config class name -> model class: the one place that maps a configuration to what it builds
# (WaveNetConfig: Table 1's #1.1, Table 2's #2.1, Table 3's priors; ADAConfig: every ADA row)
MODEL_CLASSES = {"WaveNetConfig": WaveNet, "ADAConfig": ADA}


def model_class(config):
    """The model class that `config` (a `WaveNetConfig` or an `ADAConfig`) builds."""
    try:
        return MODEL_CLASSES[type(config).__name__]
    except KeyError:
        raise TypeError(f"no model is built from a {type(config).__name__}") from None
