"""The paper's rows, defined once (issue 14): what each row of Tables 1-3 is and the numbers the paper
reports for it. Pure data, no TensorFlow.

`configs.table1_row` / `table2_row` build their experiments from these rows; `tf_ada.stacks` builds
Table 3's stacks from them; `reproduce/paper.py` (the claims) and every report print the paper's
numbers from them. Input kinds are spelled as `configs.INPUT_KINDS` ("one_hot", "continuous").

Numbers: NLL in nats per timestep (Table 1: audio samples; Table 2: first-level code steps);
perplexity = exp(entropy of code usage); None where the paper gives none.
"""
from __future__ import annotations

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of Table 1 or Table 2 (a trained model).

    Attributes:
      row: "1.1" ... "1.7", "2.1" ... "2.6", or a variant the text needs ("2.2-rf128").
      description: the paper's model column.
      quantizer: "vq", "amae", "amae_softmax", or None for a WaveNet.
      input_kind: "continuous" or "one_hot" (Table 2 reads codes: always one-hot).
      hop: timesteps per code (None for a WaveNet).
      decoder_rf: Table 2's decoder receptive field in code steps (None in Table 1).
      train_nll, eval_nll, perplexity: the paper's numbers (None for a variant).
    """
    row: str
    description: str
    quantizer: Optional[str]
    input_kind: str
    hop: Optional[int]
    decoder_rf: Optional[int] = None
    train_nll: Optional[float] = None
    eval_nll: Optional[float] = None
    perplexity: Optional[float] = None

    @property
    def is_paper_row(self) -> bool:
        return self.eval_nll is not None

    def paper_numbers(self) -> dict:
        """The row as the reports print it: model, input, hop, decoder RF and the paper's numbers."""
        return {"model": self.description, "input": self.input_kind, "hop": self.hop,
                "decoder_rf": self.decoder_rf, "train_nll": self.train_nll, "eval_nll": self.eval_nll,
                "perplexity": self.perplexity}


@dataclasses.dataclass(frozen=True)
class StackRow:
    """One row of Table 3 (sec. 4.4): a stack of trained levels sampled top-down.

    Attributes:
      row: "3.1" ... "3.7".
      description: the paper's model column.
      n_levels: 1 (a WaveNet on audio), 2 (ADA + prior) or 3 (ADA + second-level ADA + prior).
      receptive_field_ms: the paper's receptive field of the top level, in ms of audio.
    """
    row: str
    description: str
    n_levels: int
    receptive_field_ms: float


def _by_row(rows) -> dict:
    return {r.row: r for r in rows}


# Table 1 (sec. 4.2): ADAs on audio, hop 8 unless stated.
TABLE1 = _by_row([
    Row("1.1", "WaveNet (large, unconditional)", None, "continuous", None, None, 1.192, 1.151, None),
    Row("1.2", "VQ-VAE", "vq", "continuous", 8, None, 0.766, 0.734, 227.3),
    Row("1.3", "VQ-VAE", "vq", "one_hot", 8, None, 0.711, 0.682, 199.6),
    Row("1.4", "AMAE", "amae", "continuous", 8, None, 0.786, 0.759, 228.9),
    Row("1.5", "AMAE", "amae", "one_hot", 8, None, 0.721, 0.695, 225.6),
    Row("1.6", "AMAE with softmax", "amae_softmax", "one_hot", 8, None, 0.833, 0.806, 183.2),
    Row("1.7", "VQ-VAE", "vq", "continuous", 64, None, 1.203, 1.172, 84.04),
])

# Table 2 (sec. 4.3): second-level models on the codes of #1.2 (hop 8 over codes: 64 audio samples per
# code); "decoder RF" in code steps, the large WaveNet's own for 2.1.
SECOND_LEVEL_HOP = 8
TABLE2 = _by_row([
    Row("2.1", "WaveNet (large, on codes)", None, "one_hot", None, 6144, 4.415, 4.430, None),
    Row("2.2", "VQ-VAE (PBT)", "vq", "one_hot", SECOND_LEVEL_HOP, 64, 4.183, 4.191, 226.0),
    Row("2.3", "AMAE", "amae", "one_hot", SECOND_LEVEL_HOP, 32, 4.337, 4.348, 227.7),
    Row("2.4", "AMAE", "amae", "one_hot", SECOND_LEVEL_HOP, 64, 4.236, 4.247, 228.0),
    Row("2.5", "AMAE", "amae", "one_hot", SECOND_LEVEL_HOP, 128, 4.134, 4.143, 226.2),
    Row("2.6", "AMAE", "amae", "one_hot", SECOND_LEVEL_HOP, 256, 4.153, 4.159, 234.2),
])
# Runs the text of sec. 4.3 needs beyond the table (no paper numbers): "VQ-VAE models with larger
# decoder RFs do not converge, even with PBT".
TABLE2_VARIANTS = _by_row([
    Row("2.2-rf128", "VQ-VAE (PBT), decoder RF 128", "vq", "one_hot", SECOND_LEVEL_HOP, 128),
])

# Table 3 (sec. 4.4; the human ratings are lost from our copy of the paper).
TABLE3 = _by_row([
    StackRow("3.1", "large WaveNet", 1, 384),
    StackRow("3.2", "very large WaveNet", 1, 768),
    StackRow("3.3", "thin WaveNet, large RF", 1, 3072),
    StackRow("3.4", "hop-8 VQ-VAE + large WaveNet", 2, 3072),
    StackRow("3.5", "hop-64 VQ-VAE + large WaveNet", 2, 24576),
    StackRow("3.6", "VQ-VAE + PBT-VQ-VAE + large WaveNet", 3, 24576),
    StackRow("3.7", "VQ-VAE + AMAE + large WaveNet", 3, 24576),
])


def lookup(table: dict, row: str, what: str):
    """`table[row]`, or a ValueError listing the rows that exist."""
    if row not in table:
        raise ValueError(f"{what} has rows {sorted(table)}, not {row!r}")
    return table[row]
