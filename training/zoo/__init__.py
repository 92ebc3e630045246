"""Reproduce the zoo weights: ``data`` (the opencv-doc photos), ``train_vae``, ``train_pid``, ``evaluate``, ``cards``."""
