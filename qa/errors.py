"""Exceptions with a message that says what went wrong and what to do next."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str], n: int = 3, cutoff: float = 0.5) -> str | None:
    """``"did you mean 'a', 'b'?"`` naming up to ``n`` close matches of ``name`` among ``known``, or None."""
    close = difflib.get_close_matches(name, list(known), n=n, cutoff=cutoff)
    return f"did you mean {', '.join(repr(c) for c in close)}?" if close else None


class QAError(Exception):
    """Base class of every error qa raises on purpose.

    ``hint`` tells the user what to do next; it is appended to the message.
    """

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.hint = hint
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")


class BadImageError(QAError):
    """An image file that cannot be read safely (corrupt, truncated, too large, wrong kind)."""


class ManifestError(QAError):
    """A reference-set manifest that is missing, malformed or points outside its folder."""


class UnknownNameError(QAError, KeyError):
    """A decoder, metric or encoder name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return Exception.__str__(self)


class DecoderError(QAError):
    """A decoder that raised, returned the wrong shape, or returned NaN/Inf."""


class WeightsMissingError(QAError):
    """Weights that a model needs are not present locally (qa never downloads implicitly)."""


class StoreError(QAError):
    """The DuckDB store cannot be opened or is in an unexpected state."""
