import pytest
import torch

from generation.engine.device import pick_device, pick_dtype

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


def test_it_picks_cuda_when_present_else_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert pick_device("").type == expected


def test_it_runs_float32_on_the_cpu():
    device = pick_device("cpu")
    assert device == torch.device("cpu")
    assert pick_dtype(device) == torch.float32


@no_cuda
@pytest.mark.parametrize("preference", ["cuda", "cuda:0", "CUDA:1"])
def test_it_rejects_cuda_without_cuda(preference):
    with pytest.raises(ValueError, match="CUDA"):
        pick_device(preference)


@pytest.mark.parametrize("preference", ["tpu", "gpu", "cuda:x"])
def test_it_rejects_unknown_devices(preference):
    with pytest.raises(ValueError):
        pick_device(preference)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_it_runs_float16_on_cuda():
    device = pick_device("cuda:0")
    assert device.type == "cuda"
    assert pick_dtype(device) == torch.float16
