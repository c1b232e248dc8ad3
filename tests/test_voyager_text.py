"""Prompt embeddings: disk cache keyed by prompt + encoder + image, and the --prompt-embeds file."""

from __future__ import annotations

import pytest
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.models.text import (
    PromptEmbeddings,
    TextConditioning,
    get_text_conditioning,
    load_prompt_embeddings,
    save_prompt_embeddings,
)


class CountingEncoder:
    """Stands in for LLaVA + CLIP: embeddings derived from the prompt length, counts calls."""

    calls = 0
    built = 0

    def __init__(self):
        CountingEncoder.built += 1

    def __call__(self, prompt: str, image: torch.Tensor) -> PromptEmbeddings:
        CountingEncoder.calls += 1
        n = len(prompt) % 7 + 2
        return PromptEmbeddings(torch.full((1, n, 16), float(len(prompt))), torch.ones(1, n, dtype=torch.long),
                                torch.full((1, 8), float(image.mean())))


def test_cache_hit_skips_the_encoder(tmp_path):
    CountingEncoder.calls = CountingEncoder.built = 0
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    kwargs = dict(use_negative=True, cache_dir=str(tmp_path), encoder_id="enc-a", encoder_factory=CountingEncoder)
    first = get_text_conditioning("a room", None, image, **kwargs)
    assert (CountingEncoder.built, CountingEncoder.calls) == (1, 2)  # positive + default negative
    second = get_text_conditioning("a room", None, image, **kwargs)
    assert (CountingEncoder.built, CountingEncoder.calls) == (1, 2)  # cache hit: encoder never built
    torch.testing.assert_close(second.positive.embeds, first.positive.embeds)
    torch.testing.assert_close(second.negative.pooled, first.negative.pooled)
    # any change of prompt, image or encoder is a miss
    get_text_conditioning("a garden", None, image, **kwargs)
    get_text_conditioning("a room", None, image.flip(-1), **kwargs)
    get_text_conditioning("a room", None, image, **{**kwargs, "encoder_id": "enc-b"})
    assert CountingEncoder.built == 4


def test_prompt_embeds_file_is_used_without_encoder(tmp_path):
    cond = TextConditioning(positive=PromptEmbeddings(torch.randn(1, 4, 16), torch.ones(1, 4, dtype=torch.long),
                                                      torch.randn(1, 8)), negative=None)
    path = tmp_path / "embeds.pt"
    save_prompt_embeddings(path, cond)
    loaded = get_text_conditioning("ignored", None, None, use_negative=False, prompt_embeds_path=str(path))
    torch.testing.assert_close(loaded.positive.embeds, cond.positive.embeds)
    with pytest.raises(InputError, match="negative"):
        get_text_conditioning("ignored", None, None, use_negative=True, prompt_embeds_path=str(path))
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(InputError):
        load_prompt_embeddings(tmp_path / "bad.pt")
