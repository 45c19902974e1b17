"""Markdown and self-contained HTML from the report's context: one content template, figures embedded."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import jinja2
import markdown
import yaml
from PIL import Image


from pipelines.reporting.inputs import Figure
from pipelines.reporting.numbers import number

REPORT_MD = Path("reports/report.md")
REPORT_HTML = Path("reports/report.html")
TEMPLATES_DIR = Path(__file__).parent / "templates"


def render(context: dict[str, Any]) -> tuple[str, str]:
    """(Markdown, HTML) of the report: one content template, the HTML with its figures embedded."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html.j2"]),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["num"] = number
    env.filters["yaml"] = lambda value: yaml.safe_dump(value, sort_keys=False, allow_unicode=True)
    content = env.get_template("report.md.j2")
    text = content.render(context, figure_src=lambda f: f.path.relative_to(REPORT_MD.parent).as_posix())
    embedded = content.render(context, figure_src=_data_uri)
    # The contents list the sections only: per-dataset subsections would double its length on a phone.
    converter = markdown.Markdown(extensions=["tables", "toc", "fenced_code"],
                                  extension_configs={"toc": {"toc_depth": "2-2"}})
    body = converter.convert(embedded)
    html = env.get_template("report.html.j2").render(context, body=body, toc=converter.toc)
    return text, html


# Embedded figures are reduced to a 64-colour palette: line plots and colour maps stay sharp and the
# HTML stays small enough for git and phones. The full-colour PNGs and vector PDFs stay in
# reports/figures/.
_EMBED_COLOURS = 64


def _data_uri(figure: Figure) -> str:
    with Image.open(figure.path) as image:
        buffer = io.BytesIO()
        image.convert("RGB").quantize(colors=_EMBED_COLOURS, method=Image.Quantize.MEDIANCUT).save(
            buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


