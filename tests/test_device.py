"""voyager_pipe.device: the one owner of device and dtype names (contract 1)."""

from __future__ import annotations

import pytest
import torch

from voyager_pipe.device import DTYPES, resolve_device, resolve_dtype
from voyager_pipe.errors import InputError


def test_auto_and_cpu():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["meta", "gpu", "", "cuda:x", "cpu:-5"])
def test_bad_or_unusable_names_are_input_errors_naming_the_field(name):
    with pytest.raises(InputError, match="^device: "):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA present")
def test_explicit_cuda_without_cuda_fails_now():
    with pytest.raises(InputError, match="CUDA is not available"):
        resolve_device("cuda")


def test_dtypes():
    assert DTYPES == {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    assert resolve_dtype("fp16") is torch.float16 and resolve_dtype(torch.bfloat16) is torch.bfloat16
    with pytest.raises(InputError, match="voyager.dtype"):
        resolve_dtype("int8", field="voyager.dtype")


def test_one_device_setting():
    from voyager_pipe.config import PipelineConfig
    from voyager_pipe.models.config import VoyagerConfig

    assert "device" in PipelineConfig.__dataclass_fields__
    assert "device" not in VoyagerConfig.__dataclass_fields__


def test_gen_with_meta_device_fails_before_any_work(tmp_path):
    from voyager_pipe.cli import main

    assert main(["gen", "--image", str(tmp_path / "missing.png"), "--traj", "x.json", "--out", str(tmp_path / "o"),
                 "--set", "device=meta"]) == 2
    assert not (tmp_path / "o").exists()
