"""tf-ada: autoregressive discrete autoencoders for raw-audio music (Dieleman et al., NeurIPS 2018).

Importing the library changes no logging settings; the entry points (`tf-ada`, the scripts in
reproduce/ and analysis/) keep TensorFlow's start-up chatter out of their progress output."""

__version__ = "0.1.0"
