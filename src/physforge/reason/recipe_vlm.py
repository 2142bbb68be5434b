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
import time
from pathlib import Path
from typing import Any

import numpy as np

from physforge.reason.config import VLMTrainConfig
from physforge.reason.errors import CheckpointError, ReasonDataError

log = logging.getLogger(__name__)

#: Special tokens of the from-scratch tokenizer (Idefics3 image tokens included).
SPECIAL_TOKENS = ("<pad>", "<unk>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
                  "<global-img>")
#: Role-prefixed turns; the assistant's answer and end-of-turn token sit inside generation markers
#: so that TRL's assistant-only loss trains exactly the answer (and stopping).
CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] | capitalize }}:"
                 "{% if message['role'] == 'assistant' %}{% generation %}{% for line in message['content'] %}"
                 "{% if line['type'] == 'text' %}{{ ' ' + line['text'] }}{% endif %}{% endfor %}"
                 "<end_of_utterance>{% endgeneration %}\n"
                 "{% else %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ ' ' + line['text'] }}"
                 "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
                 "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")


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
    """An Idefics3Processor around a byte-level BPE trained on ``texts`` (no hub, no torchvision)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Idefics3Processor, PreTrainedTokenizerFast
    from transformers.models.idefics3 import Idefics3ImageProcessorPil

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=config.vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<|im_start|>", eos_token="<end_of_utterance>",
                                        additional_special_tokens=list(SPECIAL_TOKENS[4:]) + ["<end_of_utterance>"])
    images = Idefics3ImageProcessorPil(do_resize=True, size={"longest_edge": config.image_size},
                                       max_image_size={"longest_edge": config.image_size}, do_image_splitting=False)
    # image_seq_len: tokens per image after the connector's pixel shuffle (scale factor 2)
    side = config.image_size // config.patch_size
    return Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=max(1, (side // 2) ** 2),
                             chat_template=CHAT_TEMPLATE)


def build_model(processor, config: VLMTrainConfig):
    """A tiny Idefics3 (SigLIP-style vision tower + Llama text model) from a config."""
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    tokenizer = processor.tokenizer
    model_config = Idefics3Config(
        vision_config={"hidden_size": config.hidden, "intermediate_size": 2 * config.hidden,
                       "num_hidden_layers": config.layers, "num_attention_heads": config.heads,
                       "image_size": config.image_size, "patch_size": config.patch_size},
        text_config={"model_type": "llama", "hidden_size": config.hidden, "intermediate_size": 2 * config.hidden,
                     "num_hidden_layers": config.layers, "num_attention_heads": config.heads,
                     "num_key_value_heads": config.heads, "vocab_size": len(tokenizer),
                     "max_position_embeddings": 2048, "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id},
        scale_factor=2, image_token_id=tokenizer.convert_tokens_to_ids("<image>"), pad_token_id=tokenizer.pad_token_id)
    model = Idefics3ForConditionalGeneration(model_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def train_vlm(config: VLMTrainConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Run the recipe; returns the summary (also ``summary.json``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    from physforge.data.export import export_dataset
    from physforge.outputs import OutputExistsError, write_json

    # -- config -----------------------------------------------------------------------------------
    out = Path(config.out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} already exists and is not empty; choose another --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config.to_dict())
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
        from peft import LoraConfig
        from transformers import AutoModelForImageTextToText, AutoProcessor

        base = Path(config.base_model)
        if not (base / "config.json").is_file():
            raise CheckpointError(base, "not a local transformers model folder (no config.json); give the folder "
                                  "holding config.json, the weights and the processor files")
        base = base.resolve()
        model = AutoModelForImageTextToText.from_pretrained(str(base), local_files_only=True, use_safetensors=True)
        processor = AutoProcessor.from_pretrained(str(base), local_files_only=True)
        peft_config = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                                 target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    n_params = sum(p.numel() for p in model.parameters())

    # -- loop -------------------------------------------------------------------------------------
    args = SFTConfig(output_dir=str(out / "trainer"), max_steps=config.steps,
                     per_device_train_batch_size=config.batch_size,
                     learning_rate=config.lr, lr_scheduler_type="cosine", warmup_steps=max(1, config.steps // 20),
                     logging_steps=max(1, config.steps // 20), save_strategy="no", report_to=[], seed=config.seed,
                     data_seed=config.seed, max_length=None, use_cpu=True, bf16=False, fp16=False,
                     dataloader_num_workers=0, disable_tqdm=True,
                     # loss on the answers only (from scratch, the template marks them); a base model's own
                     # template may not, so LoRA trains on whole conversations
                     assistant_only_loss=config.base_model is None)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=processor,
                         peft_config=peft_config)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    trainer.model.save_pretrained(out / "model")
    processor.save_pretrained(out / "model")
    shutil.rmtree(out / "trainer", ignore_errors=True)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
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
