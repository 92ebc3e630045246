"""Reference sets: a folder of images plus a manifest (id, file, caption, licence, source, sha256)."""

from qa.refset.manifest import ReferenceItem, ReferenceSet, load_reference_set, resolve_reference_set

__all__ = ["ReferenceItem", "ReferenceSet", "load_reference_set", "resolve_reference_set"]
