"""The report stage: reports/report.md and a self-contained reports/report.html.

    python -m pipelines.report

Every number in the report is read from a file an earlier stage wrote (summary.json and the
tables of analyze, the captions of figures, the training summaries, the prepared-data metadata,
dvc.lock) and written by `number`. One Markdown template holds the content; the HTML is that
Markdown converted, with the figures embedded as data URIs so that the file stands alone.
"""

from __future__ import annotations

import datetime

from pipelines.core import files, params, provenance
from pipelines.core.errors import stage
from pipelines.reporting.context import build_context
from pipelines.reporting.inputs import read_inputs
from pipelines.reporting.render import REPORT_HTML, REPORT_MD, render


@stage
def main() -> None:
    study = params.load()
    inputs = read_inputs()
    origin = provenance.collect(study, inputs.files)
    text, html = render(build_context(study, inputs, origin, datetime.datetime.now(datetime.UTC).date()))
    # Both are rendered before either is written, so a failure while rendering leaves the old report.
    files.write_text(REPORT_MD, text)
    files.write_text(REPORT_HTML, html)
    print(f"report {origin.report_id}: {REPORT_MD}, {REPORT_HTML}")


if __name__ == "__main__":
    main()
