"""Memory and speed settings of the Voyager networks, all on diffusers' / accelerate's own hooks.

=====================  =======================================================================
``voyager.offload``    none | model (``enable_model_cpu_offload``) | group (``enable_group_offload``,
                       block level, CUDA-stream prefetch) | sequential (``enable_sequential_cpu_offload``)
``voyager.weights``    bf16 | fp8 (``enable_layerwise_casting``: float8_e4m3fn storage, compute in
                       ``voyager.dtype``; embeddings, norms, final layer, context projections kept)
``voyager.cache``      none | first_block | mag | taylorseer | faster (``enable_cache``), with
                       ``voyager.cache_threshold`` and the method's own knobs in ``voyager.cache_options``
``voyager.compile``    none | regional (``compile_repeated_blocks``) | full (``torch.compile``)
``attention_backend``  checked against the diffusers backends that run here (one probe call each)
=====================  =======================================================================

:class:`VoyagerRuntime` owns where the networks live and how the transformer is called (cache
context, current timestep, per-denoise cache reset). A network reaches the device on its first use,
so the text encoders run (and are released) before the transformer occupies the GPU.

:func:`estimate_memory` predicts the peak of a denoising step (and of the VAE) from parameter bytes
and activation sizes; :func:`check_fits` refuses a run that does not fit with one line naming
settings that would (docs/voyager-memory.md derives the activation count).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from voyager_pipe.device import DTYPES
from voyager_pipe.errors import InputError, MissingDependencyError
from voyager_pipe.models.config import VoyagerConfig

GB = 1e9
FP8_STORAGE = torch.float8_e4m3fn
#: Name patterns (``re.search`` on module names) kept out of fp8 storage, on top of diffusers' defaults,
#: the model's ``_skip_layerwise_casting_patterns`` and its fp32 modules (:func:`fp8_keep_patterns`):
#: embeddings and norms (incl. the adaptive-norm modulation linears, as diffusers does).
FP8_KEEP_PATTERNS = ("time_text_embed", "x_embedder", "condition_embedder", "context_embedder", "norm")
#: Cache-context name of the one batched (unconditional, conditional) transformer call per step.
CACHE_CONTEXT = "cfg_batch"
#: Upper bound of the text tokens of one prompt: 256 prompt tokens + 576 / 2 interleaved LLaVA image tokens.
MAX_TEXT_TOKENS = 544
#: Inputs FasterCache splits into (unconditional, conditional) halves when it skips the unconditional pass.
FASTER_CACHE_BATCHED_INPUTS = (
    "hidden_states", "encoder_hidden_states", "timestep", "encoder_attention_mask", "pooled_projections")
#: Activation count of one transformer step in units of ``B * S * D`` compute-dtype values (S = image +
#: text tokens): the single-stream block's peak (MLP in 4 + activated MLP 4 + [attention | MLP] concat 5
#: + q, k, v 3 + normed input 1 + block input 1 + output 1 = 19, see docs/voyager-memory.md) plus the
#: residual stream kept by the model loop (1).
STEP_ACTIVATION_UNITS = 20
#: Extra units held by the context branch: its double and single residuals (image) + text residual.
CONTEXT_ACTIVATION_UNITS = 3
#: Float32 RoPE temporaries of q and k on the image tokens (2 tensors x 2 for float32 in bf16 units).
ROPE_FP32_UNITS = 4


def release_accelerator_memory() -> None:
    """Return freed CUDA blocks to the driver (after the text encoders are dropped, before the transformer moves in)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- settings
def choices(name: str) -> tuple[str, ...]:
    """Allowed values of a ``Literal`` field of :class:`VoyagerConfig` (one owner: the config)."""
    return typing.get_args(typing.get_type_hints(VoyagerConfig)[name])


def check_choice(cfg: VoyagerConfig, name: str) -> str:
    value = getattr(cfg, name)
    allowed = choices(name)
    if value not in allowed:
        raise InputError(f"voyager.{name}: {value!r} is not one of {list(allowed)}")
    return value


def check_settings(cfg: VoyagerConfig) -> None:
    """Raise InputError for an unknown offload / weights / cache / compile value or bad cache options."""
    for name in ("offload", "weights", "cache", "compile"):
        check_choice(cfg, name)
    if cfg.offload_blocks_per_group < 1:
        raise InputError(f"voyager.offload_blocks_per_group: {cfg.offload_blocks_per_group} must be >= 1")
    make_cache_config(cfg, lambda: 0.0, cfg_batched=True)  # validates threshold and options


