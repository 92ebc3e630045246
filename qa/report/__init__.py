"""Self-contained HTML reports from the store: summary, trends, distributions, image grids, gate table."""

from qa.report.build import write_report

__all__ = ["write_report"]
