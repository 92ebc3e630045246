"""Text metrics: OCR error rates of the output against the reference and invented text (docs/text.md)."""
