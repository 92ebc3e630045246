"""Embedded decoder zoo: a small VAE and PiD-mini trained by the project (see README.md)."""
