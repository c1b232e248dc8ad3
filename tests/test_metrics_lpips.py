"""LPIPS: our torchvision-free path against a hand-written formula (and torchmetrics when torchvision imports)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from voyager_pipe.errors import MissingDependencyError
from voyager_pipe.metrics.lpips import AlexNetFeatures, load_lpips, lpips_heads_path


@pytest.fixture
def random_alexnet(tmp_path):
    """Random AlexNet weights saved in torchvision's layout (features.* + classifier.*), like the ImageNet file."""
    torch.manual_seed(0)
    state = AlexNetFeatures().state_dict()
    state = {k: v * 3 if k.endswith("weight") else v for k, v in state.items()}  # livelier activations
    state["classifier.1.weight"] = torch.randn(16, 8)  # ignored by the loader
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    torch.save(state, path)
    return path, state


def _reference_lpips(x, y, state):
    """LPIPS written out from the paper with functional ops: scale, AlexNet relu1..5, unit-normalise
    channels, squared difference, linear head, spatial mean, sum over layers."""
    heads = torch.load(lpips_heads_path(), map_location="cpu")
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def feats(img):
        h = ((img * 2 - 1) - shift) / scale
        h1 = F.relu(F.conv2d(h, state["features.0.weight"], state["features.0.bias"], stride=4, padding=2))
        h2 = F.relu(F.conv2d(F.max_pool2d(h1, 3, 2), state["features.3.weight"], state["features.3.bias"], padding=2))
        h3 = F.relu(F.conv2d(F.max_pool2d(h2, 3, 2), state["features.6.weight"], state["features.6.bias"], padding=1))
        h4 = F.relu(F.conv2d(h3, state["features.8.weight"], state["features.8.bias"], padding=1))
        h5 = F.relu(F.conv2d(h4, state["features.10.weight"], state["features.10.bias"], padding=1))
        return [h1, h2, h3, h4, h5]

    total = 0
    for k, (a, b) in enumerate(zip(feats(x), feats(y))):
        a = a / torch.sqrt(1e-8 + (a ** 2).sum(1, keepdim=True))
        b = b / torch.sqrt(1e-8 + (b ** 2).sum(1, keepdim=True))
        total = total + F.conv2d((a - b) ** 2, heads[f"lin{k}.model.1.weight"]).mean(dim=(2, 3))[:, 0]
    return total


def test_lpips_matches_the_formula_and_is_zero_on_identical_images(random_alexnet):
    path, state = random_alexnet
    net = load_lpips(path)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    torch.testing.assert_close(net(x, y), _reference_lpips(x, y, state), atol=1e-5, rtol=1e-4)
    assert net(x, y).min() > 0
    torch.testing.assert_close(net(x, x), torch.zeros(2))
    # the spatial map averages to about the scalar value
    assert net(x, y, spatial=True).shape == (2, 1, 64, 64)


def test_missing_weights_are_reported_not_crashed(tmp_path):
    from voyager_pipe.metrics import EvalConfig, evaluate_frames

    missing = tmp_path / "nowhere" / "alexnet.pth"
    with pytest.raises(MissingDependencyError, match="nowhere"):
        load_lpips(missing)
    x = torch.rand(2, 3, 32, 32)
    result = evaluate_frames(x, x.clone(), ["psnr", "ssim", "lpips"], EvalConfig(lpips_weights=str(missing)))
    assert "nowhere" in result["unavailable"]["lpips"]
    assert "lpips" not in result["means"]
    assert math.isinf(result["means"]["psnr"]) and result["means"]["ssim"] == pytest.approx(1.0)


def test_same_value_as_torchmetrics_lpips(random_alexnet):
    pytest.importorskip("torchvision")
    from torchmetrics.functional.image.lpips import _LPIPS

    path, state = random_alexnet
    ours = load_lpips(path)
    theirs = _LPIPS(pretrained=True, net="alex", pnet_rand=True).eval()  # heads from alex.pth, random backbone
    slices = [theirs.net.slice1, theirs.net.slice2, theirs.net.slice3, theirs.net.slice4, theirs.net.slice5]
    for s in slices:  # copy our saved backbone into torchmetrics' torchvision AlexNet slices
        for name, module in s.named_children():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.data.copy_(state[f"features.{name}.weight"])
                module.bias.data.copy_(state[f"features.{name}.bias"])
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 3, 64, 64, generator=g)
    torch.testing.assert_close(ours(x, y), theirs(x, y, normalize=True).reshape(-1), atol=1e-5, rtol=1e-4)
