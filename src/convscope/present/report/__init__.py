"""One self-contained HTML report of a model on some inputs (``convscope report``).

Example:
    >>> from convscope.present.report import build_report
    >>> report = build_report("mnist-cnn", ["digit.png"])     # layer table, predictions, feature grids
    >>> report.save("report.html")                           # opens offline: pictures are inline

Importing this package is light (numpy and Pillow); Keras loads when a report is built.
"""

from __future__ import annotations

from convscope.present.report.build import ReportOptions, build_report, describe_output
from convscope.present.report.content import InputEntry, LayerEntry, Picture, Report, ReportContent, Section
from convscope.present.report.tables import dict_table_html, esc, info_html, layer_table_html

__all__ = [
    "InputEntry",
    "LayerEntry",
    "Picture",
    "Report",
    "ReportContent",
    "ReportOptions",
    "Section",
    "build_report",
    "describe_output",
    "dict_table_html",
    "esc",
    "info_html",
    "layer_table_html",
]
