"""Invented detail: what a decoder made up, and where (see ``docs/hallucination.md``)."""
