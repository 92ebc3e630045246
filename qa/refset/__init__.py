"""Reference sets: a folder of images plus a manifest (id, file, caption, licence, source, sha256).

Read one with :func:`qa.refset.manifest.load_reference_set`; build one with :func:`qa.refset.build.build_reference_set`.
"""
