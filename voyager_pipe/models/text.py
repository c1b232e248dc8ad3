"""Text conditioning of the Voyager model: LLaVA-LLaMA-3 (with an image) + CLIP-L pooled.

The encoders are the HunyuanVideo-I2V ones, run through ``transformers`` exactly as diffusers'
:class:`~diffusers.HunyuanVideoImageToVideoPipeline` does (its ``encode_prompt``: I2V prompt template,
the image's 576 LLaVA tokens interleaved by 2, the hidden state two layers before the last; CLIP-L
``pooler_output``). As in the released Voyager inference, the LLaVA encoder of the conditional
pass sees the reference COMPOSITE (RGB, band, depth picture) and the negative prompt is encoded
with a BLACK image of the same size. The LLaMA-3 tokenizer is byte-level BPE: it is loaded with
``AutoTokenizer`` from its ``tokenizer.json`` as released (``LlamaTokenizerFast`` would rebuild a
SentencePiece-style tokenizer that drops the byte-level spaces). Loading the 8B encoder is the
slowest part of a run, so the embeddings are:

* cached on disk under ``prompt_cache_dir`` keyed by a hash of (prompt, negative prompt, image,
  encoder identity, conditioning scheme), so a second run with the same inputs never loads the encoders;
* or given directly with ``--prompt-embeds FILE`` (a file written by :func:`save_prompt_embeddings`).

Expected folder layout (that of ``hunyuanvideo-community/HunyuanVideo-I2V``)::

    text_encoder/  tokenizer/  text_encoder_2/  tokenizer_2/  image_processor/

Nothing is downloaded: everything loads with ``local_files_only=True``.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.io.atomic import atomic_write_bytes

#: The reference's default negative prompt in I2V mode.
DEFAULT_NEGATIVE_PROMPT = "deformation, a poor composition and deformed video, bad teeth, bad eyes, bad limbs"
ENCODER_FOLDERS = ("text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "image_processor")
_FORMAT = "voyager_pipe.prompt_embeds"
#: Part of every cache key: what the encoder sees. Bumped when that changes so old entries are never reused
#: (v1: RGB image for both prompts; v2: reference composite for the prompt, black image for the negative).
CONDITIONING_SCHEME = "composite+black-negative"


@dataclass
class PromptEmbeddings:
    """Embeddings of one prompt (batch 1): LLaVA tokens, their mask, and the CLIP pooled vector."""

    embeds: torch.Tensor  # [1, L, 4096]
    mask: torch.Tensor  # [1, L] (1 = real token)
    pooled: torch.Tensor  # [1, 768]

    def to(self, device=None, dtype=None) -> "PromptEmbeddings":
        return PromptEmbeddings(self.embeds.to(device, dtype), self.mask.to(device), self.pooled.to(device, dtype))


@dataclass
class TextConditioning:
    """Positive and (for classifier-free guidance) negative prompt embeddings."""

    positive: PromptEmbeddings
    negative: Optional[PromptEmbeddings]


def save_prompt_embeddings(path: str | Path, cond: TextConditioning, meta: dict | None = None) -> None:
    """Write ``cond`` as a ``.pt`` file of plain tensors (loadable with ``weights_only=True``)."""
    data = {"format": _FORMAT, "meta": json.dumps(meta or {})}
    for name, emb in (("positive", cond.positive), ("negative", cond.negative)):
        if emb is not None:
            data[f"{name}.embeds"] = emb.embeds.detach().cpu()
            data[f"{name}.mask"] = emb.mask.detach().cpu()
            data[f"{name}.pooled"] = emb.pooled.detach().cpu()
    buffer = io.BytesIO()
    torch.save(data, buffer)
    atomic_write_bytes(Path(path).expanduser(), buffer.getvalue())


def load_prompt_embeddings(path: str | Path) -> TextConditioning:
    """Read a file written by :func:`save_prompt_embeddings`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"{path}: prompt embeddings file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise InputError(f"{path}: cannot read prompt embeddings ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or data.get("format") != _FORMAT or "positive.embeds" not in data:
        raise InputError(f"{path}: not a voyager_pipe prompt embeddings file")

    def part(name: str) -> Optional[PromptEmbeddings]:
        if f"{name}.embeds" not in data:
            return None
        return PromptEmbeddings(data[f"{name}.embeds"], data[f"{name}.mask"], data[f"{name}.pooled"])

    return TextConditioning(positive=part("positive"), negative=part("negative"))


