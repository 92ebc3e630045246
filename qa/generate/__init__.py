"""The generate track's models: an L2P-style miniature (caption + seed -> pixels) and its source pipeline.

* :mod:`qa.generate.text` - captions of the training photos and the hashed bag-of-words caption tokeniser;
* :mod:`qa.generate.nets` - the latent diffusion transformer (LDM), the pixel model built from it (L2P recipe:
  large pixel patches, the LDM's middle blocks copied and frozen) and the flow-matching sampler;
* :mod:`training.generate.train_ldm`, :mod:`training.generate.train_l2p` - the two training scripts;
* :mod:`qa.generate.decoders` - the decoder adapters ``l2p`` (embedded / upstream), ``ldm+vae``, ``ldm+pid``;
* :mod:`qa.generate.measures` - agreement of a generated image with its source pipeline's image.
"""
