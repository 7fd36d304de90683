import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from generation.engine import registry
from generation.engine.registry import ModelError, clear_model_cache, load_show_model, read_model_card

CPU = torch.device("cpu")


def _copy(src: str, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_it_switches_the_hub_off_on_import():
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_the_tiny_model_has_a_card_and_about_a_million_parameters(tiny_model_dir):
    card = read_model_card(tiny_model_dir)
    assert (card.name, card.kind, card.sample_size, card.colour_encoding) == (
        "tiny-test",
        "show_model",
        (32, 64),
        "ACEScct",
    )
    assert card.manifest == {"files": []}
    assert card.manifest_hash == registry.manifest_hash({"files": []})
    unet, _, _ = load_show_model(tiny_model_dir, CPU, torch.float32)
    assert 1.0e6 < sum(p.numel() for p in unet.parameters()) < 1.1e6
    assert not unet.training


def test_manifest_hash_ignores_key_order():
    a = {"files": [{"path": "a.exr", "sha256": "00", "licence": "CC0"}]}
    b = {"files": [{"licence": "CC0", "sha256": "00", "path": "a.exr"}]}
    assert registry.manifest_hash(a) == registry.manifest_hash(b)
    assert len(registry.manifest_hash(a)) == 64


def test_it_caches_loads_by_path_device_and_dtype(tiny_model_dir):
    clear_model_cache()
    first = load_show_model(tiny_model_dir, CPU, torch.float32)
    assert load_show_model(tiny_model_dir, CPU, torch.float32)[0] is first[0]
    clear_model_cache()
    assert load_show_model(tiny_model_dir, CPU, torch.float32)[0] is not first[0]


def test_a_model_stored_in_fp16_loads_in_fp32_on_the_cpu(tiny_model_dir, tmp_path):
    from diffusers import UNet2DModel

    target = _copy(tiny_model_dir, tmp_path / "half")
    unet = UNet2DModel.from_pretrained(target, subfolder="unet", local_files_only=True)
    unet.half().save_pretrained(target / "unet", safe_serialization=True)
    loaded, _, _ = load_show_model(target, CPU, torch.float32)
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}


def test_it_refuses_a_hub_only_directory(tiny_model_dir, tmp_path):
    target = tmp_path / "hub-only"
    target.mkdir()
    shutil.copy(Path(tiny_model_dir) / registry.CARD_NAME, target)
    (target / "model_index.json").write_text(
        json.dumps({"_class_name": "DDIMPipeline", "_name_or_path": "google/ddpm-cifar10-32"})
    )
    with pytest.raises(ModelError, match="network.*local directories"):
        load_show_model(target, CPU, torch.float32)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "lora"}, "kind"),
        ({"sample_size": [30, 64]}, "sample_size"),
        ({"name": ""}, "name"),
        ({"training_manifest": {"files": [{"path": "a.exr"}]}}, "licence"),
    ],
)
def test_it_rejects_invalid_cards(tiny_model_dir, tmp_path, change, message):
    target = _copy(tiny_model_dir, tmp_path / "bad")
    card = json.loads((target / registry.CARD_NAME).read_text())
    (target / registry.CARD_NAME).write_text(json.dumps({**card, **change}))
    with pytest.raises(ModelError, match=message):
        read_model_card(target)


def test_it_rejects_missing_directories_and_cards(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        read_model_card(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="model card"):
        read_model_card(tmp_path)
