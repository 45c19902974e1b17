"""The tests of one dataset: described by the hypotheses (a Plan), then run and corrected by `run`.

Four kinds of test, each a description (what to test) and a typed result (what came out):
  Comparison   a − b on a metric, paired by seed: two-sided Wilcoxon signed-rank (primary), the
               paired t-test, rank-biserial and d_z, the Student-t interval of the mean
               difference at level 1 − alpha (pipelines/analysis/inference.py)
  Trend        Page's test that a metric falls along configs (the baseline first, then rising strength)
  Equivalence  paired-t TOST of a ≈ b within ±margin (the hypothesis' smallest effect of interest)
  Ranking      Friedman's test over a group's configs and their mean ranks on test accuracy

Corrections. A test family is one hypothesis on one dataset. An "any" claim (H4: some regularizer
of a group beats its baseline) is Holm-adjusted within its family (holm_p, NaN outside one). The
other hypotheses are conjunctive, supported only if every check passes: requiring all of k tests
to pass at alpha keeps the chance of a false "supported" below alpha without any adjustment (an
intersection-union test), so their checks read the raw p. A descriptive comparison (predicted
empty) belongs to no family and is never read by a judge, so it cannot move a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from tqdm import tqdm

from pipelines.analysis import inference
from pipelines.analysis.grid import Grid
from pipelines.core.params import AnalyzeParams

Key = tuple[str, str, str, str]  # (hypothesis, metric, a, b)


@dataclass(frozen=True)
class Comparison:
    """a − b on a metric, with what the hypothesis predicts."""

    hypothesis: str
    scope: str  # per_strength, equal_strength, matched, selected, ablation
    metric: str
    a: str
    b: str
    predicted: str = ""  # greater | less | different | "" (descriptive)
    holm_family: str = ""

    @property
    def key(self) -> Key:
        return self.hypothesis, self.metric, self.a, self.b


@dataclass(frozen=True)
class Trend:
    """Page's test that `metric` falls along `configs` (the baseline first, then rising strength)."""

    hypothesis: str
    family: str
    configs: tuple[str, ...]
    metric: str


@dataclass(frozen=True)
class Equivalence:
    """TOST of a ≈ b on the paired difference."""

    hypothesis: str
    a: str
    b: str
    metric: str
    margin: float  # from analyze.margins.<dataset>


@dataclass(frozen=True)
class Ranking:
    """Friedman's test over configs (one group's), on test accuracy."""

    group: str
    configs: tuple[str, ...]


@dataclass
class Plan:
    """The tests of one dataset, before they are run and corrected."""

    comparisons: list[Comparison] = field(default_factory=list)
    trends: list[Trend] = field(default_factory=list)
    equivalences: list[Equivalence] = field(default_factory=list)
    rankings: list[Ranking] = field(default_factory=list)

    def extend(self, other: Plan) -> None:
        self.comparisons += other.comparisons
        self.trends += other.trends
        self.equivalences += other.equivalences
        self.rankings += other.rankings


@dataclass(frozen=True)
class ComparisonResult:
    spec: Comparison
    group: str
    family_a: str
    family_b: str
    test: inference.PairedComparison
    holm_p: float  # NaN outside a Holm family


@dataclass(frozen=True)
class TrendResult:
    spec: Trend
    group: str
    levels: list[float]  # the configs' strengths, the baseline as 0
    means: np.ndarray  # per level, over the seeds every level has
    n_seeds: int
    test: inference.Trend
    monotone: bool  # the means move only in the predicted direction

    @property
    def levels_text(self) -> str:
        return ";".join(f"{s:g}" for s in self.levels)

    @property
    def means_text(self) -> str:
        return ";".join(f"{m:.6g}" for m in self.means)


@dataclass(frozen=True)
class EquivalenceResult:
    spec: Equivalence
    group: str
    margin: float
    n: int
    mean_diff: float
    tost_p: float
    equivalent: bool
    note: str
    beyond_p: float = math.nan  # small: a difference beyond the margin is shown (the opposite)


