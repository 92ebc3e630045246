"""Release gating: policies, paired statistics against baselines, verdicts, and hash-chained sign-offs.

Gates judge numbers from the store; they run nothing. The pytest plugin (``qa.pytest_plugin``) and the CLI
(``qa gate``, ``qa signoff``, ``qa status``) are thin layers over this package.
"""
