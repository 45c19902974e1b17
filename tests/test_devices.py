"""The training device and its name in provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pipelines.core.errors import ParamsError
from pipelines.training import devices


def test_a_cpu_is_named_by_its_model_and_the_instruction_set_torch_uses():
    name = devices.device_name(torch.device("cpu"))
    capability = torch.backends.cpu.get_cpu_capability()
    assert name.endswith(f" ({capability})") and len(name) > len(capability) + 3


def test_the_cpu_model_comes_from_proc_cpuinfo_when_there_is_one(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6430\n")
    assert devices._cpu_model(cpuinfo) == "Intel(R) Xeon(R) Gold 6430"
    assert devices._cpu_model(tmp_path / "absent")  # platform's answer, never empty


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is available")
def test_asking_for_cuda_without_one_names_the_params_key():
    with pytest.raises(ParamsError, match=r"train\.device: found 'cuda'"):
        devices.choose_device("cuda")
    assert devices.choose_device("auto").type == "cpu"
