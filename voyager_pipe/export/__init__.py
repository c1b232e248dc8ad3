"""Exports of a ``gen`` run folder that other tools open: a mesh, 3D Gaussians, COLMAP and nerfstudio datasets.

One module per format; :func:`export_run` is the one entry point (used by ``voyager-pipe export`` and
``gen --export``). See ``docs/export.md``.
"""

from __future__ import annotations

from pathlib import Path

from voyager_pipe.errors import InputError
from voyager_pipe.export.config import ExportConfig

FORMATS = ("mesh", "gaussians", "colmap", "nerfstudio")
FOLDER_FORMATS = ("colmap", "nerfstudio")  # the others write one file
# where `gen --export` puts each format inside the run folder
DEFAULT_NAMES = {"mesh": "export/mesh.ply", "gaussians": "export/gaussians.ply", "colmap": "export/colmap",
                 "nerfstudio": "export/nerfstudio"}


def parse_formats(text: str, where: str = "--export") -> list[str]:
    """``"mesh,gaussians"`` -> ``["mesh", "gaussians"]`` (checked, duplicates dropped)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise InputError(f"{where} {text!r}: expected a comma-separated list of {', '.join(FORMATS)}")
    return list(dict.fromkeys(names))


def check_out(run_dir: Path, out: Path, fmt: str, overwrite: bool) -> None:
    """Refuse, before any work, an ``--out`` that would replace the run folder or an existing output
    without ``overwrite``. Folders (colmap, nerfstudio) go through the output-folder guard of io.atomic."""
    from voyager_pipe.io.atomic import check_output_dir

    if fmt in FOLDER_FORMATS:
        check_output_dir(out, inputs=[run_dir], overwrite=overwrite)
        return
    run_dir, resolved = Path(run_dir).resolve(), Path(out).resolve()
    if resolved == run_dir or run_dir.is_relative_to(resolved):
        raise InputError(f"--out {out}: would replace the run folder {run_dir}")
    if resolved.is_dir():
        raise InputError(f"--out {out}: is a folder; {fmt} is written as a file")
    if resolved.exists() and not overwrite:
        raise InputError(f"--out {out}: exists; pass --overwrite or choose another path")


def export_run(run_dir: str | Path, fmt: str, out: str | Path, cfg: ExportConfig | None = None,
               overwrite: bool = False) -> str:
    """Export the run folder ``run_dir`` as ``fmt`` to ``out``; returns a one-line summary."""
    from voyager_pipe.export.run import load_run

    cfg = cfg or ExportConfig()
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = Path(out)
    check_out(Path(run_dir), out, fmt, overwrite)
    if fmt == "mesh":
        from voyager_pipe.export.mesh import export_mesh

        return export_mesh(load_run(run_dir, depth=True, points=False), out, cfg.mesh, cfg.progress).summary()
    if fmt == "gaussians":
        from voyager_pipe.export.gaussians import export_gaussians

        return export_gaussians(load_run(run_dir, depth=False, points=True), out, cfg.gaussians).summary()
    if fmt == "colmap":
        from voyager_pipe.export.colmap import export_colmap

        run = load_run(run_dir, depth=False, points=True)
        return export_colmap(run, out, cfg.max_points, cfg.seed, cfg.progress, overwrite).summary()
    from voyager_pipe.export.nerfstudio import export_nerfstudio

    run = load_run(run_dir, depth=True, points=True)
    return export_nerfstudio(run, out, cfg.max_points, cfg.seed, cfg.progress, overwrite).summary()





def export_formats_into_run(run_dir: str | Path, formats: list[str], progress: bool = True) -> None:
    """``gen --export``: write each format with the default options to ``run_dir/export/`` (see DEFAULT_NAMES)."""
    cfg = ExportConfig(progress=progress)
    for fmt in formats:
        summary = export_run(run_dir, fmt, Path(run_dir) / DEFAULT_NAMES[fmt], cfg, overwrite=True)
        print(f"voyager-pipe export: {summary}")
__all__ = ["DEFAULT_NAMES", "FORMATS", "ExportConfig", "export_formats_into_run", "export_run", "parse_formats"]
