"""Tiny random-initialised parts for running the real NVIDIA PiD code on a CPU (test-only).

``make_parts(root)`` writes, under ``root``: a random Gemma-2 text encoder with a small word-level tokenizer
(``text_encoder/``, transformers ``save_pretrained``), a random Flux VAE file (``ae.safetensors``, the tensor
names and shapes of upstream's ``AutoEncoder``) and a random tiny PiD student (``pid_tiny.pth``). ``NET_OVERRIDES``
are the Hydra overrides that shrink upstream's ``pid_sr4x`` net to match. Nothing is downloaded.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

HIDDEN = 32  # the tiny text encoder's hidden size = the net's txt_embed_dim
TXT_LEN = 8  # model_max_length: caption tokens kept

#: Hydra overrides (qa's ``experiment_opts`` setting) shrinking upstream's PiD net and text handling.
NET_OVERRIDES: list[str] = [
    "model.config.net.hidden_size=32",
    "model.config.net.num_groups=2",
    "model.config.net.pixel_hidden_size=8",
    "model.config.net.pixel_attn_hidden_size=16",
    "model.config.net.pixel_num_groups=2",
    "model.config.net.patch_depth=2",
    "model.config.net.pixel_depth=1",
    f"model.config.net.txt_embed_dim={HIDDEN}",
    f"model.config.net.txt_max_length={TXT_LEN}",
    "model.config.net.repa_encoder_index=1",
    "model.config.net.lq_hidden_dim=16",
    "model.config.net.lq_interval=1",
    f"model.config.caption_channels={HIDDEN}",
    f"model.config.model_max_length={TXT_LEN}",
    "model.config.chi_prompt=[]",
    "model.config.precision=float32",
]


def make_text_encoder(folder: Path) -> Path:
    """A random 1-layer Gemma-2 (hidden 32) and a word-level tokenizer with <bos>/<eos>/<pad>, saved locally."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import Gemma2Config, Gemma2ForCausalLM, PreTrainedTokenizerFast

    words = "a an the photo of cat dog red blue green house tree sky car person street".split()
    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>", *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    cfg = Gemma2Config(
        vocab_size=len(vocab), hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=64, pad_token_id=0, eos_token_id=1,
        bos_token_id=2,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Gemma2ForCausalLM(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


def make_flux_vae(path: Path) -> Path:
    """Random weights with the names and shapes of upstream's Flux ``AutoEncoder``, as bfloat16 safetensors."""
    from pid._src.tokenizers.flux_vae import AutoEncoder
    from safetensors.torch import save_file

    with torch.device("meta"):
        shapes = {k: v.shape for k, v in AutoEncoder().state_dict().items()}
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, shape in shapes.items():
        if k.endswith("bias"):
            sd[k] = torch.zeros(shape)
        elif "norm" in k:
            sd[k] = torch.ones(shape)
        else:
            fan_in = max(1, math.prod(shape[1:])) if len(shape) > 1 else 1
            sd[k] = torch.empty(shape).normal_(0.0, fan_in**-0.5, generator=g)
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in sd.items()}, str(path))
    return path


def make_student(path: Path, seed: int = 0) -> Path:
    """Upstream's ``pid_sr4x`` net shrunk by :data:`NET_OVERRIDES`, random weights at unit gain, saved as a
    ``.pth`` state dict with ``net.`` keys."""
    import copy

    from pid._ext.imaginaire.lazy_config import instantiate
    from pid._src.configs.common.defaults.net import PID_SR4X

    cfg = copy.deepcopy(PID_SR4X)
    for override in NET_OVERRIDES:
        key, value = override.split("=")
        if key.startswith("model.config.net."):
            cfg[key.rsplit(".", 1)[1]] = int(value)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = instantiate(cfg)
        if hasattr(net, "init_weights"):
            net.init_weights()  # upstream's own init (as PixelDiTModel does) ...
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in net.state_dict().items():
        # ... but weights at unit gain (its small and zero inits, adaLN-zero and the LQ branch, would make the
        # output ignore latent and caption), zero biases small random
        if v.is_floating_point() and v.ndim > 1:
            v = torch.empty(v.shape).normal_(0.0, math.prod(v.shape[1:]) ** -0.5, generator=g).to(v.dtype)
        elif v.is_floating_point() and v.ndim == 1 and not v.any():
            v = torch.empty(v.shape).normal_(0.0, 0.1, generator=g).to(v.dtype)
        sd["net." + k] = v
    torch.save(sd, str(path))
    return path
