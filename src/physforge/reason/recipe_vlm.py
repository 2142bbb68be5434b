"""Recipe: supervised fine-tuning of a small VLM (transformers Idefics3 family) with TRL's
SFTTrainer on the data engine's conversational export (``messages`` + ``images``).

Reads top to bottom: config -> data -> tokenizer/processor -> model -> loop. Two modes:

- from scratch (default): a byte-level BPE tokenizer is trained on the dataset's text with
  ``tokenizers``, an Idefics3 processor is built around it (fully offline, no torchvision),
  and a tiny Idefics3 is instantiated from a config (``init/`` keeps its initial weights, the
  "without physics training" baseline);
- ``base_model``: a local transformers VLM folder is loaded (``local_files_only``) and trained
  with a LoRA adapter (peft); ``model/`` then holds the adapter, whose base is that folder.

Run folder: ``config.json``, ``export/`` (TRL Parquet), ``init/`` (scratch only), ``model/``
(weights or adapter, with the processor), ``summary.json``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from physforge.reason.config import VLMTrainConfig
from physforge.reason.errors import CheckpointError, ReasonDataError

log = logging.getLogger(__name__)


def dataset_texts(export_dir: Path) -> list[str]:
    """Every user prompt and answer of the TRL export's training split (tokenizer corpus)."""
    import pyarrow.parquet as pq

    texts = []
    for path in sorted((export_dir / "train").glob("*.parquet")):
        for messages in pq.read_table(path, columns=["messages"]).column("messages").to_pylist():
            for message in messages:
                texts.extend(part["text"] for part in message["content"] if part["type"] == "text" and part["text"])
    return texts


def build_processor(texts: list[str], config: VLMTrainConfig):
    """An Idefics3Processor around a byte-level BPE trained on ``texts`` (physforge.vlm)."""
    from physforge.vlm import build_processor as shared

    return shared(texts, vocab_size=config.vocab_size, image_size=config.image_size, patch_size=config.patch_size)


def build_model(processor, config: VLMTrainConfig):
    """A tiny Idefics3 from a config (physforge.vlm)."""
    from physforge.vlm import build_model as shared

    return shared(processor, hidden=config.hidden, layers=config.layers, heads=config.heads,
                  image_size=config.image_size, patch_size=config.patch_size)


def train_vlm(config: VLMTrainConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Run the recipe; returns the summary (also ``summary.json``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from datasets import load_dataset

    from physforge.data.export import export_dataset
    from physforge.outputs import prepare_run_folder, write_json
    from physforge.vlm import load_base_for_lora, sft_train

    # -- config -----------------------------------------------------------------------------------
    out = prepare_run_folder(config.out, overwrite=overwrite, config=config.to_dict())
    torch.manual_seed(config.seed)  # transformers initialises weights from torch's global generator

    # -- data -------------------------------------------------------------------------------------
    export_dir = export_dataset(config.data, "trl", out / "export")
    files = sorted(str(p) for p in (export_dir / "train").glob("*.parquet"))
    if not files:
        raise ReasonDataError(f"{config.data}: no training questions to fine-tune on; generate more scenes")
    train = load_dataset("parquet", data_files={"train": files}, split="train")
    train = train.shuffle(seed=config.seed).select(range(min(config.max_train_examples, len(train))))
    train = train.select_columns(["messages", "images"])
    n_images = sum(len(row) for row in train["images"]) if len(train) else 0

    # -- tokenizer / processor and model ----------------------------------------------------------
    peft_config = None
    if config.base_model is None:
        processor = build_processor(dataset_texts(export_dir), config)
        model = build_model(processor, config)
        model.save_pretrained(out / "init")
        processor.save_pretrained(out / "init")
    else:
        model, processor, peft_config = load_base_for_lora(config.base_model, rank=config.lora_rank,
                                                           alpha=config.lora_alpha, error=CheckpointError)
    n_params = sum(p.numel() for p in model.parameters())

    # -- loop -------------------------------------------------------------------------------------
    # loss on the answers only (from scratch, the template marks them); a base model's own template
    # may not, so LoRA trains on whole conversations
    trainer, result, seconds, losses = sft_train(model, processor, train, work_dir=out / "trainer", steps=config.steps,
                                                 batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                                                 assistant_only_loss=config.base_model is None,
                                                 peft_config=peft_config)
    trainer.model.save_pretrained(out / "model")
    processor.save_pretrained(out / "model")
    shutil.rmtree(out / "trainer", ignore_errors=True)
    examples = config.steps * config.batch_size
    images_per_example = n_images / max(1, len(train))
    summary = {"steps": config.steps, "parameters": n_params, "train_examples": len(train),
               "mode": "lora" if peft_config is not None else "scratch", "base_model": config.base_model,
               "train_seconds": round(seconds, 3), "train_loss": round(float(result.training_loss), 5),
               "final_loss": round(float(losses[-1]), 5) if losses else None, "losses": losses,
               "train_images_per_second": round(examples * images_per_example / seconds, 2) if seconds else None,
               "model": str(out / "model"), "init": str(out / "init") if peft_config is None else None}
    if not np.isfinite(summary["train_loss"]):
        raise ReasonDataError(f"training loss is {summary['train_loss']}; lower --lr")
    write_json(out / "summary.json", summary)
    return summary
