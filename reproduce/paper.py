"""The paper's claims, and its numbers as the reports read them (Dieleman et al. 2018; NOTES.md).

The rows themselves are defined once, in tf_ada/rows.py."""

from tf_ada import rows

# Table 1: ADAs on audio. The rows (what each is, and the paper's NLL and perplexity) are defined
# once in tf_ada/rows.py; these are the report's view of them ({row: {"model", "input", "hop",
# "train_nll", "eval_nll", "perplexity", ...}}).
TABLE1 = {row: spec.paper_numbers() for row, spec in rows.TABLE1.items()}


# Each claim: (text, conditions), judged by reproduce/report.py with tf_ada.evaluation.verdict.
# A condition (terms, statistic, constant, sign): sum_term weight * statistic(term) + constant
# should have sign `sign` (-1 below zero, +1 above), beyond two work-clustered standard errors of
# the paired difference on the same held-out windows. Terms are rows, or (row, protocol) pairs.
TABLE1_CLAIMS = [
    ("1.2 < 1.1 in eval NLL (an ADA's conditional NLL is far below the unconditional WaveNet's)",
     [({"1.2": 1, "1.1": -1}, "nll", 0.0, -1)]),
    ("one-hot input beats continuous input in NLL (1.3 < 1.2 and 1.5 < 1.4)",
     [({"1.3": 1, "1.2": -1}, "nll", 0.0, -1), ({"1.5": 1, "1.4": -1}, "nll", 0.0, -1)]),
    ("AMAE is slightly worse than VQ-VAE in NLL (1.4 > 1.2, 1.5 > 1.3, each by < 10%)",
     [({"1.4": 1, "1.2": -1}, "nll", 0.0, 1), ({"1.4": 1, "1.2": -1.1}, "nll", 0.0, -1),
      ({"1.5": 1, "1.3": -1}, "nll", 0.0, 1), ({"1.5": 1, "1.3": -1.1}, "nll", 0.0, -1)]),
    ("AMAE perplexity is near 256 (1.4 and 1.5 above 200)",
     [({"1.4": 1}, "perplexity", -200.0, 1), ({"1.5": 1}, "perplexity", -200.0, 1)]),
    ("softmax AMAE is the worst hop-8 model in NLL (1.6 above 1.2-1.5)",
     [({"1.6": 1, row: -1}, "nll", 0.0, 1) for row in ("1.2", "1.3", "1.4", "1.5")]),
    ("hop 64 costs NLL and perplexity (1.7 above 1.2 in NLL, below it in perplexity)",
     [({"1.7": 1, "1.2": -1}, "nll", 0.0, 1), ({"1.7": 1, "1.2": -1}, "perplexity", 0.0, -1)]),
]

# Claims about the protocols themselves (judged once; their terms name the protocol).
TABLE1_PROTOCOL_CLAIMS = [
    ("1-s sequences underestimate #1.7's perplexity (Table 1 caption: 250 codes per sequence at hop 64): "
     "per-sequence perplexity below the pooled full-context one",
     [({("1.7", "paper"): 1, ("1.7", "full"): -1}, "perplexity", 0.0, -1)]),
]


# Table 2: second-level ADAs on the codes of #1.2 (tf_ada/rows.py). NLL in nats per code step;
# "decoder_rf" in code steps (the local model's receptive field; the large WaveNet's own for 2.1).
TABLE2 = {row: spec.paper_numbers() for row, spec in rows.TABLE2.items()}

# Claims of sec. 4.3 on the rows' held-out NLL and perplexity, in the form of TABLE1_CLAIMS (paired,
# work-clustered, reproduce/report.py). The convergence claims (seeds, PBT) are judged in
# reproduce/table2.py by its stated definition of "converges".
TABLE2_CLAIMS = [
    ("NLL falls as the AMAE decoder RF grows from 32 to 128 (2.4 < 2.3 and 2.5 < 2.4)",
     [({"2.4": 1, "2.3": -1}, "nll", 0.0, -1), ({"2.5": 1, "2.4": -1}, "nll", 0.0, -1)]),
    ("RF 256 is not lower than RF 128 in NLL (2.6 above 2.5; within 2 SE reads inconclusive, which the "
     "paper's 4.159 vs 4.143 would also be)",
     [({"2.6": 1, "2.5": -1}, "nll", 0.0, 1)]),
    ("AMAE is slightly worse than the PBT VQ-VAE at decoder RF 64 (2.4 above 2.2, by < 10%)",
     [({"2.4": 1, "2.2": -1}, "nll", 0.0, 1), ({"2.4": 1, "2.2": -1.1}, "nll", 0.0, -1)]),
    ("an ADA on codes beats the large WaveNet on codes in NLL (2.2 and 2.4 below 2.1)",
     [({"2.2": 1, "2.1": -1}, "nll", 0.0, -1), ({"2.4": 1, "2.1": -1}, "nll", 0.0, -1)]),
    ("perplexities near 256 (2.2-2.6 above 200)",
     [({row: 1}, "perplexity", -200.0, 1) for row in ("2.2", "2.3", "2.4", "2.5", "2.6")]),
]
