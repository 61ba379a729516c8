from tf_ada.models.wavenet import WaveNet, nll_per_timestep  # noqa: F401
from tf_ada.models.ada import ADA  # noqa: F401
