"""The paper's numbers and claims, in one place (Dieleman et al. 2018; NOTES.md)."""

# Table 1: ADAs on audio. NLL in nats per timestep; perplexity = exp(entropy of code usage).
TABLE1 = {
    "1.1": {"model": "WaveNet (large, unconditional)", "input": "continuous", "hop": None,
            "train_nll": 1.192, "eval_nll": 1.151, "perplexity": None},
    "1.2": {"model": "VQ-VAE", "input": "continuous", "hop": 8, "train_nll": 0.766, "eval_nll": 0.734, "perplexity": 227.3},
    "1.3": {"model": "VQ-VAE", "input": "one-hot", "hop": 8, "train_nll": 0.711, "eval_nll": 0.682, "perplexity": 199.6},
    "1.4": {"model": "AMAE", "input": "continuous", "hop": 8, "train_nll": 0.786, "eval_nll": 0.759, "perplexity": 228.9},
    "1.5": {"model": "AMAE", "input": "one-hot", "hop": 8, "train_nll": 0.721, "eval_nll": 0.695, "perplexity": 225.6},
    "1.6": {"model": "AMAE with softmax", "input": "one-hot", "hop": 8, "train_nll": 0.833, "eval_nll": 0.806,
            "perplexity": 183.2},
    "1.7": {"model": "VQ-VAE", "input": "continuous", "hop": 64, "train_nll": 1.203, "eval_nll": 1.172,
            "perplexity": 84.04},
}


def _nll(r, row):
    return r.get(row, {}).get("eval_nll")


def _ppl(r, row):
    return r.get(row, {}).get("perplexity")


def _all(*values):
    return all(v is not None for v in values)


# Each claim: (text, function of {row: {"eval_nll", "perplexity", ...}} -> True / False / None (not run))
TABLE1_CLAIMS = [
    ("1.2 < 1.1 in eval NLL (an ADA's conditional NLL is far below the unconditional WaveNet's)",
     lambda r: _nll(r, "1.2") < _nll(r, "1.1") if _all(_nll(r, "1.2"), _nll(r, "1.1")) else None),
    ("one-hot input beats continuous input in NLL (1.3 < 1.2 and 1.5 < 1.4)",
     lambda r: (_nll(r, "1.3") < _nll(r, "1.2") and _nll(r, "1.5") < _nll(r, "1.4"))
     if _all(_nll(r, "1.2"), _nll(r, "1.3"), _nll(r, "1.4"), _nll(r, "1.5")) else None),
    ("AMAE is slightly worse than VQ-VAE in NLL (1.4 > 1.2, 1.5 > 1.3, each by < 10%)",
     lambda r: all(_nll(r, a) > _nll(r, v) and _nll(r, a) < 1.1 * _nll(r, v) for a, v in (("1.4", "1.2"), ("1.5", "1.3")))
     if _all(*(_nll(r, k) for k in ("1.2", "1.3", "1.4", "1.5"))) else None),
    ("AMAE perplexity is near 256 (1.4 and 1.5 above 200)",
     lambda r: _ppl(r, "1.4") > 200 and _ppl(r, "1.5") > 200 if _all(_ppl(r, "1.4"), _ppl(r, "1.5")) else None),
    ("softmax AMAE is the worst hop-8 model in NLL (1.6 above 1.2-1.5)",
     lambda r: all(_nll(r, "1.6") > _nll(r, k) for k in ("1.2", "1.3", "1.4", "1.5"))
     if _all(*(_nll(r, k) for k in ("1.2", "1.3", "1.4", "1.5", "1.6"))) else None),
    ("hop 64 costs NLL and perplexity (1.7 above 1.2 in NLL, below it in perplexity)",
     lambda r: _nll(r, "1.7") > _nll(r, "1.2") and _ppl(r, "1.7") < _ppl(r, "1.2")
     if _all(_nll(r, "1.7"), _nll(r, "1.2"), _ppl(r, "1.7"), _ppl(r, "1.2")) else None),
]
