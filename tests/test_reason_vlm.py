"""The small-VLM recipe: a tiny Idefics3 trained from scratch with TRL's SFTTrainer (local BPE
tokenizer, no hub), then LoRA on that local checkpoint, each scored by the harness with the
"same model without images" and "without physics training" baselines."""

import json
import os

import pytest

from physforge.reason.config import VLMTrainConfig
from physforge.reason.errors import CheckpointError, ReasonConfigError
from reason_fixtures import tiny_dataset  # noqa: F401  (session fixture)

pytest.importorskip("trl")
os.environ["HF_HUB_OFFLINE"] = "1"


def test_vlm_config_names_bad_fields():
    with pytest.raises(ReasonConfigError, match="image_size: must be a multiple of patch_size"):
        VLMTrainConfig(data="d", out="o", image_size=60, patch_size=16)
    with pytest.raises(ReasonConfigError, match="heads"):
        VLMTrainConfig(data="d", out="o", hidden=30, heads=4)


@pytest.mark.slow
def test_scratch_sft_then_lora_and_evaluation(tiny_dataset, tmp_path):
    from safetensors.torch import load_file

    from physforge.reason import train_vlm
    from physforge.reason.harness import EvalConfig, evaluate

    scratch = train_vlm(VLMTrainConfig(data=str(tiny_dataset), out=str(tmp_path / "scratch"), steps=2, batch_size=2,
                                       max_train_examples=8, hidden=32, heads=2, layers=1, vocab_size=400))
    model_dir, init_dir = tmp_path / "scratch" / "model", tmp_path / "scratch" / "init"
    assert scratch["mode"] == "scratch" and len(scratch["losses"]) == 2 and scratch["train_images_per_second"] > 0
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= \
        {p.name for p in model_dir.iterdir()}
    trained, initial = load_file(str(model_dir / "model.safetensors")), load_file(str(init_dir / "model.safetensors"))
    assert trained.keys() == initial.keys() and any(not (trained[k] == initial[k]).all() for k in trained)

    result = evaluate(EvalConfig(data=str(tiny_dataset), out=str(tmp_path / "eval"), model=str(model_dir),
                                 splits=("test",), max_questions=3, blind_steps=0, max_new_tokens=4))
    names = [m["name"] for m in result["models"]]
    assert names == ["transformers:model", "majority", "blind (same model, no images)", "untrained"]
    assert all(m["grade"]["overall"]["questions"] == 3 and m["grade"]["missing_predictions"] == 0
               for m in result["models"])

    lora = train_vlm(VLMTrainConfig(data=str(tiny_dataset), out=str(tmp_path / "lora"), base_model=str(model_dir),
                                    steps=2, batch_size=2, max_train_examples=8))
    adapter = tmp_path / "lora" / "model"
    assert lora["mode"] == "lora" and (adapter / "adapter_config.json").is_file()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(model_dir.resolve())
    result = evaluate(EvalConfig(data=str(tiny_dataset), out=str(tmp_path / "eval_lora"), model=str(adapter),
                                 splits=("test",), max_questions=3, blind_steps=0, max_new_tokens=4))
    assert [m["name"] for m in result["models"]][-1] == "untrained" and result["missing_baselines"] == []
    with pytest.raises(CheckpointError, match="not a local transformers model folder"):
        train_vlm(VLMTrainConfig(data=str(tiny_dataset), out=str(tmp_path / "bad"), base_model=str(tmp_path)))
