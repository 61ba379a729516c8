"""The smallest built-in data set: the recorded piano notes of the Salamander Grand Piano.

npm `@audio-samples/piano-velocity{1..16}` 1.0.5 ship the Salamander Grand Piano V3 (Yamaha C5,
recorded by Alexander Holm, CC-BY 3.0): 30 notes A0..C8 every three semitones per velocity
layer, 48 kHz stereo OGG. One layer is about 5 MB and is real recorded piano, so it is the
default set `make demo` prepares when nothing bigger is asked for (the rendered corpus builds
on the same samples).
"""
from __future__ import annotations

import os

from tf_ada.corpus.fetch import fetch_npm

PIANO_VERSION = "1.0.5"
ATTRIBUTION = ("Salamander Grand Piano V3 by Alexander Holm, CC-BY 3.0, "
               "via npm @audio-samples/piano-velocity* " + PIANO_VERSION)


def piano_layer(velocity: int) -> str:
    """Folder of the 30 OGG notes of one velocity layer (1..16), fetched once into the cache."""
    if not 1 <= velocity <= 16:
        raise ValueError(f"velocity layer must be in 1..16, got {velocity}")
    root = fetch_npm(f"@audio-samples/piano-velocity{velocity}", PIANO_VERSION)
    return os.path.join(root, "audio")
