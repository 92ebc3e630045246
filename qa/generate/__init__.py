"""The generate track's models: an L2P-style miniature (caption + seed -> pixels) and its source pipeline.

* :mod:`qa.generate.text` - captions of the training photos and the hashed bag-of-words caption tokeniser;
* :mod:`qa.generate.noise` - the samplers' initial noise and the pixel noise coupled to the LDM's latent noise;
* :mod:`qa.generate.nets` - the latent diffusion transformer (LDM), the pixel model built from it (L2P recipe:
  large pixel patches, the LDM's middle blocks copied and frozen) and the flow-matching sampler.

The decoder adapters ``l2p`` (embedded / upstream), ``ldm+vae`` and ``ldm+pid`` are :mod:`qa.decoders.l2p` and
:mod:`qa.decoders.l2p_upstream`; the agreement metrics :mod:`qa.metrics.agreement`; the training scripts live
outside the package in ``training/generate``.
"""
