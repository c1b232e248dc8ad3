"""`voyager-pipe export`: a gen run folder -> a mesh, 3D Gaussians, a COLMAP or a nerfstudio dataset.

The options of each format are the fields of :mod:`voyager_pipe.export.config`; their help texts and
defaults come from there.
"""

from __future__ import annotations

import dataclasses

from voyager_pipe.export.config import ExportConfig, GaussiansExportConfig, MeshExportConfig

# flag group -> (config class, its fields that are flags)
_GROUPS = {
    "mesh": (MeshExportConfig, ("voxel_size", "trunc_voxels", "max_depth", "min_views", "min_component")),
    "gaussians": (GaussiansExportConfig, ("opacity", "thin_ratio", "scale_multiplier")),
    "colmap, nerfstudio": (ExportConfig, ("max_points", "seed")),
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export", help="export a gen run folder as a mesh, 3D Gaussians (.ply), a COLMAP or a nerfstudio dataset",
        description="Export a gen output folder (frames/, depth/, cameras.json, world.ply) to files other tools open. "
                    "mesh: TSDF fusion of the RGB-D frames (.ply/.obj/.glb by the extension of --out); gaussians: "
                    "a 3DGS .ply, one Gaussian per world.ply point; colmap: images/ + sparse/0/*.txt; nerfstudio: "
                    "transforms.json + images/ + depth/ + sparse_pc.ply. See docs/export.md.")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a finished gen output folder")
    parser.add_argument("--format", required=True, choices=["mesh", "gaussians", "colmap", "nerfstudio"],
                        help="what to write")
    parser.add_argument("--out", required=True, metavar="PATH",
                        help="mesh: FILE.ply|.obj|.glb; gaussians: FILE.ply; colmap, nerfstudio: a folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    for title, (cls, names) in _GROUPS.items():
        group = parser.add_argument_group(title)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in names:
            default = fields[name].default
            group.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                               metavar=type(default).__name__.upper(),
                               help=f"{fields[name].metadata['help']} (default {default})")
    parser.set_defaults(func=run)


def config_from_args(args) -> ExportConfig:
    from voyager_pipe.errors import InputError

    for name in ("voxel_size", "trunc_voxels", "max_depth", "max_points", "min_component"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 0")
    if args.trunc_voxels == 0 or args.min_views < 1:
        raise InputError("--trunc-voxels must be > 0 and --min-views >= 1")
    values = vars(args)
    return ExportConfig(
        mesh=MeshExportConfig(**{name: values[name] for name in _GROUPS["mesh"][1]}),
        gaussians=GaussiansExportConfig(**{name: values[name] for name in _GROUPS["gaussians"][1]}),
        max_points=args.max_points, seed=args.seed, progress=not args.no_progress)


def run(args) -> int:
    from voyager_pipe.export import export_run

    summary = export_run(args.run_dir, args.format, args.out, config_from_args(args), overwrite=args.overwrite)
    print(f"voyager-pipe export: {summary}")
    return 0
