"""regbench: what do L1, L2 and dropout really do to a neural network?

The stages of dvc.yaml (fetch, prepare, train, analyze, figures, report) are modules here, each
with a ``main()``; beside them sit the few library modules they share.
"""
