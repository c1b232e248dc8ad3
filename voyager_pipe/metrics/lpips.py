"""LPIPS (AlexNet backbone, linear heads v0.1), without torchvision.

LPIPS(x, y) = sum over the 5 AlexNet ReLU layers l of
``mean_hw( w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2 )``, where ``f_l`` are the
channel features of images scaled to [-1, 1] and then shifted / scaled by LPIPS' fixed
``ScalingLayer``, ``|.|`` is the L2 norm over channels (eps 1e-8 inside the root) and ``w_l``
the non-negative 1x1 linear head of layer ``l`` (Zhang et al. 2018, v0.1).

* Backbone: :class:`AlexNetFeatures` has the exact module layout of ``torchvision.models.alexnet().features``,
  so the standard ImageNet file ``alexnet-owt-7be5be79.pth`` loads into it (keys ``features.N.*``;
  the classifier keys are ignored). Looked for in ``<torch.hub.get_dir()>/checkpoints/`` or at a
  configured path; never downloaded.
* Heads: the v0.1 file torchmetrics ships (``torchmetrics/functional/image/lpips_models/alex.pth``).
* When torchvision imports and the backbone file is the one in the torch hub cache,
  :func:`load_lpips` uses torchmetrics' own ``LearnedPerceptualImagePatchSimilarity`` (same numbers).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from voyager_pipe.errors import InputError, MissingDependencyError, NotBuiltError
from voyager_pipe.io.reading import check_file, reading

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
LPIPS_CHANNELS = (64, 192, 384, 256, 256)
_TAPS = (1, 4, 7, 9, 11)  # indices in alexnet.features after which LPIPS reads a layer (the ReLUs)
_SHIFT = (-0.030, -0.088, -0.188)  # LPIPS ScalingLayer
_SCALE = (0.458, 0.448, 0.450)


def default_alexnet_path() -> Path:
    """Where torchvision keeps the ImageNet AlexNet weights: ``<torch hub dir>/checkpoints/alexnet-owt-7be5be79.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE


def lpips_heads_path() -> Path:
    """The LPIPS v0.1 AlexNet linear heads shipped inside torchmetrics."""
    import torchmetrics.functional.image.lpips as tm_lpips

    return Path(os.path.dirname(os.path.abspath(tm_lpips.__file__))) / "lpips_models" / "alex.pth"


class AlexNetFeatures(nn.Module):
    """``torchvision.models.alexnet().features`` rebuilt with plain torch (same indices and shapes)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),  # 0, 1
            nn.MaxPool2d(kernel_size=3, stride=2),  # 2
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),  # 3, 4
            nn.MaxPool2d(kernel_size=3, stride=2),  # 5
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),  # 6, 7
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),  # 8, 9
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),  # 10, 11
            nn.MaxPool2d(kernel_size=3, stride=2),  # 12
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 5 LPIPS layers for ``x`` [N, 3, H, W]."""
        out = []
        for i, layer in enumerate(self.features[: _TAPS[-1] + 1]):  # 12 modules, not pixels
            x = layer(x)
            if i in _TAPS:
                out.append(x)
        return out


class LPIPS(nn.Module):
    """LPIPS-Alex v0.1 on images in [0, 1] (scaled to [-1, 1] inside). ``forward(x, y)`` -> ``[N]``."""

    def __init__(self, backbone: AlexNetFeatures, heads: list[torch.Tensor]) -> None:
        super().__init__()
        self.backbone = backbone.eval()
        self.heads = nn.ParameterList([nn.Parameter(h.reshape(1, -1, 1, 1).float(), requires_grad=False) for h in heads])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor, spatial: bool = False) -> torch.Tensor:
        """LPIPS between ``x`` and ``y`` [N, 3, H, W] in [0, 1].

        Returns ``[N]`` (``spatial=False``) or a per-pixel map ``[N, 1, H, W]`` (each layer's
        distance upsampled bilinearly to the input size, then summed; its mean is close to,
        not exactly, the scalar value), used for masked LPIPS.
        """
        fx = self.backbone(((2 * x - 1) - self.shift) / self.scale)  # 5 x [N, C_l, h_l, w_l]
        fy = self.backbone(((2 * y - 1) - self.shift) / self.scale)
        total = 0.0
        for feat_x, feat_y, head in zip(fx, fy, self.heads):  # 5 layers
            nx = feat_x / torch.sqrt(1e-8 + (feat_x ** 2).sum(dim=1, keepdim=True))  # [N, C, h, w]
            ny = feat_y / torch.sqrt(1e-8 + (feat_y ** 2).sum(dim=1, keepdim=True))
            dist = ((nx - ny) ** 2 * head).sum(dim=1, keepdim=True)  # [N, 1, h, w]
            if spatial:
                total = total + nn.functional.interpolate(dist, size=x.shape[-2:], mode="bilinear", align_corners=False)
            else:
                total = total + dist.mean(dim=(2, 3))  # [N, 1]
        return total if spatial else total[:, 0]


