"""Training and model-card scripts of the embedded models; never imported by the ``qa`` runtime package.

* :mod:`training.zoo` - the zoo VAE and PiD-mini (``qa/zoo/weights``): data, training, evaluation, model cards;
* :mod:`training.generate` - the generate track's LDM and L2P-style pixel model (``qa/generate/weights``).

Run from a checkout (``python -m training.zoo.train_vae ...``; ``make train-zoo`` runs them all).
"""