# --------------------------------------------------------------------------- attention backends
def _probe_attention_backend(name: str, device: torch.device, dtype: torch.dtype) -> Optional[str]:
    """None when diffusers' backend ``name`` runs a masked attention here, else why not."""
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
        dispatch_attention_fn,
    )

    try:
        backend = AttentionBackendName(name)
        _check_attention_backend_requirements(backend)
        query = torch.randn(2, 8, 2, 64, device=device, dtype=dtype)  # [B, S, H, Dh]
        mask = torch.ones(2, 1, 1, 8, dtype=torch.bool, device=device)  # [B, 1, 1, S] (Voyager pads the text)
        mask[0, ..., 6:] = False
        out = dispatch_attention_fn(query, query, query, attn_mask=mask, backend=backend)
        if not bool(torch.isfinite(out).all()):
            return "non-finite output"
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
        return f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    return None


def usable_attention_backends(device: torch.device | str, dtype: torch.dtype = torch.bfloat16) -> list[str]:
    """The diffusers attention backends that run Voyager's masked attention on ``device`` here."""
    from diffusers.models.attention_dispatch import AttentionBackendName

    device = torch.device(device)
    return [b.value for b in AttentionBackendName if _probe_attention_backend(b.value, device, dtype) is None]


def check_attention_backend(name: Optional[str], device: torch.device | str, dtype: torch.dtype = torch.bfloat16) -> Optional[str]:
    """``name`` if it is usable on ``device``, else InputError listing those that are."""
    if name is None:
        return None
    from diffusers.models.attention_dispatch import AttentionBackendName

    known = [b.value for b in AttentionBackendName]
    why = "not a diffusers backend" if name not in known else _probe_attention_backend(name, torch.device(device), dtype)
    if why is not None:
        usable = usable_attention_backends(device, dtype)
        raise InputError(f"voyager.attention_backend: {name!r} is not usable on {torch.device(device)} ({why}); "
                         f"usable here: {usable}")
    return name


# --------------------------------------------------------------------------- weights
def fp8_keep_patterns(transformer: Optional[torch.nn.Module] = None) -> tuple[str, ...]:
    """All module-name patterns that keep their dtype under fp8 storage (for :func:`apply_weight_format`).

    Besides :data:`FP8_KEEP_PATTERNS` and diffusers' defaults: the fp32 modules of the transformer
    (final linear, zero-initialised context projections: ``transformer.FP32_MODULES``), exact names.
    """
    from diffusers.hooks.layerwise_casting import DEFAULT_SKIP_MODULES_PATTERN

    from voyager_pipe.models.transformer import FP32_MODULES

    model_patterns = tuple(getattr(transformer, "_skip_layerwise_casting_patterns", None) or ()) + tuple(
        getattr(transformer, "_keep_in_fp32_modules", None) or ())
    return (tuple(DEFAULT_SKIP_MODULES_PATTERN) + FP8_KEEP_PATTERNS + tuple(f"^{name}$" for name in FP32_MODULES)
            + model_patterns)


def apply_weight_format(transformer: torch.nn.Module, weights: str, compute_dtype: torch.dtype) -> None:
    """``fp8``: diffusers' layerwise casting (fp8 storage, ``compute_dtype`` compute) on the transformer."""
    if weights not in choices("weights"):
        raise InputError(f"voyager.weights: {weights!r} is not one of {list(choices('weights'))}")
    if weights == "bf16":
        return
    transformer.enable_layerwise_casting(storage_dtype=FP8_STORAGE, compute_dtype=compute_dtype,
                                         skip_modules_pattern=fp8_keep_patterns())


# --------------------------------------------------------------------------- step caches
def _register_block_metadata() -> None:
    """Tell diffusers' block-cache hooks how the Voyager blocks return (hidden, encoder hidden) states."""
    from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry

    from voyager_pipe.models.transformer import VoyagerSingleTransformerBlock, VoyagerTransformerBlock

    for block in (VoyagerTransformerBlock, VoyagerSingleTransformerBlock):
        TransformerBlockRegistry.register(block, TransformerBlockMetadata(
            return_hidden_states_index=0, return_encoder_hidden_states_index=1))


