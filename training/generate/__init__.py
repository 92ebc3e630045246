"""Reproduce the generate-track weights: ``loop`` (shared loop), ``train_ldm``, ``train_l2p``, ``model_card``."""