class TorchmetricsLPIPS(nn.Module):
    """torchmetrics' LPIPS (needs torchvision) with the same call signature as :class:`LPIPS` (no spatial maps)."""

    def __init__(self) -> None:
        super().__init__()
        from torchmetrics.functional.image.lpips import _NoTrainLpips

        self.net = _NoTrainLpips(net="alex")

    @torch.no_grad()
    def forward(self, x: torch.Tensor, y: torch.Tensor, spatial: bool = False) -> torch.Tensor:
        if spatial:
            raise NotBuiltError("spatial LPIPS maps come from voyager_pipe's own LPIPS (torchmetrics' has none)")
        return self.net(x, y, normalize=True).reshape(-1)


def load_alexnet_features(path: str | Path) -> AlexNetFeatures:
    """AlexNet features from a torchvision-layout state dict file (``features.N.weight`` / ``.bias``)."""
    path = check_file(path, "AlexNet weights")
    with reading(path, "AlexNet weights (a torchvision state dict saved with torch.save)", also=(RuntimeError,)):
        state = torch.load(path, map_location="cpu", weights_only=True)  # data only: nothing is executed
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise InputError(f"{path}: not an AlexNet state dict (a {type(state).__name__}, not a mapping)")
        features = {k: v for k, v in state.items() if isinstance(k, str) and k.startswith("features.")}
        if not features or not all(isinstance(v, torch.Tensor) for v in features.values()):
            raise InputError(f"{path}: not an AlexNet state dict (no 'features.*' tensors)")
        model = AlexNetFeatures()
        missing, unexpected = model.load_state_dict(features, strict=False)
    if missing or unexpected:
        raise InputError(f"{path}: AlexNet weights do not fit (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


def load_lpips_heads(path: str | Path | None = None) -> list[torch.Tensor]:
    """The five 1x1 head weights ``[C_l]`` of LPIPS v0.1 (torchmetrics' ``alex.pth`` by default)."""
    path = Path(path) if path is not None else lpips_heads_path()
    if not path.is_file():
        raise MissingDependencyError(f"LPIPS heads not found at {path} (they ship with torchmetrics)")
    with reading(path, "LPIPS head weights", also=(RuntimeError,)):
        state = torch.load(path, map_location="cpu", weights_only=True)
        heads = [state[f"lin{i}.model.1.weight"].reshape(-1) for i in range(len(LPIPS_CHANNELS))]
    if [h.numel() for h in heads] != list(LPIPS_CHANNELS):
        raise InputError(f"{path}: LPIPS heads of sizes {[h.numel() for h in heads]}, expected {list(LPIPS_CHANNELS)}")
    return heads


def _torchvision_available() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken torchvision counts as absent
        return False
    return True


def load_lpips(weights: str | Path | None = None, device: str | torch.device = "cpu",
               prefer_torchmetrics: bool = True) -> nn.Module:
    """An LPIPS module, or :class:`MissingDependencyError` saying which file is missing and where it was looked for.

    Args:
        weights: ImageNet AlexNet weights (torchvision layout); default the torch hub cache file.
        prefer_torchmetrics: use torchmetrics' own LPIPS when torchvision imports and ``weights``
            is the torch hub cache file (torchvision then finds it there and does not download).
    """
    path = Path(weights).expanduser() if weights is not None else default_alexnet_path()
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: is not a file (eval.lpips_weights: the ImageNet AlexNet weights file)")
    if not path.is_file():
        raise MissingDependencyError(
            f"LPIPS: AlexNet weights not found at {path}; put the ImageNet AlexNet file {ALEXNET_FILE} there "
            f"(or set eval.lpips_weights / --lpips-weights); nothing is downloaded")
    if prefer_torchmetrics and weights is None and _torchvision_available():
        return TorchmetricsLPIPS().to(device)
    return LPIPS(load_alexnet_features(path), load_lpips_heads()).to(device)
