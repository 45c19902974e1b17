"""The analysis: paired statistical inference and the hypotheses tested with it."""
