"""Self-contained HTML reports from the store: summary, trends, distributions, image grids, gate table.

Entry point: :func:`qa.report.build.write_report`.
"""
