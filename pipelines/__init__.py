"""regbench: what do L1, L2 and dropout really do to a neural network?

The six stages of dvc.yaml are the modules here (fetch, prepare, train, analyze, figures, report),
each a thin ``main()``. The library they share sits beside them in packages named for what they
hold: ``core`` (params, errors, files, the results contract, provenance), ``data``, ``training``,
``analysis``, ``plots`` and ``reporting``.
"""
