"""Markdown and self-contained HTML from the report's context: one content template, figures embedded."""

from __future__ import annotations

import base64
import io
import urllib.parse
from pathlib import Path
from typing import Any

import jinja2
import yaml
from PIL import Image

from pipelines.reporting import markup
from pipelines.reporting.inputs import Figure
from pipelines.reporting.numbers import number

REPORT_MD = Path("reports/report.md")
REPORT_HTML = Path("reports/report.html")
TEMPLATES_DIR = Path(__file__).parent / "templates"


def render(context: dict[str, Any]) -> tuple[str, str]:
    """(Markdown, HTML) of the report: one content template, the HTML with its figures embedded.

    Every value the Markdown template prints is escaped for Markdown unless it already is Markdown
    (see markup); the HTML template escapes for HTML.
    """
    options: dict[str, Any] = {
        "loader": jinja2.FileSystemLoader(TEMPLATES_DIR),
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }
    content_env = jinja2.Environment(autoescape=False, finalize=markup.finalize, **options)
    content_env.filters.update(
        {
            "num": number,
            "code": markup.code_span,
            "code_block": markup.code_block,
            "yaml": lambda value: yaml.safe_dump(value, sort_keys=False, allow_unicode=True),
            # Only for a macro's output, which is Markdown built from values the template already escaped.
            "markdown": markup.Markdown,
        }
    )
    content = content_env.get_template("report.md.j2")
    text = content.render(context, figure_src=_relative_address)
    body, toc = markup.to_html(content.render(context, figure_src=_data_uri))
    page_env = jinja2.Environment(autoescape=True, **options)
    html = page_env.get_template("report.html.j2").render(context, body=body, toc=toc)
    return text, html


# Embedded figures are halved (150 dpi at the figures' 7.4-inch width, as sharp as a screen shows
# them) and reduced to a 64-colour palette: the HTML with its 26 figures stays under 2 MB, small
# enough for git and phones. The full-resolution PNGs and vector PDFs stay in reports/figures/.
_EMBED_COLOURS = 64
_EMBED_REDUCTION = 2


def _relative_address(figure: Figure) -> markup.Markdown:
    return markup.Markdown(urllib.parse.quote(figure.path.relative_to(REPORT_MD.parent).as_posix()))


def _data_uri(figure: Figure) -> markup.Markdown:
    with Image.open(figure.path) as image:
        buffer = io.BytesIO()
        image.convert("RGB").reduce(_EMBED_REDUCTION).quantize(
            colors=_EMBED_COLOURS, method=Image.Quantize.MEDIANCUT
        ).save(buffer, format="PNG", optimize=True)
    return markup.Markdown("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"))
