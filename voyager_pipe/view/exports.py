"""The exports of a run folder that the viewer shows: a mesh (``.ply`` with faces, ``.obj``, ``.glb``)
and a 3D Gaussian Splatting ``.ply`` (the property layout of the original 3DGS code).

They are looked for in the run folder itself and in its ``export/`` and ``exports/`` subfolders;
the kind of a ``.ply`` is told by its header (faces -> mesh, ``f_dc_0`` -> Gaussians). The names
``gen --export`` writes (``export/mesh.ply``, ``export/gaussians.ply``) come first. Absent exports
are simply not shown.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from voyager_pipe.errors import InputError

_SH_C0 = 0.28209479177387814  # degree-0 spherical harmonic: colour = 0.5 + C0 * f_dc
_SUBFOLDERS = (".", "export", "exports")


def _ply_header(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(16384)
    end = head.find(b"end_header")
    return head[: end if end >= 0 else len(head)].decode("ascii", errors="replace")


def find_exports(run_dir: Path) -> dict[str, Path]:
    """``{"mesh": path, "gaussians": path}`` for the first of each kind found (sorted by name)."""
    from voyager_pipe.export import DEFAULT_NAMES

    found = {kind: run_dir / DEFAULT_NAMES[kind] for kind in ("mesh", "gaussians") if (run_dir / DEFAULT_NAMES[kind]).is_file()}
    for sub in _SUBFOLDERS:
        folder = run_dir / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name == "world.ply" or path.name.startswith("."):
                continue
            suffix = path.suffix.lower()
            if suffix in (".obj", ".glb"):
                found.setdefault("mesh", path)
            elif suffix == ".ply":
                header = _ply_header(path)
                if "f_dc_0" in header:
                    found.setdefault("gaussians", path)
                elif "element face" in header and not header.rstrip().endswith("element face 0"):
                    found.setdefault("mesh", path)
    return found


def load_mesh(path: Path):
    """A ``trimesh.Trimesh`` (scenes are merged into one mesh)."""
    import trimesh

    try:
        mesh = trimesh.load(path, force="mesh")
    except Exception as exc:  # trimesh raises many types for unreadable files
        raise InputError(f"{path}: cannot read mesh ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputError(f"{path}: no triangles")
    return mesh


def load_gaussians(path: Path, budget: int = 0) -> dict[str, np.ndarray]:
    """A 3DGS ``.ply`` as viser wants it: ``centers [G, 3]``, ``covariances [G, 3, 3]``, ``rgbs [G, 3]``
    in [0, 1], ``opacities [G, 1]`` (activations applied: sigmoid opacity, exp scale, unit quaternion)."""
    from voyager_pipe.camera.rotations import quaternion_to_matrix
    from voyager_pipe.view.budget import downsample_points
    from voyager_pipe.world.ply import read_ply

    data = read_ply(path)
    extra = data["extra"]
    names = [f"f_dc_{i}" for i in range(3)] + ["opacity"] + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)]
    missing = [n for n in names if n not in extra]
    if missing:
        raise InputError(f"{path}: not a 3D Gaussian Splatting PLY (no {', '.join(missing[:3])})")
    index = np.arange(data["xyz"].shape[0])  # [G]
    index, _ = downsample_points(index, index, budget)
    table = {n: extra[n][index].astype(np.float64) for n in names}
    f_dc = np.stack([table[f"f_dc_{i}"] for i in range(3)], axis=1)  # [G, 3]
    scales = np.exp(np.stack([table[f"scale_{i}"] for i in range(3)], axis=1))  # [G, 3]
    quats = torch.from_numpy(np.stack([table[f"rot_{i}"] for i in range(4)], axis=1))  # [G, 4] w first
    quats = quats / quats.norm(dim=1, keepdim=True).clamp_min(1e-12)
    R = quaternion_to_matrix(quats).numpy()  # [G, 3, 3]
    covariances = (R * scales[:, None, :] ** 2) @ R.transpose(0, 2, 1)  # [G, 3, 3] = R S^2 R^T
    return {
        "centers": data["xyz"][index].astype(np.float32),
        "covariances": covariances.astype(np.float32),
        "rgbs": np.clip(0.5 + _SH_C0 * f_dc, 0.0, 1.0).astype(np.float32),
        "opacities": (1.0 / (1.0 + np.exp(-table["opacity"])))[:, None].astype(np.float32),
    }
