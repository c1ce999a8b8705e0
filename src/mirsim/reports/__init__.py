"""Reports: one self-contained HTML page about a run directory, with its plots as PNGs.

>>> from mirsim.reports import build_report, read_run
>>> read_run("no/such/run")
Traceback (most recent call last):
...
mirsim.artefacts.runs.RunDirectoryError: no/such/run: no such run directory

Modules: :mod:`~mirsim.reports.report` (:func:`build_report`, the page's sections),
:mod:`mirsim.artefacts.runs` (reading a run directory), :mod:`~mirsim.reports.metrics` (the
metrics table), :mod:`~mirsim.reports.embeddings` (which items are embedded, and by what),
:mod:`~mirsim.reports.neighbours` (queries and nearest neighbours),
:mod:`~mirsim.reports.plots` (matplotlib figures), :mod:`~mirsim.reports.audio_clips` (the
embedded sounds), :mod:`~mirsim.reports.html` (the page itself).
"""

from __future__ import annotations

from mirsim.artefacts.runs import RunDirectory, read_run
from mirsim.reports.errors import ReportError
from mirsim.reports.report import ReportResult, build_report

__all__ = ["ReportError", "ReportResult", "RunDirectory", "build_report", "read_run"]
