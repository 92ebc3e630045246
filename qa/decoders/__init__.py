"""Decoder adapters: traditional VAE decoders, PiD, L2P, upsamplers, and user-registered ones."""
