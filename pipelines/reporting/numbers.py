"""The one way the report writes numbers and tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd



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


def markdown_table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    """A Markdown table of `columns` ({column: header}), every cell written by `number`; "" for no rows."""
    if frame.empty:
        return ""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in frame.to_dict("records"):
        cells = (number(row[c]).replace("|", "\\|").replace("\n", " ") for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


