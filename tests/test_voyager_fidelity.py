"""The Voyager backend feeds the model what the released inference feeds it (issue 12), on tiny random models."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from voyager_pipe.camera.cameras import Cameras
from voyager_pipe.errors import InputError
from voyager_pipe.generate.base import ClipCondition
from voyager_pipe.generate.voyager import VoyagerGenerator
from voyager_pipe.models.conditions import composite_image, normalize_depth, normalize_depth_with, prepare_reference
from voyager_pipe.models.config import VoyagerConfig
from voyager_pipe.models.text import PromptEmbeddings, TextConditioning, cache_key, get_text_conditioning
from voyager_pipe.testing.voyager import build_tiny_components, save_tiny_release, tiny_text_conditioning

SIZE = 16


def _cameras(num: int, size: int = SIZE) -> Cameras:
    K = torch.tensor([[size, 0, size / 2], [0, size, size / 2], [0, 0, 1]], dtype=torch.float64).expand(num, 3, 3).clone()
    w2c = torch.eye(4, dtype=torch.float64).repeat(num, 1, 1)  # [N, 4, 4]
    return Cameras(K=K, w2c=w2c, width=size, height=size)


def _condition(frames: int = 5, size: int = SIZE, seed: int = 0) -> ClipCondition:
    gen = torch.Generator().manual_seed(seed)
    rgb = torch.rand(frames, 3, size, size, generator=gen)  # [T, 3, H, W]
    depth = 1 + 2 * torch.rand(frames, 1, size, size, generator=gen)  # [T, 1, H, W]
    mask = torch.rand(frames, 1, size, size, generator=gen) > 0.25  # [T, 1, H, W]
    mask[0, :, : size // 2] = False  # frame 0 sees only the lower half: its depth range differs from the input's
    reference_depth = 0.5 + 8 * torch.rand(1, size, size, generator=gen)  # [1, H, W] wider than the render's
    return ClipCondition(rgb=rgb * mask, depth=depth * mask, mask=mask, cameras=_cameras(frames, size),
                         reference_rgb=rgb[0], reference_depth=reference_depth)


def _generator(text=None, **kwargs) -> VoyagerGenerator:
    comps = build_tiny_components(seed=0)
    return VoyagerGenerator(comps.transformer, comps.vae, text or tiny_text_conditioning(), **kwargs)


def _model_inputs(gen: VoyagerGenerator) -> list[dict]:
    seen: list[dict] = []
    gen.transformer.register_forward_pre_hook(lambda m, a, k: seen.append(dict(k)), with_kwargs=True)
    return seen


# ---------------------------------------------------------------- 1. text conditioning images
def test_text_encoder_sees_the_reference_composite_and_black_for_the_negative():
    images = []

    class RecordingEncoder:
        def __call__(self, prompt, image):
            images.append((prompt, image.clone()))
            return tiny_text_conditioning().positive

    seen_by_provider = []

    def provider(image):
        seen_by_provider.append(image)
        return get_text_conditioning("a room", None, image, use_negative=True, encoder_factory=RecordingEncoder)

    gen = _generator(text=provider, guidance_scale=6.0)
    cond = _condition()
    gen.denoise(torch.randn(gen.latent_shape(5, SIZE, SIZE)), gen.prepare(cond), 1.0, 0.0, 1, torch.Generator().manual_seed(0))
    frame0_range = normalize_depth(cond.depth[:1], cond.mask[:1])[1]
    composite = composite_image(prepare_reference(cond.reference_rgb, cond.reference_depth, frame0_range)[0])
    assert composite.shape == (3, 2 * SIZE + 16, SIZE)  # RGB, band, depth picture
    assert len(seen_by_provider) == 1 and torch.equal(seen_by_provider[0], composite)
    (prompt, positive_image), (negative, negative_image) = images
    assert prompt == "a room" and torch.equal(positive_image, composite)
    assert negative != prompt and negative_image.shape == composite.shape and not negative_image.any()  # black


def test_prompt_cache_key_changed_with_the_conditioning_scheme(tmp_path):
    """An embedding cached by the previous scheme (RGB image for both prompts) is never reused."""
    import hashlib

    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    old_digest = hashlib.sha256()
    old_digest.update(json.dumps({"prompt": "p", "negative": None, "encoder": "e"}).encode())
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    old_digest.update(str(tuple(pixels.shape)).encode() + pixels.numpy().tobytes())
    old_key = old_digest.hexdigest()[:32]
    assert cache_key("p", None, image, "e") != old_key
    from voyager_pipe.models.text import save_prompt_embeddings

    stale = TextConditioning(positive=PromptEmbeddings(torch.zeros(1, 2, 4), torch.ones(1, 2), torch.zeros(1, 3)), negative=None)
    save_prompt_embeddings(tmp_path / f"{old_key}.pt", stale)
    built = []

    def factory():
        built.append(1)
        return lambda prompt, image: PromptEmbeddings(torch.ones(1, 2, 4), torch.ones(1, 2), torch.ones(1, 3))

    cond = get_text_conditioning("p", None, image, use_negative=False, cache_dir=str(tmp_path), encoder_id="e",
                                 encoder_factory=factory)
    assert built == [1] and bool((cond.positive.embeds == 1).all())


def test_byte_level_tokenizer_tokenizes_as_released(tmp_path):
    """A LLaMA-3 style byte-level BPE folder tokenizes exactly as its tokenizer.json (the released AutoTokenizer)."""
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from voyager_pipe.models.text import load_llava_tokenizer

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["A quiet living room with a sofa, soft daylight.", "Ünïcode café  naïve\n\ttabs"] * 40, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
        "model_max_length": 1000}))
    ours = load_llava_tokenizer(tmp_path)
    for text in ["A quiet living room, soft daylight.", "Ünïcode café  naïve\n\ttabs", "  leading spaces"]:
        assert ours(text).input_ids == tok.encode(text).ids, text
    assert ours.padding_side == "right"


# ---------------------------------------------------------------- 2. VAE tiling through the loading path
@pytest.fixture(scope="module")
def converted_tiny(tmp_path_factory):
    from voyager_pipe.models.convert import convert_checkpoint

    root = tmp_path_factory.mktemp("release")
    state = save_tiny_release(root / "ckpts")
    convert_checkpoint(root / "ckpts", root / "model", dtype="bf16", progress=False)
    return root / "model", state


def _load(model_dir, **overrides):
    from voyager_pipe.models.loading import configure_components, load_components

    cfg = VoyagerConfig(model_dir=str(model_dir), **{"dtype": "fp32", "vae_dtype": "fp32", **overrides})
    components = load_components(cfg, "cpu")
    configure_components(components, cfg)
    return components


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("frames", [21, 49])
def test_vae_encode_decode_never_split_in_time_below_64_frames(converted_tiny, frames):
    import copy

    model_dir, _ = converted_tiny
    index = json.loads((model_dir / "model_index.json").read_text())
    assert index["_voyager"]["vae_tiling"]["tile_sample_min_num_frames"] == 64
    vae = _load(model_dir).vae  # tiling enabled (voyager.vae_tiling default)
    reference = copy.deepcopy(vae)  # the same weights, no split at all
    reference.use_framewise_encoding = reference.use_framewise_decoding = reference.use_tiling = False
    video = torch.rand(1, 3, frames, 16, 24, generator=torch.Generator().manual_seed(frames)) * 2 - 1  # [1, 3, T, H, W]
    with torch.no_grad():
        ours, expected = vae.encode(video).latent_dist.mean, reference.encode(video).latent_dist.mean
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(vae.decode(expected).sample, reference.decode(expected).sample, rtol=1e-5, atol=1e-6)


def test_vae_tile_sizes_follow_the_official_config():
    from voyager_pipe.models.converted import vae_tiling_from_official

    assert vae_tiling_from_official({"sample_size": 256, "sample_tsize": 64}) == {
        "tile_sample_min_height": 256, "tile_sample_min_width": 256, "tile_sample_min_num_frames": 64,
        "tile_sample_stride_height": 192, "tile_sample_stride_width": 192, "tile_sample_stride_num_frames": 48}
    assert vae_tiling_from_official({"sample_size": [128, 96], "sample_tsize": 32})["tile_sample_stride_width"] == 72


# ---------------------------------------------------------------- 3. and 4. precision
def test_fp32_modules_after_convert_bf16_and_loading(converted_tiny):
    from safetensors import safe_open

    model_dir, official = converted_tiny
    stored = {}
    for shard in (model_dir / "transformer").glob("*.safetensors"):
        with safe_open(shard, "pt") as f:
            stored.update({k: f.get_tensor(k) for k in f.keys()})
    for name, source in [("proj_out.weight", "final_layer.linear.weight"), ("context_proj_double.weight", "zero_linear1.weight"),
                         ("context_proj_single.bias", "zero_linear2.bias")]:
        assert stored[name].dtype == torch.float32 and torch.equal(stored[name], official[source])
    assert stored["norm_out.linear.weight"].dtype == torch.bfloat16  # the final layer's modulation stays bf16
    assert stored["single_transformer_blocks.0.proj_out.weight"].dtype == torch.bfloat16
    transformer = _load(model_dir, dtype="bf16").transformer
    assert transformer.dtype == torch.bfloat16
    for name in ("proj_out", "context_proj_double", "context_proj_single"):
        assert getattr(transformer, name).weight.dtype == torch.float32
    assert torch.equal(transformer.proj_out.weight, official["final_layer.linear.weight"])
    assert transformer.norm_out.linear.weight.dtype == torch.bfloat16


def test_bf16_transformer_runs_with_fp32_modules_and_float32_timestep(converted_tiny):
    """The timestep reaches both time embeddings as float32; fp32 linears take bf16 activations (autocast, as released)."""
    model_dir, _ = converted_tiny
    components = _load(model_dir, dtype="bf16")
    text = TextConditioning(positive=PromptEmbeddings(torch.randn(1, 4, 24), torch.ones(1, 4), torch.randn(1, 8)),
                            negative=PromptEmbeddings(torch.randn(1, 3, 24), torch.ones(1, 3), torch.randn(1, 8)))
    gen = VoyagerGenerator(components.transformer, components.vae, text, shift=7.0)
    timesteps = []
    for module in (gen.transformer.time_text_embed.time_proj, gen.transformer.context_embedder.time_text_embed.time_proj):
        module.register_forward_pre_hook(lambda m, args: timesteps.append(args[0].clone()))
    cond = _condition()
    out = gen.denoise(torch.randn(gen.latent_shape(5, SIZE, SIZE)), gen.prepare(cond), 1.0, 0.0, 3, torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all()
    from voyager_pipe.generate.sampler import flow_sigmas

    expected = (flow_sigmas(1.0, 0.0, 3, 7.0)[:-1] * 1000.0).tolist()
    assert len(timesteps) == 6 and all(t.dtype == torch.float32 for t in timesteps)
    assert [float(t[0]) for t in timesteps[::2]] == pytest.approx(expected, abs=0)  # exact, not bf16-rounded
    # outside autocast too: the hooks cast bf16 activations into the fp32 linears and back
    x = torch.randn(2, 50, 2, 6, 2, dtype=torch.bfloat16)
    with torch.no_grad():
        plain = gen.transformer(x, torch.tensor([500.0, 500.0]), torch.randn(2, 3, 24, dtype=torch.bfloat16),
                                torch.ones(2, 3), torch.randn(2, 8, dtype=torch.bfloat16)).sample
    assert plain.dtype == torch.bfloat16 and torch.isfinite(plain.float()).all()


# ---------------------------------------------------------------- 5. posterior sample vs mode
def test_condition_latents_sample_from_the_run_generator_or_take_the_mode():
    def condition_channels(vae_latents, seed):
        gen = _generator(vae_latents=vae_latents, guidance_scale=1.0)
        seen = _model_inputs(gen)
        cond = _condition()
        gen.denoise(torch.zeros(gen.latent_shape(5, SIZE, SIZE)), gen.prepare(cond), 0.5, 0.0, 1,
                    torch.Generator().manual_seed(seed))
        return seen[0]["hidden_states"][0, 16:49]  # reference latent, first-frame mask, condition latent

    mode_a, mode_b = condition_channels("mode", 0), condition_channels("mode", 1)
    sample_a, sample_a2, sample_b = condition_channels("sample", 0), condition_channels("sample", 0), condition_channels("sample", 1)
    assert torch.equal(mode_a, mode_b)  # the mode ignores the generator
    assert torch.equal(sample_a, sample_a2)  # reproducible with the run's seed
    assert not torch.equal(sample_a, sample_b) and not torch.allclose(sample_a, mode_a)
    # a draw around the mode: mean + std * eps, scaled
    assert float((sample_a - mode_a).abs().max()) < 10 * float((sample_a - mode_a).abs().mean()) + 1e-3


# ---------------------------------------------------------------- 6. reference depth range
def test_reference_depth_is_normalised_with_render_frame_0_range():
    images = []
    gen = _generator(text=lambda image: (images.append(image), tiny_text_conditioning())[1], guidance_scale=1.0)
    cond = _condition()
    gen.denoise(torch.zeros(gen.latent_shape(5, SIZE, SIZE)), gen.prepare(cond), 0.5, 0.0, 1)
    depth_picture = images[0][0, -SIZE:]  # [H, W] the depth half of the composite the text encoder saw
    frame0_range = normalize_depth(cond.depth[:1], cond.mask[:1])[1]
    expected = normalize_depth_with(cond.reference_depth[None], frame0_range)[0, 0].clamp(0, 1)  # [H, W]
    torch.testing.assert_close(depth_picture, expected, atol=1e-6, rtol=0)
    own = normalize_depth(cond.reference_depth[None])[0][0, 0].clamp(0, 1)  # its own (p2, p98): the old behaviour
    assert float((own - expected).abs().max()) > 0.1


# ---------------------------------------------------------------- 7. resizing kernels
def test_render_to_model_size_bicubic_rgb_and_mask_linear_depth():
    videos = []
    gen = _generator(guidance_scale=1.0, vae_latents="mode", size=(SIZE, SIZE))
    encode = gen.vae.encode
    gen.vae.encode = lambda video, *a, **k: (videos.append(video.clone()), encode(video, *a, **k))[1]
    seen = _model_inputs(gen)
    cond = _condition(size=2 * SIZE)  # rendered at 32x32, the model runs at 16x16
    gen.denoise(torch.zeros(gen.latent_shape(5, 2 * SIZE, 2 * SIZE)), gen.prepare(cond), 0.5, 0.0, 1)
    composite = videos[0][0].permute(1, 0, 2, 3)  # [T, 3, 2h+16, w] the condition composite handed to the VAE
    visible = cond.mask & (cond.depth > 0)
    rgb = F.interpolate((cond.rgb * visible).float(), size=(SIZE, SIZE), mode="bicubic", align_corners=False).clamp(0, 1)
    torch.testing.assert_close(composite[:, :, :SIZE], rgb * 2 - 1, atol=1e-6, rtol=0)
    normalized = normalize_depth(cond.depth, visible)[0]  # at the render size (as the data engine writes it)
    depth = F.interpolate(normalized, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    torch.testing.assert_close(composite[:, :1, -SIZE:], depth * 2 - 1, atol=1e-6, rtol=0)
    # the visibility channel is the min-pool of the bicubic mask: 2 min - 1 over each 4x8x8 block
    mask = F.interpolate(visible.float(), size=(SIZE, SIZE), mode="bicubic", align_corners=False).clamp(0, 1)  # [T, 1, h, w]
    latent_mask = seen[0]["hidden_states"][0, 49]  # [T_lat, 6, 2]
    frames = torch.cat([mask[:1].expand(3, -1, -1, -1), mask])  # frame 0 is its own block
    pooled = -F.max_pool3d(-frames.permute(1, 0, 2, 3)[None], (4, 8, 8))[0, 0]  # [T_lat, 2, 2] min per block
    torch.testing.assert_close(latent_mask[:, :2], 2 * pooled - 1, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- 8. samplers on the backend
def test_euler_through_the_diffusers_scheduler_equals_the_previous_loop_bit_for_bit():
    from voyager_pipe.generate.sampler import flow_sigmas

    gen = _generator(guidance_scale=6.0, vae_latents="mode")
    seen = _model_inputs(gen)
    cond = _condition()
    x = torch.randn(gen.latent_shape(5, SIZE, SIZE), generator=torch.Generator().manual_seed(4))  # [t, 16, h, w]
    ours = gen.denoise(x, gen.prepare(cond), 0.8, 0.0, 4)
    # the previous hand-written loop, on the same network calls: x <- x + (s_{i+1} - s_i) * v (python-float dt)
    channels = seen[0]["hidden_states"][:1, 16:]  # [1, 34, t, h, w] the conditioning channels (constant)
    text = seen[0]
    sigmas = flow_sigmas(0.8, 0.0, 4, 7.0).double().tolist()
    y = x.permute(1, 0, 2, 3)[None].float()  # [1, 16, t, h, w]
    for i in range(4):
        batch = torch.cat([y, channels], dim=1).expand(2, -1, -1, -1, -1)
        with torch.no_grad():
            out = gen.transformer(hidden_states=batch, timestep=torch.full((2,), sigmas[i] * 1000.0),
                                  encoder_hidden_states=text["encoder_hidden_states"],
                                  encoder_attention_mask=text["encoder_attention_mask"],
                                  pooled_projections=text["pooled_projections"], return_dict=False)[0].float()
        uncond, cond_out = out.chunk(2)
        y = y + (sigmas[i + 1] - sigmas[i]) * (uncond + 6.0 * (cond_out - uncond))
    assert torch.equal(ours, y[0].permute(1, 0, 2, 3))


@pytest.mark.parametrize("sampler,calls", [("heun", 2 * 3 - 1), ("unipc", 3), ("dpmpp", 3)])
def test_generate_sampler_is_used_by_the_backend(sampler, calls):
    cond = _condition()
    x = torch.randn(8 * 0 + 2, 16, 6, 2, generator=torch.Generator().manual_seed(5))  # [t, 16, h, w]
    results = {}
    for name in ("euler", sampler):
        gen = _generator(guidance_scale=1.0, vae_latents="mode", sampler=name)
        seen = _model_inputs(gen)
        results[name] = gen.denoise(x, gen.prepare(cond), 1.0, 0.0, 3)
        if name == sampler:
            assert len(seen) == calls
    assert not torch.equal(results["euler"], results[sampler])


def test_unknown_sampler_refused_by_the_backend():
    with pytest.raises(InputError, match="generate.sampler"):
        _generator(sampler="FlowMatchEulerDiscreteScheduler")


# ---------------------------------------------------------------- unreadable checkpoints (issue 14's family)
@pytest.mark.parametrize("damage", ["random_bytes", "truncated", "not_a_state_dict", "wrong_shape"])
def test_convert_refuses_unreadable_files_naming_them(tmp_path, damage):
    from voyager_pipe.models.convert import convert_checkpoint
    from voyager_pipe.models.official_layout import VAE_FILE

    src = tmp_path / "ckpts"
    save_tiny_release(src)
    vae_file = src / VAE_FILE
    if damage == "random_bytes":
        vae_file.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    elif damage == "truncated":
        vae_file.write_bytes(vae_file.read_bytes()[:1000])
    elif damage == "not_a_state_dict":
        torch.save([1, 2, 3], vae_file)
    else:
        state = torch.load(vae_file, weights_only=True)
        state["decoder.conv_out.conv.weight"] = torch.zeros(3, 3)
        torch.save(state, vae_file)
    with pytest.raises(InputError) as info:
        convert_checkpoint(src, tmp_path / "dst", progress=False)
    assert str(vae_file) in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "dst").exists() and not (tmp_path / "dst.partial").exists()


@pytest.mark.parametrize("damage", ["truncated_weights", "random_weights", "bad_index_version", "no_index"])
def test_loading_refuses_damaged_converted_folders_naming_the_file(converted_tiny, tmp_path, damage):
    import shutil

    from voyager_pipe.models.loading import load_components

    model_dir = tmp_path / "model"
    shutil.copytree(converted_tiny[0], model_dir)
    weights = sorted((model_dir / "vae").glob("*.safetensors"))[0]
    index_file = model_dir / "model_index.json"
    if damage == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[:500])
    elif damage == "random_weights":
        weights.write_bytes(bytes(range(256)) * 8)
    elif damage == "bad_index_version":
        index = json.loads(index_file.read_text())
        index["_voyager"]["version"] = 1
        index_file.write_text(json.dumps(index))
    else:
        index_file.unlink()
    with pytest.raises(InputError) as info:
        load_components(VoyagerConfig(model_dir=str(model_dir), dtype="fp32", vae_dtype="fp32"), "cpu")
    named = {"truncated_weights": "vae", "random_weights": "vae", "bad_index_version": "model_index.json",
             "no_index": "model_index.json"}[damage]
    assert named in str(info.value) and str(model_dir) in str(info.value)


def test_convert_output_folder_guard(tmp_path):
    """convert writes through the one output-folder guard: overwrite only with --overwrite, never a foreign folder."""
    from voyager_pipe.models.convert import convert_checkpoint

    src = tmp_path / "ckpts"
    save_tiny_release(src)
    convert_checkpoint(src, tmp_path / "model", progress=False)
    with pytest.raises(InputError, match="--overwrite"):
        convert_checkpoint(src, tmp_path / "model", progress=False)
    convert_checkpoint(src, tmp_path / "model", progress=False, overwrite=True)
    assert json.loads((tmp_path / "model" / "model_index.json").read_text())["_voyager"]["version"] == 2
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not written by voyager-pipe"):
        convert_checkpoint(src, foreign, progress=False, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(InputError, match="contains the input"):
        convert_checkpoint(src, tmp_path, progress=False, overwrite=True)
