"""Resume state: incremental, data only (safetensors + JSON), validated; nothing is ever unpickled."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from voyager_pipe.config import load_config
from voyager_pipe.errors import InputError
from voyager_pipe.pipeline import WorldPipeline
from voyager_pipe.world import WorldCache
from voyager_pipe.world.points import PointStore
from voyager_pipe.world.state import StateWriter, load_state

W, H, N = 48, 32, 13


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    from voyager_pipe.scenes import make_scene, scene_trajectory, write_scene_folder

    scene = make_scene("room", seed=1, texture_size=32)
    cams = scene_trajectory(scene, "orbit", frames=N, width=W, height=H)
    return write_scene_folder(tmp_path_factory.mktemp("resume") / "scene", scene, cams)  # image.png, depth.npy, cameras.json


def _config():
    return load_config(None, ["generate.clip_len=5", "generate.steps=2", "generate.progress=false",
                              "generate.backend=warp", "output.write_video=false", "device=cpu"])


class Stop(Exception):
    pass


def _interrupted(inputs, out, after_clip: int):
    def interrupt(clip):
        if clip == after_clip:
            raise Stop

    with pytest.raises(Stop):
        WorldPipeline(_config())(inputs / "image.png", inputs / "cameras.json", out, depth=inputs / "depth.npy",
                                 on_clip=lambda result, *_: interrupt(result.plan.index))
    return out.with_name(out.name + ".partial") / "state"


class Payload:
    """Unpickling this object creates ``marker``: proof that something was unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_each_save_appends_only_what_the_clip_added(inputs, tmp_path):
    state_dir = _interrupted(inputs, tmp_path / "run", after_clip=3)
    document = json.loads((state_dir / "state.json").read_text())
    chunks = document["chunks"]["geometry"]
    assert len(chunks) == 4  # one chunk per saved clip (the first also holds the input frame's points)
    history = document["cache"]["history"]
    added = [f["added"] for f in history]
    # clip k's chunk holds exactly the points of the frames it added to the cache
    assert sum(c["rows"] for c in chunks) == sum(added)
    files = sorted(p.name for p in state_dir.iterdir())
    assert not [f for f in files if f.endswith(".pt")]
    assert [f for f in files if f.startswith("scheduler_")] == [document["scheduler_tensors"]]  # older ones removed


def test_incremental_state_resumes_to_the_same_result(inputs, tmp_path):
    full = tmp_path / "full"
    WorldPipeline(_config())(inputs / "image.png", inputs / "cameras.json", full, depth=inputs / "depth.npy")
    for after in (0, 2):  # interrupted after the first clip, and after a later one
        cut = tmp_path / f"cut{after}"
        _interrupted(inputs, cut, after_clip=after)
        WorldPipeline(_config())(inputs / "image.png", inputs / "cameras.json", cut, depth=inputs / "depth.npy", resume=True)
        names = sorted(p.relative_to(full).as_posix() for p in full.rglob("*") if p.is_file() and p.name != "run.json")
        assert names == sorted(p.relative_to(cut).as_posix() for p in cut.rglob("*") if p.is_file() and p.name != "run.json")
        for name in names:
            if name != "config.yaml":
                assert (full / name).read_bytes() == (cut / name).read_bytes(), name


def test_writer_round_trip_equals_the_cache_and_rewrites_after_thinning(tmp_path):
    store = PointStore()
    writer = StateWriter(tmp_path)
    rng = torch.Generator().manual_seed(0)
    expected = []
    for step in range(3):
        n = 5 + step
        cols = (torch.rand(n, 3, generator=rng), torch.rand(n, 3, generator=rng), torch.zeros(n, 3),
                torch.full((n,), step, dtype=torch.long))
        store.append(*cols)
        expected.append(cols)
        if step == 2:
            store.select(torch.tensor([0, 2, 4]))  # thinning: the next save rewrites the store in full
        writer.save({"h": 1}, {"next_clip": step + 1, "cached_upto": 1, "timings": {}},
                    {"rng_state": torch.Generator().get_state()}, WorldCache().meta(),
                    {"geometry": store, "background": PointStore()})
    loaded = load_state(tmp_path)
    assert torch.equal(loaded.stores["geometry"]["xyz"], store.xyz)
    assert torch.equal(loaded.stores["geometry"]["frame_ids"], store.frame_ids)
    assert [c["rows"] for c in loaded.chunks["geometry"]] == [3]  # rewritten once, older chunks deleted
    assert sorted(p.name for p in tmp_path.glob("geometry_*")) == [loaded.chunks["geometry"][0]["file"]]


def test_planted_pickle_is_never_unpickled(inputs, tmp_path):
    state_dir = _interrupted(inputs, tmp_path / "run", after_clip=1)
    marker = tmp_path / "owned"
    # a state.pt as the old format wrote it: ignored (never opened)
    (state_dir / "state.pt").write_bytes(pickle.dumps(Payload(marker)))
    torch.save({"x": Payload(marker)}, state_dir / "other.pt")
    # a listed chunk replaced by a pickle: refused with one line naming that file
    document = json.loads((state_dir / "state.json").read_text())
    victim = state_dir / document["chunks"]["geometry"][-1]["file"]
    victim.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(InputError) as info:
        WorldPipeline(_config())(inputs / "image.png", inputs / "cameras.json", tmp_path / "run",
                                 depth=inputs / "depth.npy", resume=True)
    message = str(info.value)
    assert str(victim) in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["json_garbage", "json_nested", "bad_name", "wrong_shape", "missing_file",
                                    "wrong_dtype", "history_type", "scheduler_tensor"])
def test_bad_state_is_one_line_naming_the_file(inputs, tmp_path, damage):
    from safetensors.torch import save_file

    state_dir = _interrupted(inputs, tmp_path / "run", after_clip=1)
    path = state_dir / "state.json"
    document = json.loads(path.read_text())
    chunk = state_dir / document["chunks"]["geometry"][0]["file"]
    culprit = path
    if damage == "json_garbage":
        path.write_bytes(b"\xff{not json")
    elif damage == "json_nested":
        path.write_text("[" * 100000 + "]" * 100000)
    elif damage == "bad_name":
        document["chunks"]["geometry"][0]["file"] = "../../etc/passwd"
        path.write_text(json.dumps(document))
    elif damage == "wrong_shape":
        save_file({"xyz": torch.zeros(2, 3), "rgb": torch.zeros(2, 3), "normals": torch.zeros(2, 3),
                   "frame_ids": torch.zeros(2, dtype=torch.long)}, str(chunk))
        culprit = chunk
    elif damage == "missing_file":
        chunk.unlink()
        culprit = chunk
    elif damage == "wrong_dtype":
        tensors = {k: v for k, v in __import__("safetensors.torch").torch.load_file(str(chunk)).items()}
        tensors["frame_ids"] = tensors["frame_ids"].float()
        save_file(tensors, str(chunk))
        culprit = chunk
    elif damage == "history_type":
        document["cache"]["history"][0]["added"] = "many"
        path.write_text(json.dumps(document))
    elif damage == "scheduler_tensor":
        culprit = state_dir / document["scheduler_tensors"]
        save_file({"rng_state": torch.zeros(3, 3)}, str(culprit))
    with pytest.raises(InputError) as info:
        load_state(state_dir)
    assert str(culprit) in str(info.value) and "\n" not in str(info.value)
