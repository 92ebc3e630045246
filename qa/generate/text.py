"""Captions of the LDM's training photos and the caption tokeniser (hashed bag of words).

A caption becomes the set of its lower-cased words (punctuation and a few stop words dropped), each hashed into
one of ``n_buckets`` ids with sha1 (stable across processes, unlike ``hash``). The model's text embedding is a
learned null vector plus the mean of the words' learned vectors, which start at zero: a prompt made only of words
never seen in training therefore conditions like the empty prompt (unconditional generation), not like noise.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import torch

#: Short captions of the opencv-doc training photos (``training.zoo.data.TRAIN_FILES``), written by looking at them.
TRAIN_CAPTIONS: dict[str, str] = {
    "aero1.jpg": "aerial photo of a town with houses roads trees and a lake",
    "aero3.jpg": "aerial photo of a town with a highway trees and the sea",
    "aloeL.jpg": "a green aloe plant in a clay pot against a patterned wall",
    "apple.jpg": "a red apple on a green table",
    "baboon.jpg": "face of a mandrill baboon with a red nose blue cheeks and yellow eyes",
    "board.jpg": "a green printed circuit board with chips and capacitors",
    "building.jpg": "a white office building with many windows under a blue sky",
    "butterfly.jpg": "a black and white butterfly on a green leaf",
    "chicky_512.png": "a small brown dog with its tongue out",
    "ela_original.jpg": "a black notebook with a green elastic band",
    "fruits.jpg": "sliced fruits orange lemon lime and kiwi",
    "graf1.png": "colourful graffiti of a cartoon figure on a wall",
    "left.jpg": "books and boxes on a grey table",
    "leuvenA.jpg": "old brick houses along a cobbled street",
    "licenseplate_motion.jpg": "the back of a silver car with red lights, motion blur",
    "orange.jpg": "an orange fruit on a table",
    "rubberwhale1.png": "colourful toys a rubber whale and wooden letters",
    "smarties.png": "colourful round candies on a white table",
    "stuff.jpg": "a pencil a cap and a lighter on a grey table",
}

STOP_WORDS = frozenset({"a", "an", "the", "of", "and", "with", "on", "in", "its", "at", "to", "along", "under"})
#: number of hash buckets of the word vocabulary
N_BUCKETS = 1024


def words(caption: str) -> list[str]:
    """Lower-cased words of ``caption`` without punctuation and stop words (sorted, unique)."""
    return sorted({w for w in re.findall(r"[a-z0-9]+", caption.lower()) if w not in STOP_WORDS})


def bucket(word: str, n_buckets: int = N_BUCKETS) -> int:
    """Stable hash bucket of one word in ``[0, n_buckets)``."""
    return int.from_bytes(hashlib.sha1(word.encode("utf-8")).digest()[:4], "little") % n_buckets


def tokenize(captions: Sequence[str], n_buckets: int = N_BUCKETS) -> tuple[torch.Tensor, torch.Tensor]:
    """Captions -> (ids, offsets) for ``nn.EmbeddingBag``; an empty caption gives an empty bag (the null prompt)."""
    ids: list[int] = []
    offsets: list[int] = []
    for cap in captions:
        offsets.append(len(ids))
        ids.extend(bucket(w, n_buckets) for w in words(cap))
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


def prompt_seed(seed: int, prompt: str) -> int:
    """The generator seed of one (run seed, prompt) pair: sha256 of both, 63 bits.

    Every decoder of the embedded generate track seeds its per-case ``torch.Generator`` with this, so an image
    depends only on its prompt and seed, never on which cases share its batch.
    """
    digest = hashlib.sha256(f"{int(seed)}\x00{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)
