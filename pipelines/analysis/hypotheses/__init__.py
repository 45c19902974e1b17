"""The hypotheses, one module and one registered object each; HYPOTHESES is their order in every table."""

from pipelines.analysis.hypotheses.base import Context, Hypothesis
from pipelines.analysis.hypotheses.h1_sparsity import H1A, H1B
from pipelines.analysis.hypotheses.h2_shrinkage import H2
from pipelines.analysis.hypotheses.h3_dropout import H3
from pipelines.analysis.hypotheses.h4_selected import H4
from pipelines.analysis.hypotheses.h5_decay import H5
from pipelines.analysis.hypotheses.h6_bias import H6

HYPOTHESES: tuple[Hypothesis, ...] = (H1A, H1B, H2, H3, H4, H5, H6)

__all__ = ["HYPOTHESES", "Context", "Hypothesis"]
