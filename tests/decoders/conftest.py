"""Fixtures of the decoder adapter tests (helpers live in decoder_fixtures.py)."""

from tests.decoders.decoder_fixtures import vae_folders  # noqa: F401  (a pytest fixture)
