"""Tiny random-initialised parts for running T2I-L2P's DiffSynth fork on a CPU (test-only).

The fork detects a model by an md5 of its tensor names and shapes (``diffsynth/models/model_loader.py:66``) and its
text encoder class hard-codes Qwen3-4B (``diffsynth/models/z_image_text_encoder.py``). So :func:`register` adds the
tiny files' hashes to the fork's ``MODEL_CONFIGS`` list at run time: the DiT with ``extra_kwargs`` that shrink it
(upstream's own mechanism), the text encoder as :class:`TinyZImageTextEncoder` below. Upstream's files stay
unedited; nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

CAP_DIM = 32
TINY_DIT: dict[str, object] = dict(
    dim=64, n_layers=1, n_refiner_layers=1, n_heads=2, n_kv_heads=2, cap_feat_dim=CAP_DIM, axes_dims=[8, 12, 12],
)
WORDS = "user a an the photo of cat dog red blue green house tree sky car person street".split()


def _qwen3_config() -> object:
    from transformers import Qwen3Config

    return Qwen3Config(
        hidden_size=CAP_DIM, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1,
        head_dim=16, vocab_size=len(WORDS) + 4, max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=0, bos_token_id=2, eos_token_id=1,
    )


class TinyZImageTextEncoder(torch.nn.Module):
    """``ZImageTextEncoder`` (a Qwen3Model wrapper) at hidden size 32 instead of Qwen3-4B."""

    def __init__(self) -> None:
        super().__init__()
        from transformers import Qwen3Model

        self.model = Qwen3Model(_qwen3_config())

    def forward(self, *args: object, **kwargs: object) -> object:
        return self.model(*args, **kwargs)


def make_parts(folder: Path, seed: int = 0) -> Path:
    """``folder``/l2p_tiny.safetensors (DiT), text_encoder/model.safetensors, tokenizer/ (with a chat template)."""
    from diffsynth.models.z_image_dit_L2P import ZImageDiT
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        dit = ZImageDiT(**TINY_DIT)  # type: ignore[arg-type]
        te = TinyZImageTextEncoder()
    sd = {}
    for k, v in dit.state_dict().items():  # unit-gain random weights (its zero and empty inits would be degenerate)
        if v.is_floating_point() and v.ndim > 1:
            v = torch.empty(v.shape).normal_(0.0, float(torch.tensor(v.shape[1:]).prod()) ** -0.5, generator=g)
        elif v.is_floating_point() and not torch.isfinite(v).all() or (v.is_floating_point() and not v.any()):
            v = torch.empty(v.shape).normal_(0.0, 0.1, generator=g)
        sd[k] = v.contiguous()
    save_file(sd, str(folder / "l2p_tiny.safetensors"))
    (folder / "text_encoder").mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in te.state_dict().items()}, str(folder / "text_encoder/model.safetensors"))
    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>",
                                   unk_token="<unk>")
    # like Qwen's template, an empty prompt (the negative one) still has tokens
    fast.chat_template = "{% for m in messages %}<bos> user {{ m['content'] }}{% endfor %}"
    fast.save_pretrained(str(folder / "tokenizer"))
    return folder


def register(folder: Path) -> None:
    """Add the tiny files' model hashes to the fork's MODEL_CONFIGS (idempotent)."""
    from diffsynth.configs.model_configs import MODEL_CONFIGS
    from diffsynth.core.loader import hash_model_file

    entries = [
        {"model_hash": hash_model_file(str(folder / "l2p_tiny.safetensors")), "model_name": "z_image_dit_L2P",
         "model_class": "diffsynth.models.z_image_dit_L2P.ZImageDiT", "extra_kwargs": TINY_DIT},
        {"model_hash": hash_model_file([str(folder / "text_encoder/model.safetensors")]),
         "model_name": "z_image_text_encoder", "model_class": f"{__name__}.TinyZImageTextEncoder"},
    ]
    for entry in entries:
        if entry not in MODEL_CONFIGS:
            MODEL_CONFIGS.append(entry)