def _cache_classes() -> dict[str, type]:
    from diffusers.hooks import FasterCacheConfig, FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    return {"first_block": FirstBlockCacheConfig, "mag": MagCacheConfig, "taylorseer": TaylorSeerCacheConfig,
            "faster": FasterCacheConfig}


#: Options the runtime sets itself (not user knobs).
_MANAGED_CACHE_OPTIONS = {
    "faster": {"current_timestep_callback", "tensor_format", "is_guidance_distilled",
               "_unconditional_conditional_input_kwargs_identifiers", "attention_weight_callback",
               "low_frequency_weight_callback", "high_frequency_weight_callback"},
    "taylorseer": {"taylor_factors_dtype"},
}


def make_cache_config(cfg: VoyagerConfig, current_timestep: Callable[[], float], cfg_batched: bool):
    """The diffusers cache config of ``voyager.cache`` (None for ``none``); InputError for bad knobs."""
    method = check_choice(cfg, "cache")
    options = dict(cfg.cache_options or {})
    if method == "none":
        if options or cfg.cache_threshold is not None:
            raise InputError("voyager.cache_options / voyager.cache_threshold: set but voyager.cache is 'none'")
        return None
    cls = _cache_classes()[method]
    known = {f.name for f in dataclasses.fields(cls)} - _MANAGED_CACHE_OPTIONS.get(method, set())
    unknown = sorted(set(options) - known)
    if unknown:
        raise InputError(f"voyager.cache_options: {unknown} are not {cls.__name__} options; known: {sorted(known)}")
    if cfg.cache_threshold is not None:
        if "threshold" not in known:
            raise InputError(f"voyager.cache_threshold: {method} has no threshold (use voyager.cache_options: {sorted(known)})")
        options["threshold"] = float(cfg.cache_threshold)
    for name, value in list(options.items()):
        if isinstance(value, list) and name != "mag_ratios":
            options[name] = tuple(value)  # YAML lists -> the tuples diffusers expects (timestep ranges)
    if method == "mag" and options.get("mag_ratios") is None and not options.get("calibrate", False):
        raise InputError("voyager.cache_options.mag_ratios: MagCache needs the model's magnitude ratios; run one clip "
                         "with voyager.cache_options: {calibrate: true} (prints them), then pass them here")
    if method == "taylorseer":
        options["taylor_factors_dtype"] = DTYPES[cfg.dtype]  # the compute dtype (float32 factors double the state)
    if method == "faster":
        options.update(current_timestep_callback=current_timestep, tensor_format="BCFHW",
                       is_guidance_distilled=not cfg_batched,
                       _unconditional_conditional_input_kwargs_identifiers=list(FASTER_CACHE_BATCHED_INPUTS),
                       attention_weight_callback=lambda _module: 0.5)
    try:
        return cls(**options)
    except (TypeError, ValueError) as exc:
        raise InputError(f"voyager.cache_options: {exc}") from None


# --------------------------------------------------------------------------- runtime
class _OffloadContainer:
    """A minimal diffusers pipeline holding the two networks, only for its offload methods."""

    @staticmethod
    def build(transformer: torch.nn.Module, vae: torch.nn.Module):
        from diffusers import DiffusionPipeline

        class VoyagerNetworks(DiffusionPipeline):
            model_cpu_offload_seq = "transformer->vae"

            def __init__(self, transformer, vae):
                super().__init__()
                self.register_modules(transformer=transformer, vae=vae)

        return VoyagerNetworks(transformer=transformer, vae=vae)


