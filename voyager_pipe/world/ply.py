"""Point-cloud PLY files: binary little-endian, written and read with numpy structured arrays.

Layout written by :func:`write_ply` (one ``vertex`` element, no faces)::

    ply
    format binary_little_endian 1.0
    element vertex P
    property float x / y / z
    property float nx / ny / nz        (when normals are given)
    property uchar red / green / blue
    property <type> <name>             (one per extra per-point array, e.g. int frame_id)
    end_header

Open3D, trimesh, MeshLab and CloudCompare read it; unknown extra properties are ignored by
Open3D and kept by trimesh. :func:`read_ply` reads this layout back exactly, and also reads
binary (little or big endian) and ASCII point PLYs written by other tools (double coordinates,
float colours, extra properties), as long as the ``vertex`` element is the first element
or only follows elements without list properties.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voyager_pipe.errors import InputError
from voyager_pipe.io.atomic import atomic_path
from voyager_pipe.io.reading import MAX_POINTS, check_file, reading

MAX_HEADER_LINES = 1000

# PLY scalar type names -> numpy type characters (both the classic and the sized names).
_PLY_TO_NUMPY = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}
_NUMPY_TO_PLY = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int",
                 "u4": "uint", "f4": "float", "f8": "double"}
_FORMATS = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": None}


def _as_numpy(array) -> np.ndarray:
    """numpy view of a numpy array or a (possibly CUDA, possibly grad-tracking) torch tensor."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def _colors_to_uint8(rgb: np.ndarray) -> np.ndarray:
    """``[P, 3]`` uint8 from uint8 colours or float colours in [0, 1] (rounded, clipped)."""
    if rgb.dtype == np.uint8:
        return rgb
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"rgb: expected float colours in [0, 1] or uint8, got dtype {rgb.dtype}")
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)  # [P, 3]


def write_ply(path, xyz, rgb, normals=None, extra: dict | None = None) -> Path:
    """Write a point cloud as a binary little-endian PLY.

    Args:
        path: output file (parent folders are created; written to a temporary file, then renamed).
        xyz: ``[P, 3]`` positions (stored as float32).
        rgb: ``[P, 3]`` colours, float in [0, 1] (rounded to uchar) or uint8.
        normals: optional ``[P, 3]`` normals (stored as float32).
        extra: optional ``{name: [P] array}`` of further per-point scalars stored with their own
            dtype (e.g. ``{"frame_id": int32 array}``); 64-bit integers are stored as int32.

    numpy arrays or torch tensors are accepted. Returns the path written.
    """
    path = Path(path)
    xyz = _as_numpy(xyz)
    rgb = _as_numpy(rgb)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz: expected shape [P, 3], got {list(xyz.shape)}")
    count = xyz.shape[0]
    if rgb.shape != (count, 3):
        raise ValueError(f"rgb: expected shape [{count}, 3] to match xyz, got {list(rgb.shape)}")
    fields: list[tuple[str, str]] = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    columns: dict[str, np.ndarray] = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    if normals is not None:
        normals = _as_numpy(normals)
        if normals.shape != (count, 3):
            raise ValueError(f"normals: expected shape [{count}, 3] to match xyz, got {list(normals.shape)}")
        fields += [("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4")]
        columns.update(nx=normals[:, 0], ny=normals[:, 1], nz=normals[:, 2])
    rgb8 = _colors_to_uint8(rgb)  # [P, 3]
    fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    columns.update(red=rgb8[:, 0], green=rgb8[:, 1], blue=rgb8[:, 2])
    for name, values in (extra or {}).items():
        values = _as_numpy(values)
        if values.shape != (count,):
            raise ValueError(f"extra[{name!r}]: expected shape [{count}], got {list(values.shape)}")
        if name in columns or not name.isidentifier():
            raise ValueError(f"extra[{name!r}]: name clashes with a standard property or is not a plain identifier")
        if values.dtype == np.bool_:
            values = values.astype(np.uint8)
        elif values.dtype.kind in "iu" and values.dtype.itemsize == 8:
            values = values.astype(np.int32 if values.dtype.kind == "i" else np.uint32)
        elif values.dtype == np.float16:
            values = values.astype(np.float32)
        code = values.dtype.str.lstrip("<>=|")
        if code not in _NUMPY_TO_PLY:
            raise ValueError(f"extra[{name!r}]: dtype {values.dtype} cannot be stored in a PLY")
        fields.append((name, "<" + code))
        columns[name] = values

    table = np.empty(count, dtype=np.dtype(fields))  # [P] structured
    for name, values in columns.items():
        table[name] = values
    header_lines = ["ply", "format binary_little_endian 1.0", "comment written by voyager_pipe",
                    f"element vertex {count}"]
    header_lines += [f"property {_NUMPY_TO_PLY[dt.lstrip('<>|')]} {name}" for name, dt in fields]
    header_lines.append("end_header")
    header = ("\n".join(header_lines) + "\n").encode("ascii")

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(header)
        handle.write(table.tobytes())
    return path


