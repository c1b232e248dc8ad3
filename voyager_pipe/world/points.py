"""Point storage of the world cache: columns of per-point data with amortised appends.

:class:`PointStore` only stores (no policy): ``xyz [P, 3]``, ``rgb [P, 3]``, ``normals [P, 3]``
and the source ``frame_ids [P]``. Appending ``A`` points costs ``O(A)`` (capacity doubles, the
columns are views of the first ``P`` rows), so a long run does not copy its whole history per
frame. ``rewrites`` counts the operations that removed or reordered rows (thinning, loading):
an incremental saver that saw ``rewrites == r`` and ``n`` rows only needs rows ``n:`` as long as
``rewrites`` is still ``r``.

Rows come in *blocks*: the runs of consecutive rows with one frame id (what one frame added,
cut into pieces of at most :data:`BLOCK_ROWS` rows), each with its axis-aligned bounds, so
that :meth:`PointStore.rows_in_view` hands a renderer only the blocks some camera can see: per-frame work then follows what is in view, not the
length of the history.
"""

from __future__ import annotations

import torch

COLUMNS = ("xyz", "rgb", "normals", "frame_ids")
"""Names of the stored columns (also the tensor names of saved chunks)."""

_MIN_CAPACITY = 1024
BLOCK_ROWS = 8192
"""Most rows in one block (the unit of view culling)."""


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
        self.rewrites = 0
        self._clear()

    def _clear(self) -> None:
        self._data = _empty_columns(0, self.device)
        self._count = 0
        self._block_starts: list[int] = []  # first row of each block
        self._block_bounds = torch.zeros(0, 2, 3, device=self.device)  # [B, 2, 3] min, max corner

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
        self._add_blocks(self._count, need)
        self._count = need

    def _add_blocks(self, start: int, stop: int) -> None:
        """Blocks (runs of one frame id) of rows ``start:stop`` with their bounds."""
        ids = self._data["frame_ids"][start:stop]  # [A]
        xyz = self._data["xyz"][start:stop]  # [A, 3]
        _, runs = torch.unique_consecutive(ids, return_counts=True)  # [r]
        # a run longer than BLOCK_ROWS is cut into pieces of consecutive rows (consecutive pixels
        # of one frame: a few image rows, tighter bounds than the whole frame's)
        pieces = (runs + BLOCK_ROWS - 1) // BLOCK_ROWS  # [r]
        lengths = torch.full((int(pieces.sum()),), BLOCK_ROWS, device=self.device)  # [b]
        last = torch.cumsum(pieces, 0) - 1  # [r] the last piece of each run
        lengths[last] = runs - (pieces - 1) * BLOCK_ROWS
        block = torch.repeat_interleave(torch.arange(len(lengths), device=self.device), lengths)  # [A]
        block = block[:, None].expand(-1, 3)  # [A, 3]
        lo = torch.full((len(lengths), 3), float("inf"), device=self.device).scatter_reduce_(0, block, xyz, "amin")  # [b, 3]
        hi = torch.full((len(lengths), 3), -float("inf"), device=self.device).scatter_reduce_(0, block, xyz, "amax")  # [b, 3]
        firsts = (start + torch.cumsum(lengths, 0) - lengths).tolist()
        self._block_starts.extend(firsts)
        self._block_bounds = torch.cat([self._block_bounds, torch.stack([lo, hi], 1)])  # [B, 2, 3]

    def rows_in_view(self, K: torch.Tensor, w2c: torch.Tensor, width: int, height: int,
                     margin: float = 2.0, near: float = 1e-3) -> torch.Tensor | None:
        """Rows of the blocks whose bounds reach into some camera's view; ``None`` when that is every row.

        Args:
            K: ``[N, 3, 3]``; w2c: ``[N, 4, 4]``: the cameras (``width x height`` pixels).
            margin: pixels around the image that still count as in view (splatting reaches 2).
            near: the renderer's near plane.
        Returns:
            ``[V]`` int64 row indices in storage order, or ``None``.
        """
        if not self._block_starts:
            return None
        corner_pick = torch.tensor([[(c >> a) & 1 for a in range(3)] for c in range(8)], device=self.device)  # [8, 3]
        bounds = self._block_bounds  # [B, 2, 3]
        corners = torch.where(corner_pick.bool(), bounds[:, None, 1], bounds[:, None, 0])  # [B, 8, 3]
        R, t = w2c[:, :3, :3].to(bounds), w2c[:, :3, 3].to(bounds)  # [N, 3, 3], [N, 3]
        cam = torch.einsum("nij,bkj->nbki", R, corners) + t[:, None, None]  # [N, B, 8, 3]
        uz = cam @ K[:, 0].to(bounds)[:, None, :, None]  # [N, B, 8, 1] u * z
        vz = cam @ K[:, 1].to(bounds)[:, None, :, None]  # [N, B, 8, 1] v * z
        z = cam[..., 2:3]  # [N, B, 8, 1]
        # the view is the intersection of five half-spaces; a block all of whose corners lie
        # outside one of them is out of view (conservative: a block is kept if unsure)
        inside = torch.cat([z - near, uz + margin * z, (width + margin) * z - uz,
                            vz + margin * z, (height + margin) * z - vz], dim=-1) >= 0  # [N, B, 8, 5]
        seen = inside.any(dim=2).all(dim=-1).any(dim=0)  # [B]
        if bool(seen.all()):
            return None
        starts = torch.tensor(self._block_starts + [self._count], device=self.device)  # [B + 1]
        lengths = (starts[1:] - starts[:-1])[seen]  # [b]
        offsets = torch.repeat_interleave(starts[:-1][seen] - (torch.cumsum(lengths, 0) - lengths), lengths)  # [V]
        return torch.arange(int(lengths.sum()), device=self.device) + offsets  # [V]

    def select(self, index: torch.Tensor) -> None:
        """Keep only rows ``index`` ``[K]`` (in that order); counts as a rewrite."""
        kept = {name: self._data[name][: self._count][index.to(self.device)] for name in COLUMNS}
        self.replace(**kept)

    def replace(self, xyz: torch.Tensor, rgb: torch.Tensor, normals: torch.Tensor, frame_ids: torch.Tensor) -> None:
        """Replace every row; counts as a rewrite."""
        self._clear()
        self.append(xyz, rgb, normals, frame_ids)
        self.rewrites += 1

    def to(self, device: torch.device | str) -> "PointStore":
        """Move the stored rows to ``device`` (in place; returns self)."""
        self.device = torch.device(device)
        self._data = {name: self._data[name][: self._count].to(self.device) for name in COLUMNS}
        self._block_bounds = self._block_bounds.to(self.device)
        return self