class VoyagerRuntime:
    """Where the Voyager networks live and how the transformer is called.

    ``with runtime.use("transformer", timestep=t) as transformer:`` yields the network placed per
    ``cfg.offload`` (on first use) inside the step cache's context; ``begin_denoise(steps, latent_shape)``
    starts a new denoising trajectory (resets the cache state; checks the memory estimate once).
    """

    def __init__(self, transformer: torch.nn.Module, vae: torch.nn.Module, device: torch.device | str = "cpu",
                 cfg: Optional[VoyagerConfig] = None):
        self.cfg = cfg if cfg is not None else VoyagerConfig()
        check_settings(self.cfg)
        self.components = {"transformer": transformer, "vae": vae}
        self.device = torch.device(device)
        self.offload = self.cfg.offload
        self.cfg_batched = self.cfg.guidance_scale != 1.0
        self._placed: set[str] = set()
        self._timestep = 1000.0
        self.estimate: Optional[MemoryEstimate] = None
        self.peak_before_transformer_bytes: Optional[int] = None
        self._pipeline = None
        backend = check_attention_backend(self.cfg.attention_backend, self.device, _compute_dtype(transformer))
        if backend is not None:
            transformer.set_attention_backend(backend)
        # cache hooks first: offload hooks registered after them wrap them, so a skipped block is still
        # onloaded and offloaded in order (group offloading's prefetch chain stays intact)
        self.cache_config = make_cache_config(self.cfg, lambda: self._timestep, self.cfg_batched)
        if self.cache_config is not None:
            _register_block_metadata()
            transformer.enable_cache(self.cache_config)
            self._mag_ratios = self.cfg.cache_options.get("mag_ratios")  # as given (diffusers resamples its copy)
        self._apply_offload()
        self._apply_compile()

    # ---------------------------------------------------------------- placement
    def _apply_offload(self) -> None:
        transformer, vae = self.components["transformer"], self.components["vae"]
        if self.offload == "group":
            transformer.enable_group_offload(
                onload_device=self.device, offload_device=torch.device("cpu"), offload_type="block_level",
                num_blocks_per_group=self.cfg.offload_blocks_per_group, use_stream=self.device.type == "cuda",
                record_stream=self.device.type == "cuda")
            self._placed.add("transformer")
        elif self.offload in ("model", "sequential"):
            if self.offload == "sequential" and self.device.type == "cpu":
                raise InputError("voyager.offload: 'sequential' needs an accelerator device (accelerate's "
                                 "sequential hooks do not run with a CPU execution device); use 'none' on cpu")
            try:
                self._pipeline = _OffloadContainer.build(transformer, vae)
                if self.offload == "model":
                    self._pipeline.enable_model_cpu_offload(device=self.device)
                else:
                    self._pipeline.enable_sequential_cpu_offload(device=self.device)
            except ImportError as exc:
                raise MissingDependencyError(f"voyager.offload={self.offload} needs accelerate ({exc})") from None
            self._placed.update(self.components)

    def _place(self, name: str) -> torch.nn.Module:
        module = self.components[name]
        if name not in self._placed:
            if name == "transformer" and self.device.type == "cuda":
                self.peak_before_transformer_bytes = torch.cuda.max_memory_allocated(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
            module.to(self.device)
            self._placed.add(name)
        return module

    def _apply_compile(self) -> None:
        mode = self.cfg.compile
        transformer = self.components["transformer"]
        if mode == "regional":
            # hooks with graph breaks (caches, offload) rule out fullgraph
            transformer.compile_repeated_blocks(fullgraph=self.cache_config is None and self.offload == "none")
        elif mode == "full":
            transformer.compile()

    @contextlib.contextmanager
    def use(self, name: str, timestep: Optional[float] = None) -> Iterator[torch.nn.Module]:
        """Yield component ``name`` ready to run (transformer calls: inside the cache context at ``timestep``)."""
        module = self._place(name)
        if name != "transformer" or self.cache_config is None:
            yield module
            return
        self._timestep = float(timestep) if timestep is not None else self._timestep
        with module.cache_context(CACHE_CONTEXT):
            yield module

    def begin_denoise(self, steps: int, latent_shape: Optional[tuple[int, ...]] = None) -> None:
        """A new trajectory of ``steps`` transformer calls on latents ``[T_lat, 16, h, w]`` (or ``[1, 16, T_lat, h, w]``)."""
        if latent_shape is not None and self.estimate is None:
            frames, height, width = (latent_shape[0], latent_shape[-2], latent_shape[-1]) if len(latent_shape) == 4 \
                else (latent_shape[2], latent_shape[3], latent_shape[4])
            self.estimate = estimate_memory(self.components["transformer"], self.components["vae"], self.cfg,
                                            (frames, height, width), cfg_batched=self.cfg_batched)
            if self.cfg.memory_check:
                check_fits(self.estimate, self.device, self.cfg, lambda c: estimate_memory(
                    self.components["transformer"], self.components["vae"], c, (frames, height, width),
                    cfg_batched=self.cfg_batched))
        if self._pipeline is not None and self.offload == "model":
            for hook in getattr(self._pipeline, "_all_hooks", []):
                if hook.model is self.components["vae"]:
                    hook.offload()  # the transformer's hook does not send the VAE back by itself
        if self.cache_config is None:
            return
        transformer = self.components["transformer"]
        transformer._reset_stateful_cache()
        if self.cfg.cache == "mag" and self._mag_ratios is not None:
            from diffusers.hooks.mag_cache import nearest_interp

            self.cache_config.num_inference_steps = steps
            self.cache_config.mag_ratios = nearest_interp(torch.as_tensor(self._mag_ratios), steps)

    # ---------------------------------------------------------------- reporting
    def memory_report(self) -> dict[str, Any]:
        """Settings, the estimate and the measured peak (CUDA: ``torch.cuda.max_memory_allocated``), for run.json."""
        report: dict[str, Any] = {
            "device": str(self.device),
            "settings": {name: getattr(self.cfg, name) for name in
                         ("dtype", "weights", "offload", "cache", "cache_threshold", "compile", "attention_backend")},
        }
        if self.estimate is not None:
            report["estimate_gb"] = round(self.estimate.peak / GB, 3)
            report["estimate_parts_gb"] = {k: round(v / GB, 3) for k, v in self.estimate.parts().items()}
        if self.device.type == "cuda":
            report["measured_peak_gb"] = round(torch.cuda.max_memory_allocated(self.device) / GB, 3)
            report["measured"] = "torch.cuda.max_memory_allocated since the transformer reached the device"
            if self.peak_before_transformer_bytes is not None:
                report["peak_before_transformer_gb"] = round(self.peak_before_transformer_bytes / GB, 3)
        else:
            report["measured_peak_gb"] = None
            report["measured"] = f"not measured on {self.device.type} (no allocator peak statistics)"
        return report


def _compute_dtype(transformer: torch.nn.Module) -> torch.dtype:
    dtype = getattr(transformer, "dtype", torch.float32)
    return dtype if dtype in (torch.bfloat16, torch.float16, torch.float32) else torch.bfloat16


# --------------------------------------------------------------------------- estimate
@dataclass
class MemoryEstimate:
    """Peak device bytes of the two phases of a clip (the larger one is the peak)."""

    transformer_weights: float
    activations: float
    cache_state: float
    vae_weights: float
    vae_activations: float
    details: dict[str, float] = field(default_factory=dict)

    @property
    def denoise_peak(self) -> float:
        return self.transformer_weights + self.activations + self.cache_state + self.details.get("vae_resident", 0.0)

    @property
    def vae_peak(self) -> float:
        return self.vae_weights + self.vae_activations + self.details.get("transformer_resident", 0.0)

    @property
    def peak(self) -> float:
        return max(self.denoise_peak, self.vae_peak)

    def parts(self) -> dict[str, float]:
        return {"transformer_weights": self.transformer_weights, "activations": self.activations,
                "cache_state": self.cache_state, "vae_weights": self.vae_weights,
                "vae_activations": self.vae_activations, "denoise_peak": self.denoise_peak,
                "vae_peak": self.vae_peak}


def _bytes(module: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in list(module.parameters()) + list(module.buffers()))


def leaf_storage_bytes(transformer: torch.nn.Module, cfg: VoyagerConfig) -> dict[str, tuple[float, bool]]:
    """``{module name: (bytes, fp8)}`` of the modules holding parameters, in ``cfg``'s storage format.

    Mirrors diffusers' layerwise-casting walk (a name matching a skip pattern keeps its whole subtree;
    supported layers are cast), so it holds for a ``meta`` model built in float32 as well as for a loaded
    one. Unconverted parameters count in ``cfg.dtype`` on ``meta``, in their own dtype otherwise.
    """
    import re

    from diffusers.hooks._common import _GO_LC_SUPPORTED_PYTORCH_LAYERS

    compute_bytes = torch.empty((), dtype=DTYPES[cfg.dtype]).element_size()
    patterns = fp8_keep_patterns(transformer)
    out: dict[str, tuple[float, bool]] = {}

    def size(tensor: torch.Tensor, cast: bool) -> float:
        if cast:
            return tensor.numel() * FP8_STORAGE.itemsize
        if tensor.is_meta or not tensor.is_floating_point() or tensor.dtype == FP8_STORAGE:
            return tensor.numel() * (compute_bytes if tensor.is_floating_point() else tensor.element_size())
        return tensor.numel() * tensor.element_size()

    def visit(module: torch.nn.Module, prefix: str, keep: bool) -> None:
        keep = keep or cfg.weights != "fp8" or bool(prefix and any(re.search(p, prefix) for p in patterns))
        cast = not keep and isinstance(module, _GO_LC_SUPPORTED_PYTORCH_LAYERS)
        own = list(module.parameters(recurse=cast)) + list(module.buffers(recurse=cast))
        if own:
            out[prefix] = (float(sum(size(t, cast) for t in own)), cast)
        if not cast:
            for name, child in module.named_children():
                visit(child, f"{prefix}.{name}" if prefix else name, keep)

    visit(transformer, "", False)
    return out


def estimate_memory(transformer: torch.nn.Module, vae: Optional[torch.nn.Module], cfg: VoyagerConfig,
                    latent_size: tuple[int, int, int], *, cfg_batched: bool = True,
                    text_tokens: int = MAX_TEXT_TOKENS, device_type: str = "cuda") -> MemoryEstimate:
    """Estimate the peak bytes of one clip for ``cfg``'s settings.

    ``transformer`` may be a loaded model or a ``meta`` one (:func:`meta_transformer`); ``latent_size =
    (T_lat, h, w)`` of the composite latent. Weights: :func:`leaf_storage_bytes` with what the offload
    mode keeps resident; activations: ``STEP_ACTIVATION_UNITS`` x ``B * S * D`` (docs/voyager-memory.md).
    """
    frames, height, width = latent_size
    config = transformer.config
    hidden = config.num_attention_heads * config.attention_head_dim
    patch, patch_t = config.patch_size, config.patch_size_t
    batch = 2 if cfg_batched else 1
    image_tokens = (frames // patch_t) * (height // patch) * (width // patch)
    tokens = image_tokens + text_tokens
    compute_bytes = torch.empty((), dtype=DTYPES[cfg.dtype]).element_size()
    unit = float(batch * tokens * hidden * compute_bytes)  # one [B, S, D] tensor

    # weights resident during a denoising step
    leaves = leaf_storage_bytes(transformer, cfg)
    total = sum(b for b, _ in leaves.values())
    largest_leaf = max((b for b, _ in leaves.values()), default=0.0)
    offload = cfg.offload
    if offload == "group":
        lists = [name for name, m in transformer.named_children() if isinstance(m, (torch.nn.ModuleList, torch.nn.Sequential))]
        per_block: dict[tuple[str, int], float] = {}
        for name, (b, _) in leaves.items():
            parts = name.split(".")
            if parts[0] in lists:
                key = (parts[0], int(parts[1]) // cfg.offload_blocks_per_group)
                per_block[key] = per_block.get(key, 0.0) + b
        in_flight = 2 if device_type == "cuda" else 1  # CUDA-stream prefetch holds the next group too
        resident = total - sum(per_block.values()) + in_flight * max(per_block.values(), default=0.0)
    elif offload == "sequential":
        resident = 2 * largest_leaf
    else:
        resident = total
    upcast = max((b / FP8_STORAGE.itemsize * (compute_bytes - FP8_STORAGE.itemsize)
                  for b, cast in leaves.values() if cast), default=0.0)  # one leaf in the compute dtype at a time

    units = STEP_ACTIVATION_UNITS + (ROPE_FP32_UNITS if compute_bytes < 4 else ROPE_FP32_UNITS // 2)
    if getattr(config, "use_context_block", False):
        units += CONTEXT_ACTIVATION_UNITS
    activations = units * unit
    cache_state = _cache_state_bytes(cfg, transformer, unit, batch)

    vae_weights = float(_bytes(vae)) if vae is not None else 0.0
    vae_activations = _vae_activation_bytes(vae, cfg, frames, height, width)
    details = {"tokens": float(tokens), "unit": unit}
    if vae is not None and offload in ("none", "group"):
        details["vae_resident"] = vae_weights
    if offload == "none":
        details["transformer_resident"] = float(resident)
    if offload == "sequential" and vae is not None:
        vae_weights = 2.0 * max((_bytes(m) for m in vae.modules() if not list(m.children())), default=0)
    return MemoryEstimate(transformer_weights=float(resident + upcast), activations=float(activations),
                          cache_state=float(cache_state), vae_weights=vae_weights,
                          vae_activations=float(vae_activations), details=details)


def _cache_state_bytes(cfg: VoyagerConfig, transformer: torch.nn.Module, unit: float, batch: int) -> float:
    method = cfg.cache
    if method == "none":
        return 0.0
    if method == "first_block":
        return 3 * unit  # head output + head residual + tail residuals
    if method == "mag":
        return unit  # previous residual
    attention_modules = sum(len(m) for name, m in transformer.named_children()
                            if name in ("transformer_blocks", "single_transformer_blocks"))
    if method == "taylorseer":
        order = int(cfg.cache_options.get("max_order", 1))
        if cfg.cache_options.get("use_lite_mode", False):
            return 0.0  # only the final projection's output is kept
        return attention_modules * (order + 1) * unit  # factors in the compute dtype
    if method == "faster":
        return attention_modules * 2 * (unit / batch)  # outputs of the conditional half at t-1 and t
    return 0.0


def _vae_activation_bytes(vae: Optional[torch.nn.Module], cfg: VoyagerConfig, frames: int, height: int, width: int) -> float:
    """Rough VAE decode peak: a few full-resolution feature maps of the widest decoder level (tiles if tiling)."""
    if vae is None or not hasattr(vae, "config"):
        return 0.0
    spatial = int(getattr(vae, "spatial_compression_ratio", 8))
    temporal = int(getattr(vae, "temporal_compression_ratio", 4))
    pixels_h, pixels_w, pixel_frames = height * spatial, width * spatial, (frames - 1) * temporal + 1
    if cfg.vae_tiling:
        pixels_h = min(pixels_h, int(getattr(vae, "tile_sample_min_height", 256)))
        pixels_w = min(pixels_w, int(getattr(vae, "tile_sample_min_width", 256)))
        pixel_frames = min(pixel_frames, int(getattr(vae, "tile_sample_min_num_frames", 16)) + 1)
    channels = list(getattr(vae.config, "block_out_channels", [128]))[0]
    value_bytes = next((p.element_size() for p in vae.parameters()), 2)
    return 4.0 * channels * pixel_frames * pixels_h * pixels_w * value_bytes


#: Settings tried, in order of speed, when a run does not fit (each adds to the user's settings).
SUGGESTIONS: tuple[dict[str, str], ...] = (
    {"weights": "fp8"},
    {"offload": "group"},
    {"weights": "fp8", "offload": "group"},
    {"offload": "sequential"},
    {"weights": "fp8", "offload": "sequential"},
)


def check_fits(estimate: MemoryEstimate, device: torch.device, cfg: VoyagerConfig,
               estimate_for: Callable[[VoyagerConfig], MemoryEstimate], free_bytes: Optional[int] = None) -> None:
    """InputError when ``estimate`` exceeds the free memory of ``device`` (CUDA; or ``free_bytes`` if given)."""
    if free_bytes is None:
        if torch.device(device).type != "cuda" or not torch.cuda.is_available():
            return
        free_bytes = torch.cuda.mem_get_info(torch.device(device))[0]
    if estimate.peak <= free_bytes:
        return
    message = f"voyager: needs ~{estimate.peak / GB:.0f} GB, {free_bytes / GB:.0f} GB free"
    cache_free = {} if cfg.cache in ("none", "first_block", "mag") else {"cache": "first_block"}
    for change in SUGGESTIONS:
        change = {**change, **cache_free}
        candidate = dataclasses.replace(cfg, **change)
        if estimate_for(candidate).peak <= free_bytes:
            tries = " ".join(f"--set voyager.{k}={v}" for k, v in change.items() if getattr(cfg, k) != v)
            raise InputError(f"{message}: try {tries}")
    raise InputError(f"{message}, even with voyager.weights=fp8 voyager.offload=sequential: lower voyager.height / "
                     "voyager.width or generate.clip_len (or set voyager.memory_check=false to try anyway)")


def meta_transformer(model_dir: str | Path, subfolder: str = "transformer") -> torch.nn.Module:
    """The transformer of a converted folder built on the ``meta`` device from its config.json (no weights read)."""
    from voyager_pipe.models.transformer import VoyagerTransformer3DModel

    path = Path(model_dir).expanduser() / subfolder / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MissingDependencyError(f"{path}: cannot read the transformer config ({exc.__class__.__name__})") from None
    with torch.device("meta"):
        return VoyagerTransformer3DModel.from_config(config)
