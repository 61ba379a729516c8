"""One script per paper table; each writes our numbers beside the paper's with a verdict per claim."""
import os as _os

# the scripts are entry points (`python -m reproduce.table1`): TensorFlow's start-up chatter off
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