@dataclass(frozen=True)
class RankingResult:
    spec: Ranking
    families: list[str]
    test_acc_means: list[float]
    n_seeds: int
    test: inference.Friedman


@dataclass(frozen=True)
class Findings:
    """Every test of one dataset, run and corrected, in the order planned."""

    comparisons: list[ComparisonResult]
    trends: list[TrendResult]
    equivalences: list[EquivalenceResult]
    rankings: list[RankingResult]

    def comparison(self, hypothesis: str, metric: str, a: str, b: str) -> ComparisonResult:
        """The planned comparison a − b (whatever its scope: a pair is run once)."""
        return next(c for c in self.comparisons if c.spec.key == (hypothesis, metric, a, b))


def run(grid: Grid, plan: Plan, analysis_params: AnalyzeParams) -> Findings:
    """Run every planned test, then Holm within each Holm family."""
    # A pair can be both "matched" and "equal_strength": run it once, under the first scope.
    unique: dict[Key, Comparison] = {}
    for spec in plan.comparisons:
        unique.setdefault(spec.key, spec)
    compared = [
        _compare(grid, spec, analysis_params)
        for spec in tqdm(unique.values(), desc=f"{grid.dataset}: paired tests", unit="test")
    ]
    return Findings(
        comparisons=[replace(c, holm_p=h) for c, h in zip(compared, _holm(compared))],
        trends=[_trend(grid, spec) for spec in plan.trends],
        equivalences=[_equivalence(grid, spec, analysis_params) for spec in plan.equivalences],
        rankings=[_ranking(grid, spec) for spec in plan.rankings],
    )


def _compare(grid: Grid, spec: Comparison, analysis_params: AnalyzeParams) -> ComparisonResult:
    a, b = grid.paired(spec.a, spec.b, spec.metric)
    test = inference.paired_comparison(a, b, alpha=analysis_params.alpha)
    facts = grid.configs
    return ComparisonResult(
        spec,
        facts.at[spec.a, "group"],
        facts.at[spec.a, "family"],
        facts.at[spec.b, "family"],
        test,
        holm_p=math.nan,
    )


def _holm(compared: list[ComparisonResult]) -> list[float]:
    """Holm-adjusted Wilcoxon p within each Holm family; NaN outside one."""
    adjusted = [math.nan] * len(compared)
    for family in sorted({c.spec.holm_family for c in compared} - {""}):
        members = [i for i, c in enumerate(compared) if c.spec.holm_family == family]
        for i, p in zip(members, inference.holm(np.array([compared[i].test.wilcoxon_p for i in members]))):
            adjusted[i] = float(p)
    return adjusted


def _trend(grid: Grid, spec: Trend) -> TrendResult:
    matrix = grid.matrix(list(spec.configs), spec.metric)
    means = matrix.mean(axis=0) if len(matrix) else np.full(len(spec.configs), math.nan)
    return TrendResult(
        spec,
        grid.configs.at[spec.configs[0], "group"],
        [0.0, *grid.configs.loc[list(spec.configs[1:]), "strength"]],
        means,
        len(matrix),
        inference.page_trend(matrix, decreasing=True),
        inference.is_monotone(means, decreasing=True),
    )


def _equivalence(grid: Grid, spec: Equivalence, analysis_params: AnalyzeParams) -> EquivalenceResult:
    x, y = grid.paired(spec.a, spec.b, spec.metric)
    d = inference.differences(x, y)
    p = inference.tost_p(d, spec.margin)
    return EquivalenceResult(
        spec,
        grid.configs.at[spec.a, "group"],
        spec.margin,
        d.size,
        float(np.mean(d)) if d.size else math.nan,
        p,
        bool(p < analysis_params.alpha),
        "" if d.size >= 2 else f"{d.size} pairs: TOST needs 2",
        inference.beyond_p(d, spec.margin),
    )


def _ranking(grid: Grid, spec: Ranking) -> RankingResult:
    matrix = grid.matrix(list(spec.configs), "test_acc")
    facts = grid.configs.loc[list(spec.configs)]
    return RankingResult(
        spec, list(facts["family"]), list(facts["test_acc_mean"]), len(matrix), inference.friedman(matrix)
    )
