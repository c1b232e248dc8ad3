"""Learned depth backends on a tiny randomly initialised Depth Anything saved to a temp folder (no downloads)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from voyager_pipe.depth import DepthConfig, estimate_depth  # noqa: E402
from voyager_pipe.depth.locate import MODEL_ENV  # noqa: E402
from voyager_pipe.errors import InputError, MissingDependencyError  # noqa: E402

RAW = dict(edge_filter="none", far_ratio=0.0, disparity_eps=0.0)  # no sky/edge removal: compare raw conversion


def _save_tiny_model(folder, metric: bool):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    torch.manual_seed(0)
    backbone = Dinov2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                            image_size=28, patch_size=14, out_features=["stage1", "stage2"],
                            reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=16, neck_hidden_sizes=[8, 16],
                                 fusion_hidden_size=16, head_hidden_size=8, patch_size=14,
                                 reassemble_factors=[1.0, 0.5],
                                 depth_estimation_type="metric" if metric else "relative", max_depth=10)
    model = DepthAnythingForDepthEstimation(config).eval()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)  # positive, varied outputs from the random head
    model.save_pretrained(folder)
    DPTImageProcessorPil(size={"height": 28, "width": 28}, keep_aspect_ratio=True, ensure_multiple_of=14,
                         resample=2).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("depth_models")
    return {"relative": _save_tiny_model(root / "relative", False), "metric": _save_tiny_model(root / "metric", True)}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hf_cache"))
    monkeypatch.delenv(MODEL_ENV, raising=False)


def _image(h, w, seed=0) -> torch.Tensor:
    return torch.rand(3, h, w, generator=torch.Generator().manual_seed(seed))  # [3, H, W]


def _raw_prediction(folder, image) -> torch.Tensor:
    """The model's own output, run with transformers directly (not through our backend)."""
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True).eval()
    pixels = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()  # [H, W, 3]
    with torch.no_grad():
        return model(**processor(images=pixels, return_tensors="pt")).predicted_depth[0]  # [h, w]


def test_relative_model_by_path_converts_disparity_to_depth(models):
    image = _image(28, 42)  # the processor keeps this size: no resize involved
    cfg = DepthConfig(backend="transformers", model=str(models["relative"]), relative_scale=2.0, **RAW)
    est = estimate_depth(image, cfg, device="cpu")
    assert est.depth.shape == (1, 28, 42) and est.depth.dtype == torch.float32
    assert est.valid.shape == (1, 28, 42) and est.valid.dtype == torch.bool
    assert not est.is_metric and est.source == f"transformers:{models['relative']}"
    disparity = _raw_prediction(models["relative"], image)  # [28, 42]
    assert disparity.shape == (28, 42) and disparity.std() > 0
    ok = disparity > 0
    expected = 1.0 / disparity.clamp_min(1e-12)
    expected = torch.where(ok, expected * 2.0 / expected[ok].median(), torch.zeros(()))
    assert torch.equal(est.valid[0], ok)
    torch.testing.assert_close(est.depth[0], expected, rtol=1e-4, atol=1e-6)
    again = estimate_depth(image, cfg, device="cpu")
    assert torch.equal(again.depth, est.depth)


def test_metric_model_is_used_as_is_and_resized_to_the_image(models):
    image = _image(28, 42, seed=1)
    cfg = DepthConfig(backend="transformers", model=str(models["metric"]), **RAW)
    est = estimate_depth(image, cfg, device="cpu")
    raw = _raw_prediction(models["metric"], image)  # [28, 42] sigmoid x max_depth
    assert est.is_metric
    torch.testing.assert_close(est.depth[0], raw)
    big = estimate_depth(_image(40, 60, seed=1), cfg, device="cpu")
    assert big.depth.shape == (1, 40, 60) and big.valid.all()
    source = _raw_prediction(models["metric"], _image(40, 60, seed=1))
    assert tuple(source.shape) != (40, 60)  # the model really ran at another size
    assert source.min() - 1e-5 <= big.depth.min() and big.depth.max() <= source.max() + 1e-5


def test_edge_filter_and_sky_default_on_for_learned_depth(models):
    est = estimate_depth(_image(28, 42), DepthConfig(model=str(models["relative"]), edge_rtol=0.0), device="cpu")
    # rtol 0: every pixel whose neighbourhood is not perfectly flat is on an "edge"
    assert est.details["edge_pixels"] > 0 and est.valid.sum() < 28 * 42
    assert torch.all(est.depth[~est.valid] == 0)


def test_auto_prefers_a_sidecar_over_a_model(models, tmp_path, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, str(models["relative"]))
    np.save(tmp_path / "photo_depth.npy", np.ones((28, 42), np.float32))
    est = estimate_depth(_image(28, 42), DepthConfig(), image_path=tmp_path / "photo.png", device="cpu")
    assert est.source.startswith("file:")
    est = estimate_depth(_image(28, 42), DepthConfig(sidecar=False), image_path=tmp_path / "photo.png", device="cpu")
    assert est.source == f"transformers:{models['relative']}"


def test_auto_finds_model_from_config_and_from_env(models, monkeypatch):
    est = estimate_depth(_image(28, 42), DepthConfig(model=str(models["metric"])), device="cpu")
    assert est.source == f"transformers:{models['metric']}" and est.is_metric
    monkeypatch.setenv(MODEL_ENV, str(models["relative"]))
    est = estimate_depth(_image(28, 42), DepthConfig(), device="cpu")
    assert est.source == f"transformers:{models['relative']}" and not est.is_metric


def test_auto_finds_a_known_model_in_the_local_hf_cache(models, tmp_path, monkeypatch):
    cache = tmp_path / "hf_cache"
    repo = cache / "models--depth-anything--Depth-Anything-V2-Small-hf"
    shutil.copytree(models["relative"], repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    est = estimate_depth(_image(28, 42), DepthConfig(), device="cpu")
    assert est.source == "transformers:depth-anything/Depth-Anything-V2-Small-hf"
    est = estimate_depth(_image(28, 42), DepthConfig(model="depth-anything/Depth-Anything-V2-Small-hf"),
                         device="cpu")
    assert est.source == "transformers:depth-anything/Depth-Anything-V2-Small-hf"


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(MissingDependencyError, match="depth.model.*HF|Hugging Face cache") as info:
        estimate_depth(_image(8, 8), DepthConfig(), image_path=tmp_path / "photo.png")
    assert str(tmp_path / "empty_hf_cache") in str(info.value) and "depth file" in str(info.value)
    with pytest.raises(MissingDependencyError, match="not a local"):
        estimate_depth(_image(8, 8), DepthConfig(model=str(tmp_path / "nowhere")))
    with pytest.raises(MissingDependencyError, match="no local transformers depth model"):
        estimate_depth(_image(8, 8), DepthConfig(backend="transformers"))
    assert issubclass(MissingDependencyError, InputError)  # the CLI exits 2 with one line


def test_moge_not_installed_is_a_clear_error():
    try:
        import moge  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("moge is installed; its missing-package path cannot be exercised")
    with pytest.raises(MissingDependencyError, match="pip install"):
        estimate_depth(_image(8, 8), DepthConfig(backend="moge"))
