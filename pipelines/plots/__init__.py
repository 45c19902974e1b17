"""The figures: a shared seaborn style and the registry of figures drawn from the results."""
