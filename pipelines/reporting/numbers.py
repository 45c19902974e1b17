"""The one way the report writes numbers and tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from pipelines.reporting.markup import Markdown, text


def number(value: Any) -> str:
    """The one way the report writes a number: 3 significant digits, scientific notation below 0.001."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if x == 0:
            return "0"
        if abs(x) < 1e-3:
            return f"{x:.2e}"
        return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"
    return str(value)


def markdown_table(frame: pd.DataFrame, columns: dict[str, str]) -> Markdown:
    """A Markdown table of `columns` ({column: header}), every cell written by `number` and shown literally;
    "" for no rows."""
    if frame.empty:
        return Markdown("")
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in frame.to_dict("records"):
        lines.append("| " + " | ".join(_cell(row[c]) for c in columns) + " |")
    return Markdown("\n".join(lines))


def _cell(value: Any) -> Markdown:
    """A table cell; a (low, high) pair is an interval, '[low, high]', whose brackets are no Markdown link."""
    if isinstance(value, tuple):
        low, high = value
        return Markdown(f"[{number(low)}, {number(high)}]")
    return text(number(value))
