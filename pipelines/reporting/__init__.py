"""The citable report: its context, Markdown and HTML rendering, citation metadata."""
