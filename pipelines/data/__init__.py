"""The datasets: where the raw files come from, how they are checked, parsed and split."""
