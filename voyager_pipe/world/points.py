"""Point storage of the world cache: columns of per-point data with amortised appends.

:class:`PointStore` only stores (no policy): ``xyz [P, 3]``, ``rgb [P, 3]``, ``normals [P, 3]``
and the source ``frame_ids [P]``. Appending ``A`` points costs ``O(A)`` (capacity doubles, the
columns are views of the first ``P`` rows), so a long run does not copy its whole history per
frame. ``rewrites`` counts the operations that removed or reordered rows (thinning, loading):
an incremental saver that saw ``rewrites == r`` and ``n`` rows only needs rows ``n:`` as long as
``rewrites`` is still ``r``.
"""

from __future__ import annotations

import torch

COLUMNS = ("xyz", "rgb", "normals", "frame_ids")
"""Names of the stored columns (also the tensor names of saved chunks)."""

_MIN_CAPACITY = 1024


def _empty_columns(capacity: int, device: torch.device) -> dict[str, torch.Tensor]:
    return {
        "xyz": torch.zeros(capacity, 3, device=device),  # [C, 3] float32 world
        "rgb": torch.zeros(capacity, 3, device=device),  # [C, 3] float32 in [0, 1]
        "normals": torch.zeros(capacity, 3, device=device),  # [C, 3] float32 unit or zero
        "frame_ids": torch.zeros(capacity, dtype=torch.long, device=device),  # [C] int64
    }


class PointStore:
    """Growing point columns on one device.

    Args:
        device: where the points live.
    """

    def __init__(self, device: torch.device | str | None = None):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._data = _empty_columns(0, self.device)
        self._count = 0
        self.rewrites = 0

    def __len__(self) -> int:
        return self._count

    # ------------------------------------------------------------------ columns (views of the first P rows)
    def column(self, name: str) -> torch.Tensor:
        return self._data[name][: self._count]

    @property
    def xyz(self) -> torch.Tensor:
        return self.column("xyz")  # [P, 3]

    @property
    def rgb(self) -> torch.Tensor:
        return self.column("rgb")  # [P, 3]

    @property
    def normals(self) -> torch.Tensor:
        return self.column("normals")  # [P, 3]

    @property
    def frame_ids(self) -> torch.Tensor:
        return self.column("frame_ids")  # [P]

    def rows(self, start: int = 0) -> dict[str, torch.Tensor]:
        """Columns of rows ``start:`` (views)."""
        return {name: self._data[name][start: self._count] for name in COLUMNS}

    # ------------------------------------------------------------------ changes
    def append(self, xyz: torch.Tensor, rgb: torch.Tensor, normals: torch.Tensor, frame_ids: torch.Tensor) -> None:
        """Append ``A`` points: xyz/rgb/normals ``[A, 3]``, frame_ids ``[A]``."""
        added = int(xyz.shape[0])
        if not (rgb.shape == normals.shape == xyz.shape == (added, 3) and frame_ids.shape == (added,)):
            raise ValueError(f"PointStore.append: shapes {tuple(xyz.shape)}, {tuple(rgb.shape)}, "
                             f"{tuple(normals.shape)}, {tuple(frame_ids.shape)} do not match [A, 3] x3, [A]")
        if added == 0:
            return
        need = self._count + added
        capacity = self._data["xyz"].shape[0]
        if need > capacity:
            grown = _empty_columns(max(need, 2 * capacity, _MIN_CAPACITY), self.device)
            for name in COLUMNS:
                grown[name][: self._count] = self._data[name][: self._count]
            self._data = grown
        new = {"xyz": xyz, "rgb": rgb, "normals": normals, "frame_ids": frame_ids}
        for name in COLUMNS:
            self._data[name][self._count: need] = new[name].to(self.device, self._data[name].dtype)
        self._count = need

    def select(self, index: torch.Tensor) -> None:
        """Keep only rows ``index`` ``[K]`` (in that order); counts as a rewrite."""
        kept = {name: self._data[name][: self._count][index.to(self.device)] for name in COLUMNS}
        self.replace(**kept)

    def replace(self, xyz: torch.Tensor, rgb: torch.Tensor, normals: torch.Tensor, frame_ids: torch.Tensor) -> None:
        """Replace every row; counts as a rewrite."""
        self._data = _empty_columns(0, self.device)
        self._count = 0
        self.append(xyz, rgb, normals, frame_ids)
        self.rewrites += 1

    def to(self, device: torch.device | str) -> "PointStore":
        """Move the stored rows to ``device`` (in place; returns self)."""
        self.device = torch.device(device)
        self._data = {name: self._data[name][: self._count].to(self.device) for name in COLUMNS}
        return self
