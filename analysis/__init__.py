"""Predictability profiles, codebook health and plots; the modules run as scripts (`python -m analysis.X`)."""
import os as _os

# the scripts are entry points: TensorFlow's start-up chatter off
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
