"""One script per paper table; each writes our numbers beside the paper's with a verdict per claim."""
