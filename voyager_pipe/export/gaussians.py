"""3D Gaussian Splatting export: one Gaussian per world-cache point, in the original 3DGS ``.ply`` layout.

Vertex properties (all float32, binary little endian), as written by the original 3DGS code
(``GaussianModel.save_ply``) and read by splat viewers, gsplat and nerfstudio::

    x y z  nx ny nz  f_dc_0..2  f_rest_0..44  opacity  scale_0..2  rot_0..3

with the stored (pre-activation) values:

* ``f_dc = (rgb - 0.5) / C0`` with ``C0 = 0.28209479177387814`` (SH degree 0; the viewer shows
  ``C0 * f_dc + 0.5``); ``f_rest`` (degrees 1..3) are zero;
* ``opacity = logit(o)`` (``o`` = ``opacity`` option, 0.9 by default);
* ``scale_k = log(s_k)``: ``s_0 = s_1 = z / f`` is the point's pixel footprint in the frame it was
  unprojected from (``z`` its depth in that frame's ``w2c``, ``f = sqrt(fx * fy)`` of that frame's
  ``K``), times ``scale_multiplier``; ``s_2 = thin_ratio * s_0`` is the thin axis;
* ``rot = (w, x, y, z)``, a unit quaternion whose rotation takes the local z axis (the thin axis) to
  the point's normal (shortest arc). Points without a normal get an isotropic Gaussian (``s_2 = s_0``).

``nx ny nz`` carry the cache normals (the original code writes zeros there; readers ignore them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voyager_pipe.errors import InputError
from voyager_pipe.export.config import GaussiansExportConfig
from voyager_pipe.export.run import RunFolder, RunPoints

SH_C0 = 0.28209479177387814
SH_REST = 45  # 3 colour channels x 15 coefficients of SH degrees 1..3


def property_names() -> list[str]:
    """The vertex properties of the original 3DGS .ply, in order."""
    return (["x", "y", "z", "nx", "ny", "nz"] + [f"f_dc_{i}" for i in range(3)] + [f"f_rest_{i}" for i in range(SH_REST)]
            + ["opacity"] + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])


def rgb_to_sh_dc(rgb: np.ndarray) -> np.ndarray:
    """``[P, 3]`` colours in [0, 1] -> degree-0 SH coefficients."""
    return (rgb - 0.5) / SH_C0


def z_to_normal_quaternion(normals: np.ndarray) -> np.ndarray:
    """``[P, 4]`` unit quaternions (w, x, y, z) rotating +z onto each unit normal ``[P, 3]`` (shortest arc).

    ``q = normalise(1 + n_z, -n_y, n_x, 0)``; for ``n = -z`` (no unique arc) a half turn about x.
    """
    q = np.stack([1.0 + normals[:, 2], -normals[:, 1], normals[:, 0], np.zeros(len(normals))], axis=1)  # [P, 4]
    norm = np.linalg.norm(q, axis=1, keepdims=True)  # [P, 1]
    opposite = norm[:, 0] < 1e-6  # [P]
    q = np.where(opposite[:, None], np.array([0.0, 1.0, 0.0, 0.0]), q / np.maximum(norm, 1e-12))
    return q


def pixel_footprint(points: RunPoints, run: RunFolder) -> np.ndarray:
    """``[P]`` size of one pixel at each point in its source frame: ``z / sqrt(fx * fy)``."""
    w2c = run.cameras.w2c.numpy()[points.frame_ids]  # [P, 4, 4]
    K = run.cameras.K.numpy()[points.frame_ids]  # [P, 3, 3]
    z = np.einsum("pj,pj->p", w2c[:, 2, :3], points.xyz.astype(np.float64)) + w2c[:, 2, 3]  # [P]
    if (z <= 0).any():
        i = int(np.argmax(z <= 0))
        raise InputError(f"{run.path / 'world.ply'}: point {i} lies behind its source frame {int(points.frame_ids[i])} "
                         "(world.ply does not belong to these cameras)")
    return z / np.sqrt(K[:, 0, 0] * K[:, 1, 1])


def gaussian_table(points: RunPoints, run: RunFolder, cfg: GaussiansExportConfig) -> np.ndarray:
    """``[P]`` structured array of float32 fields in :func:`property_names` order."""
    if not 0.0 < cfg.opacity < 1.0:
        raise InputError(f"--opacity {cfg.opacity}: must lie in (0, 1)")
    if cfg.thin_ratio <= 0 or cfg.scale_multiplier <= 0:
        raise InputError(f"--thin-ratio {cfg.thin_ratio} / --scale-multiplier {cfg.scale_multiplier}: must be > 0")
    count = len(points)
    normals = points.normals.astype(np.float64)  # [P, 3]
    length = np.linalg.norm(normals, axis=1)  # [P]
    has_normal = length > 0.5  # [P]; zero normals are undefined
    unit = np.where(has_normal[:, None], normals / np.maximum(length, 1e-12)[:, None], np.array([0.0, 0.0, 1.0]))
    in_plane = pixel_footprint(points, run) * cfg.scale_multiplier  # [P]
    thin = np.where(has_normal, in_plane * cfg.thin_ratio, in_plane)  # [P]

    table = np.zeros(count, dtype=np.dtype([(name, "<f4") for name in property_names()]))  # [P] structured
    for axis, name in enumerate("xyz"):
        table[name] = points.xyz[:, axis]
        table["n" + name] = unit[:, axis] * has_normal
    dc = rgb_to_sh_dc(points.rgb.astype(np.float64) / 255.0)  # [P, 3]
    for channel in range(3):
        table[f"f_dc_{channel}"] = dc[:, channel]
    table["opacity"] = np.log(cfg.opacity / (1.0 - cfg.opacity))
    table["scale_0"] = table["scale_1"] = np.log(in_plane)
    table["scale_2"] = np.log(thin)
    quaternion = z_to_normal_quaternion(unit)  # [P, 4]
    for k in range(4):
        table[f"rot_{k}"] = quaternion[:, k]
    return table


def write_vertex_ply(path: Path, table: np.ndarray) -> None:
    """Write a structured array as the single ``vertex`` element of a binary little-endian PLY (atomically)."""
    from voyager_pipe.io.atomic import atomic_write_bytes

    types = {"<f4": "float", "<f8": "double", "|u1": "uchar", "<i4": "int"}
    lines = ["ply", "format binary_little_endian 1.0", f"element vertex {len(table)}"]
    lines += [f"property {types[table.dtype[name].str]} {name}" for name in table.dtype.names]
    lines.append("end_header")
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("ascii") + table.tobytes())


@dataclass
class GaussiansExport:
    path: Path
    count: int
    median_scale: float

    def summary(self) -> str:
        return f"gaussians: {self.count} Gaussians (median in-plane scale {self.median_scale:.4g}) -> {self.path}"


def export_gaussians(run: RunFolder, out: Path, cfg: GaussiansExportConfig | None = None) -> GaussiansExport:
    """Write the run's world cache as a 3DGS ``.ply`` at ``out``."""
    cfg = cfg or GaussiansExportConfig()
    out = Path(out)
    if out.suffix.lower() != ".ply":
        raise InputError(f"--out {out}: Gaussians are written as a .ply file")
    table = gaussian_table(run.points, run, cfg)
    write_vertex_ply(out, table)
    return GaussiansExport(path=out, count=len(table), median_scale=float(np.exp(np.median(table["scale_0"]))))
