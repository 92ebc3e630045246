"""qa: a hallucination-aware quality-assurance harness for image decoders."""

__version__ = "0.1.0"
