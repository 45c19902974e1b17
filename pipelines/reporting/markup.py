"""Markdown that shows every value literally, and HTML from it that can run nothing.

Values reach the report from params (title, authors, version), from results and from run names; anyone
who can set a param could otherwise put a script or a `javascript:` link in front of every reader. The
Markdown template escapes every value it prints (`finalize`); text that is already Markdown says so by
being a `Markdown`. The HTML conversion renders no raw HTML and keeps only http(s) links and in-page
anchors, so a value that slipped through escaping still cannot run.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as etree
from typing import Any

import markdown
from markdown.extensions import Extension
from markdown.treeprocessors import Treeprocessor


class Markdown(str):
    """Text already written as Markdown, from escaped parts: the template prints it as it is."""


# Only what Markdown could read as markup is escaped, so that report.md stays readable ("p < 0.05").
# Backslash escapes that both Python-Markdown and CommonMark honour: code, emphasis, link brackets and
# table pipes anywhere, `_` at a word's edge (inside a word it opens no emphasis), a block marker at the
# start. `<` starts a tag or an autolink only before a non-space and `&` an entity only before `name;`:
# those become entities, which both decode in text.
_BACKSLASHED = re.compile(
    r"[\\`*\[\]|]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"
    r"|^[#>]|^[+-](?=\s)|(?<=^\d)\.(?=\s)|(?<=^\d\d)\.(?=\s)"
)
_ENTITIES = {"&": "&amp;", "<": "&lt;"}
_ENTITY_STARTS = re.compile(r"<(?=\S)|&(?=#?\w+;)")


def text(value: Any) -> Markdown:
    """`value` as Markdown inline text that shows literally, on one line, also inside a table cell."""
    one_line = " ".join(str(value).splitlines())
    escaped = _BACKSLASHED.sub(lambda m: "\\" + m.group(0), one_line)
    return Markdown(_ENTITY_STARTS.sub(lambda m: _ENTITIES[m.group(0)], escaped))


def finalize(value: Any) -> Markdown:
    """What the Markdown template prints for `{{ value }}`: Markdown as it is, everything else escaped."""
    return value if isinstance(value, Markdown) else text(value)


def code_span(value: Any) -> Markdown:
    """`value` as an inline code span that no backtick inside it can close early."""
    one_line = " ".join(str(value).splitlines())
    fence = "`" * (_longest_backtick_run(one_line) + 1)
    padding = " " if one_line.startswith("`") or one_line.endswith("`") else ""
    return Markdown(f"{fence}{padding}{one_line}{padding}{fence}")


def code_block(value: Any, language: str) -> Markdown:
    """`value` as a fenced code block whose fence is longer than any backtick run inside it."""
    body = str(value).rstrip("\n")
    fence = "`" * max(3, _longest_backtick_run(body) + 1)
    return Markdown(f"{fence}{language}\n{body}\n{fence}\n")


def _longest_backtick_run(value: str) -> int:
    return max((len(run) for run in re.findall(r"`+", value)), default=0)


def to_html(source: str) -> tuple[str, str]:
    """(body, table of contents) of `source` as HTML: raw HTML shown as text, only safe addresses kept."""
    converter = markdown.Markdown(
        extensions=["tables", "toc", "fenced_code", _Inert()],
        # The contents list the sections only: per-dataset subsections would
        # double its length on a phone.
        extension_configs={"toc": {"toc_depth": "2-2"}},
    )
    return converter.convert(source), converter.toc


# Links may leave the page only over http(s); images are the report's own embedded PNGs.
_SAFE_HREF = re.compile(r"(https?://|#)", re.IGNORECASE)
_SAFE_SRC = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]*\Z")


class _Inert(Extension):
    """Python-Markdown without raw HTML and with only safe link and image addresses."""

    def extendMarkdown(self, md: markdown.Markdown) -> None:
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.treeprocessors.register(_SafeAddresses(md), "safe_addresses", 0)


class _SafeAddresses(Treeprocessor):
    def run(self, root: etree.Element) -> None:
        for element in root.iter():
            if element.tag == "a" and not _SAFE_HREF.match(element.get("href", "")):
                # The link's text stays, as plain text.
                element.tag = "span"
                element.attrib.pop("href", None)
                element.attrib.pop("title", None)
            if element.tag == "img" and not _SAFE_SRC.match(element.get("src", "")):
                element.attrib.pop("src", None)