def _parse_header(handle, path: Path):
    """(format, elements, header byte length); elements = [(name, count, [(type, name) | ('list', ...)])]."""
    first = handle.readline()
    if first.strip() != b"ply":
        raise InputError(f"{path}: not a PLY file (missing 'ply' magic)")
    fmt = None
    elements: list[tuple[str, int, list]] = []
    for _ in range(MAX_HEADER_LINES):
        raw = handle.readline(4096)
        if not raw:
            raise InputError(f"{path}: PLY header has no 'end_header'")
        words = raw.decode("ascii", errors="replace").split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "end_header":
            break
        if words[0] == "format":
            if len(words) < 2 or words[1] not in _FORMATS:
                raise InputError(f"{path}: unsupported PLY format line {raw.strip()!r}")
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3:
                raise InputError(f"{path}: PLY element line {raw.strip()!r}: expected 'element NAME COUNT'")
            try:
                count = int(words[2])
            except ValueError:
                raise InputError(f"{path}: PLY element {words[1]!r}: count {words[2]!r} is not an integer") from None
            if count < 0 or count > MAX_POINTS:
                raise InputError(f"{path}: PLY element {words[1]!r}: count {count} is not in 0..{MAX_POINTS}")
            elements.append((words[1], count, []))
        elif words[0] == "property":
            if not elements:
                raise InputError(f"{path}: PLY property before any element")
            if len(words) < 3 or (words[1] == "list" and len(words) != 5):
                raise InputError(f"{path}: PLY property line {raw.strip()!r} is malformed")
            if words[1] == "list":
                elements[-1][2].append(("list", words[-1]))
            else:
                if words[1] not in _PLY_TO_NUMPY:
                    raise InputError(f"{path}: unknown PLY property type {words[1]!r}")
                elements[-1][2].append((words[1], words[2]))
    else:
        raise InputError(f"{path}: PLY header has no 'end_header' in its first {MAX_HEADER_LINES} lines")
    if fmt is None:
        raise InputError(f"{path}: PLY header has no 'format' line")
    return fmt, elements, handle.tell()


def read_ply(path) -> dict:
    """Read the vertices of a point-cloud PLY.

    Returns:
        ``{"xyz": [P, 3] float32, "rgb": [P, 3] uint8 | None, "normals": [P, 3] float32 | None,
        "extra": {name: [P] array}}`` (numpy). Float colours in a file are converted to uint8;
        every vertex property other than xyz / normals / colours lands in ``extra``.

    Raises:
        InputError: missing file, not a PLY, no vertex element, no x/y/z, or a truncated body.
    """
    path = check_file(path, "PLY file")
    with reading(path, "PLY file"):
        cloud = _read_vertices(path)
    finite = np.isfinite(cloud["xyz"]).all(axis=1)  # [P]
    if len(finite) and not finite.any():
        raise InputError(f"{path}: every vertex has a NaN or infinite coordinate")
    return cloud


def _read_vertices(path: Path) -> dict:
    with open(path, "rb") as handle:
        fmt, elements, _ = _parse_header(handle, path)
        names = [name for name, _, _ in elements]
        if "vertex" not in names:
            raise InputError(f"{path}: PLY has no 'vertex' element")
        before = elements[: names.index("vertex")]
        _, count, properties = elements[names.index("vertex")]
        if any(kind == "list" for _, _, props in before + [elements[names.index("vertex")]] for kind, _ in props):
            raise InputError(f"{path}: list properties before/in the vertex element are not supported")
        if fmt == "ascii":
            skip = sum(n for _, n, _ in before)
            rows = np.loadtxt(handle, dtype=np.float64, skiprows=skip, max_rows=count, ndmin=2) if count else np.zeros((0, len(properties)))
            if rows.shape[0] != count:
                raise InputError(f"{path}: PLY body has {rows.shape[0]} vertices, the header says {count}")
            if count and rows.shape[1] != len(properties):
                raise InputError(f"{path}: PLY vertex lines have {rows.shape[1]} values, the header lists "
                                 f"{len(properties)} properties")
            table = {name: rows[:, i].astype(_PLY_TO_NUMPY[kind]) for i, (kind, name) in enumerate(properties)}
        else:
            order = _FORMATS[fmt]
            skip = sum(n * np.dtype([(p, order + _PLY_TO_NUMPY[k]) for k, p in props]).itemsize for _, n, props in before)
            dtype = np.dtype([(name, order + _PLY_TO_NUMPY[kind]) for kind, name in properties])
            expected = skip + count * dtype.itemsize
            after = sum(n for _, n, _ in elements[names.index("vertex") + 1:])
            available = path.stat().st_size - handle.tell()
            if available < expected:
                raise InputError(f"{path}: PLY body is truncated ({available} bytes, {count} vertices need {expected})")
            if after == 0 and available - expected > 1:
                raise InputError(f"{path}: PLY body has {available - expected} bytes more than {count} {fmt} vertices "
                                 "(an ASCII body under a binary header?)")
            body = np.fromfile(handle, dtype=np.uint8, count=expected)
            records = body[skip:].view(dtype)  # [P] structured
            table = {name: records[name].astype(records.dtype[name].newbyteorder("=")) for name in records.dtype.names}
    for axis in "xyz":
        if axis not in table:
            raise InputError(f"{path}: PLY vertex element has no '{axis}' property")
    xyz = np.stack([table.pop(a) for a in "xyz"], axis=1).astype(np.float32)  # [P, 3]
    normals = None
    if all(n in table for n in ("nx", "ny", "nz")):
        normals = np.stack([table.pop(n) for n in ("nx", "ny", "nz")], axis=1).astype(np.float32)  # [P, 3]
    rgb = None
    for names3 in (("red", "green", "blue"), ("r", "g", "b"), ("diffuse_red", "diffuse_green", "diffuse_blue")):
        if all(n in table for n in names3):
            cols = np.stack([table.pop(n) for n in names3], axis=1)  # [P, 3]
            rgb = _colors_to_uint8(cols) if cols.dtype.kind == "f" else np.clip(cols, 0, 255).astype(np.uint8)
            break
    table.pop("alpha", None)
    return {"xyz": xyz, "rgb": rgb, "normals": normals, "extra": table}