def encoder_identity(encoder_dir: str | Path) -> str:
    """A short id of the encoders in ``encoder_dir``: their configs and weight file names + sizes."""
    encoder_dir = Path(encoder_dir).expanduser().resolve()
    digest = hashlib.sha256()
    for folder in ENCODER_FOLDERS:
        sub = encoder_dir / folder
        if not sub.is_dir():
            continue
        for file in sorted(sub.iterdir()):
            if file.suffix == ".json":
                digest.update(file.name.encode() + file.read_bytes())
            elif file.is_file():
                digest.update(f"{folder}/{file.name}:{file.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def image_pixels(image: torch.Tensor) -> torch.Tensor:
    """``image [3, H, W]`` in [0, 1] -> uint8 ``[3, H, W]`` as the released inference makes its PIL image (truncation)."""
    return (image.detach().cpu().float().clamp(0, 1) * 255).to(torch.uint8)  # [3, H, W]


def cache_key(prompt: str, negative_prompt: Optional[str], image: Optional[torch.Tensor], encoder_id: str) -> str:
    """Hash of everything the embeddings depend on (the I2V LLaVA encoder also sees the image)."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"prompt": prompt, "negative": negative_prompt, "encoder": encoder_id,
                              "scheme": CONDITIONING_SCHEME}).encode())
    if image is not None:
        pixels = image_pixels(image)  # [3, H, W]
        digest.update(str(tuple(pixels.shape)).encode() + pixels.numpy().tobytes())
    return digest.hexdigest()[:32]


def load_llava_tokenizer(folder: str | Path):
    """The LLaVA-LLaMA-3 tokenizer as the released inference loads it (``AutoTokenizer``, right padding).

    ``AutoTokenizer`` honours the folder's ``tokenizer.json`` (byte-level BPE); ``LlamaTokenizerFast``
    would rebuild a SentencePiece-style pipeline and tokenize differently.
    """
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder, padding_side="right", local_files_only=True)


class HunyuanI2VTextEncoder:
    """LLaVA-LLaMA-3 + CLIP-L loaded from a local folder; ``__call__(prompt, image) -> PromptEmbeddings``."""

    def __init__(self, encoder_dir: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float16,
                 max_sequence_length: int = 256):
        encoder_dir = Path(encoder_dir).expanduser()
        missing = [f for f in ENCODER_FOLDERS if not (encoder_dir / f).is_dir()]
        if missing:
            raise MissingDependencyError(
                f"{encoder_dir}: text encoder folders missing: {missing} (expected the HunyuanVideo-I2V layout "
                "text_encoder/ tokenizer/ text_encoder_2/ tokenizer_2/ image_processor/; or pass voyager.prompt_embeds)")
        try:
            from diffusers import HunyuanVideoImageToVideoPipeline
            from transformers import CLIPImageProcessor, CLIPTextModel, CLIPTokenizer, LlavaForConditionalGeneration
        except ImportError as exc:
            raise MissingDependencyError(f"text encoders need diffusers + transformers ({exc})") from None
        local = {"local_files_only": True}
        self.max_sequence_length = max_sequence_length
        self.device = torch.device(device)
        self.pipe = HunyuanVideoImageToVideoPipeline(
            text_encoder=LlavaForConditionalGeneration.from_pretrained(encoder_dir / "text_encoder", torch_dtype=dtype, **local),
            tokenizer=load_llava_tokenizer(encoder_dir / "tokenizer"),
            transformer=None, vae=None, scheduler=None,
            text_encoder_2=CLIPTextModel.from_pretrained(encoder_dir / "text_encoder_2", torch_dtype=dtype, **local),
            tokenizer_2=CLIPTokenizer.from_pretrained(encoder_dir / "tokenizer_2", **local),
            image_processor=CLIPImageProcessor.from_pretrained(encoder_dir / "image_processor", **local),
        ).to(self.device)

    @torch.no_grad()
    def __call__(self, prompt: str, image: torch.Tensor) -> PromptEmbeddings:
        from PIL import Image

        pil = Image.fromarray(image_pixels(image).permute(1, 2, 0).numpy())
        embeds, pooled, mask = self.pipe.encode_prompt(
            image=pil, prompt=[prompt], device=self.device, max_sequence_length=self.max_sequence_length,
            image_embed_interleave=2)
        return PromptEmbeddings(embeds=embeds, mask=mask, pooled=pooled)


EncoderFactory = Callable[[], Callable[[str, torch.Tensor], PromptEmbeddings]]


def get_text_conditioning(
    prompt: str,
    negative_prompt: Optional[str],
    image: Optional[torch.Tensor],
    *,
    use_negative: bool,
    prompt_embeds_path: Optional[str] = None,
    cache_dir: Optional[str] = None,
    encoder_id: str = "",
    encoder_factory: Optional[EncoderFactory] = None,
) -> TextConditioning:
    """Prompt (+ negative) embeddings: from ``prompt_embeds_path``, else the cache, else the encoders.

    ``image [3, H, W]`` in [0, 1] is the picture the I2V encoder sees with the prompt (Voyager: the
    reference composite); the negative prompt is encoded with a black image of the same size, as
    released. ``encoder_factory()`` builds the encoder (called only on a cache miss; the encoder is
    dropped right after use).
    """
    if prompt_embeds_path:
        cond = load_prompt_embeddings(prompt_embeds_path)
        if use_negative and cond.negative is None:
            raise InputError(f"{prompt_embeds_path}: has no negative embeddings but guidance_scale != 1")
        return cond
    negative_prompt = DEFAULT_NEGATIVE_PROMPT if negative_prompt is None else negative_prompt
    key = cache_key(prompt, negative_prompt if use_negative else None, image, encoder_id)
    cache_file = Path(cache_dir).expanduser() / f"{key}.pt" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        return load_prompt_embeddings(cache_file)
    if encoder_factory is None:
        raise MissingDependencyError("no text encoder available: set voyager.text_encoder_dir / model_dir or voyager.prompt_embeds")
    encoder = encoder_factory()
    positive = encoder(prompt, image)
    black = None if image is None else torch.zeros_like(image)  # the released negative pass sees a black image
    negative = encoder(negative_prompt, black) if use_negative else None
    del encoder
    cond = TextConditioning(positive=positive, negative=negative)
    if cache_file is not None:
        save_prompt_embeddings(cache_file, cond, meta={"prompt": prompt, "negative_prompt": negative_prompt,
                                                      "encoder": encoder_id})
    return cond


def pad_to_length(emb: PromptEmbeddings, length: int) -> PromptEmbeddings:
    """Right-pad the token axis to ``length`` with masked zeros (to batch prompts of different lengths)."""
    extra = length - emb.embeds.shape[1]
    if extra <= 0:
        return emb
    embeds = torch.cat([emb.embeds, emb.embeds.new_zeros(emb.embeds.shape[0], extra, emb.embeds.shape[2])], dim=1)  # [1, length, D]
    mask = torch.cat([emb.mask, emb.mask.new_zeros(emb.mask.shape[0], extra)], dim=1)  # [1, length]
    return PromptEmbeddings(embeds=embeds, mask=mask, pooled=emb.pooled)
