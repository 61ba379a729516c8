"""tf-ada: autoregressive discrete autoencoders for raw-audio music (Dieleman et al., NeurIPS 2018)."""
import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter out of progress output

__version__ = "0.1.0"
