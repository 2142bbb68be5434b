"""What every physforge VLM recipe shares: a tiny Idefics3 built from a config around a locally
trained byte-level BPE (fully offline, no torchvision), LoRA on a local checkpoint, TRL SFT,
loading a saved model or adapter, and greedy generation with an optional token whitelist.

Used by ``physforge.reason`` (physical question answering) and ``physforge.assets`` (image to
asset text). transformers, tokenizers, trl and peft are imported inside the functions, so
importing this module costs nothing.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from physforge.checkpoints import CheckpointError
from physforge.errors import MissingDependencyError

#: Special tokens of the from-scratch tokenizer (Idefics3 image tokens included).
SPECIAL_TOKENS = ("<pad>", "<unk>", "<|im_start|>", "<end_of_utterance>", "<image>", "<fake_token_around_image>",
                  "<global-img>")
#: Role-prefixed turns; every assistant answer and its end-of-turn token sit inside generation
#: markers so that TRL's assistant-only loss trains exactly the answers (and stopping), in every
#: round of a multi-round conversation.
CHAT_TEMPLATE = ("{% for message in messages %}{{ message['role'] | capitalize }}:"
                 "{% if message['role'] == 'assistant' %}{% generation %}{% for line in message['content'] %}"
                 "{% if line['type'] == 'text' %}{{ ' ' + line['text'] }}{% endif %}{% endfor %}"
                 "<end_of_utterance>{% endgeneration %}\n"
                 "{% else %}{% for line in message['content'] %}{% if line['type'] == 'text' %}{{ ' ' + line['text'] }}"
                 "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
                 "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}")


def _require_ml() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import tokenizers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise MissingDependencyError("transformers and tokenizers", "ml") from None


def build_processor(texts: list[str], *, vocab_size: int, image_size: int, patch_size: int):
    """An Idefics3Processor around a byte-level BPE of ``vocab_size`` trained on ``texts``;
    images resized to ``image_size`` px (longest edge), one global image (no splitting)."""
    _require_ml()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Idefics3Processor, PreTrainedTokenizerFast
    from transformers.models.idefics3 import Idefics3ImageProcessorPil

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, pad_token="<pad>", unk_token="<unk>",
                                        bos_token="<|im_start|>", eos_token="<end_of_utterance>",
                                        additional_special_tokens=list(SPECIAL_TOKENS[4:]) + ["<end_of_utterance>"])
    images = Idefics3ImageProcessorPil(do_resize=True, size={"longest_edge": image_size},
                                       max_image_size={"longest_edge": image_size}, do_image_splitting=False)
    # image_seq_len: tokens per image after the connector's pixel shuffle (scale factor 2)
    side = image_size // patch_size
    return Idefics3Processor(image_processor=images, tokenizer=tokenizer, image_seq_len=max(1, (side // 2) ** 2),
                             chat_template=CHAT_TEMPLATE)


def build_model(processor, *, hidden: int, layers: int, heads: int, image_size: int, patch_size: int,
                max_positions: int = 2048):
    """A tiny Idefics3 (SigLIP-style vision tower + Llama text model) from a config."""
    _require_ml()
    from transformers import Idefics3Config, Idefics3ForConditionalGeneration

    tokenizer = processor.tokenizer
    model_config = Idefics3Config(
        vision_config={"hidden_size": hidden, "intermediate_size": 2 * hidden,
                       "num_hidden_layers": layers, "num_attention_heads": heads,
                       "image_size": image_size, "patch_size": patch_size},
        text_config={"model_type": "llama", "hidden_size": hidden, "intermediate_size": 2 * hidden,
                     "num_hidden_layers": layers, "num_attention_heads": heads,
                     "num_key_value_heads": heads, "vocab_size": len(tokenizer),
                     "max_position_embeddings": max_positions, "pad_token_id": tokenizer.pad_token_id,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id},
        scale_factor=2, image_token_id=tokenizer.convert_tokens_to_ids("<image>"), pad_token_id=tokenizer.pad_token_id)
    model = Idefics3ForConditionalGeneration(model_config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def load_base_for_lora(base: str | Path, *, rank: int, alpha: int, error: type[CheckpointError] = CheckpointError):
    """(model, processor, peft LoraConfig) for LoRA on a local transformers VLM folder."""
    _require_ml()
    from peft import LoraConfig
    from transformers import AutoModelForImageTextToText, AutoProcessor

    base = Path(base)
    if not (base / "config.json").is_file():
        raise error(base, "not a local transformers model folder (no config.json); give the folder "
                    "holding config.json, the weights and the processor files")
    base = base.resolve()
    model = AutoModelForImageTextToText.from_pretrained(str(base), local_files_only=True, use_safetensors=True)
    processor = AutoProcessor.from_pretrained(str(base), local_files_only=True)
    peft_config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0,
                             target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    return model, processor, peft_config


def sft_train(model, processor, train_dataset, *, work_dir: str | Path, steps: int, batch_size: int, lr: float,
              seed: int, assistant_only_loss: bool, peft_config=None, max_length: int | None = None):
    """TRL's SFTTrainer on a conversational dataset (``messages`` + ``images``), fp32 on the CPU
    unless a GPU is there. Returns ``(trainer, train_output, seconds, losses)``."""
    _require_ml()
    import torch
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    args = SFTConfig(output_dir=str(work_dir), max_steps=steps, per_device_train_batch_size=batch_size,
                     learning_rate=lr, lr_scheduler_type="cosine", warmup_steps=max(1, steps // 20),
                     logging_steps=max(1, steps // 20), save_strategy="no", report_to=[], seed=seed,
                     data_seed=seed, max_length=max_length, use_cpu=not cuda, bf16=False, fp16=False,
                     dataloader_num_workers=0, disable_tqdm=True, assistant_only_loss=assistant_only_loss)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_dataset, processing_class=processor,
                         peft_config=peft_config)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return trainer, result, seconds, losses


def load_vlm(path: str | Path, *, error: type[CheckpointError] = CheckpointError):
    """(model in eval mode, processor) from a local folder; a peft adapter folder is applied on
    its local base model."""
    _require_ml()
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = Path(path)
    adapter = path / "adapter_config.json"
    try:
        if adapter.is_file():
            from peft import PeftModel

            base = json.loads(adapter.read_text()).get("base_model_name_or_path")
            if not base or not Path(base).is_dir():
                raise error(path, f"the adapter's base model {base!r} is not a local folder; edit "
                            "base_model_name_or_path in adapter_config.json to point at it")
            model = AutoModelForImageTextToText.from_pretrained(base, local_files_only=True, use_safetensors=True)
            model = PeftModel.from_pretrained(model, str(path), is_trainable=False)
            processor_path = path if (path / "processor_config.json").is_file() else Path(base)
        else:
            if not (path / "config.json").is_file():
                raise error(path, "not a transformers model folder (no config.json or adapter_config.json)")
            model = AutoModelForImageTextToText.from_pretrained(str(path), local_files_only=True, use_safetensors=True)
            processor_path = path
        processor = AutoProcessor.from_pretrained(str(processor_path), local_files_only=True)
    except (OSError, ValueError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise error(path, f"cannot load it as a local transformers VLM: {str(err)[:300]}") from None
    return model.eval(), processor


def token_whitelist(tokenizer, characters: str) -> list[int]:
    """Ids of every vocabulary token whose text uses only ``characters``, plus end of turn:
    the allowed set for constrained decoding of a plain-text number language."""
    allowed = set(characters)
    ids = []
    for token, index in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([token])
        if text and set(text) <= allowed:
            ids.append(index)
    ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))


def generate(model, processor, messages: list[dict[str, Any]], images: list, *, max_new_tokens: int,
             allowed_token_ids: list[int] | None = None, temperature: float | None = None,
             seed: int | None = None) -> dict[str, Any]:
    """Continuation of a chat: ``{"text", "tokens" (generated count), "mean_logprob" (per generated
    token, natural log, of the model's own distribution), "truncated" (hit max_new_tokens without
    ending)}``. Greedy unless ``temperature`` is given. allowed_token_ids: constrain every generated
    token to this set.

    temperature: sample from softmax(logits / temperature) (no top-k or top-p, so the model's
    generation_config cannot change what is drawn); needs ``seed``. seed: the draw is reproducible
    and local: torch's global RNG is forked around it, so the caller's random stream is untouched."""
    import torch

    if temperature is None and seed is not None:
        raise ValueError("seed is given without temperature: greedy decoding draws nothing; pass temperature "
                         "(e.g. 0.7) to sample, or leave seed out")
    if temperature is not None:
        if not isinstance(temperature, (int, float)) or not 0.0 < float(temperature) <= 10.0:
            raise ValueError(f"temperature is {temperature!r}, expected a number in (0, 10]; leave it out for greedy")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed is {seed!r}, expected an int >= 0: sampling needs a seed to be reproducible")
    tokenizer = processor.tokenizer
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[prompt], images=[images] if images else None, return_tensors="pt")
    kwargs: dict[str, Any] = {}
    if allowed_token_ids is not None:
        allowed = list(allowed_token_ids)
        kwargs["prefix_allowed_tokens_fn"] = lambda batch, ids: allowed
    common = dict(max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                  eos_token_id=tokenizer.eos_token_id, return_dict_in_generate=True, **kwargs)
    with torch.no_grad():
        if temperature is None:
            out = model.generate(**inputs, do_sample=False, output_scores=True, **common)
            scores = out.scores
        else:
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                out = model.generate(**inputs, do_sample=True, temperature=float(temperature), top_k=0, top_p=1.0,
                                     output_logits=True, **common)
            # the raw logits with the whitelist applied, as greedy's scores are: the log-probability
            # of the model, not of the temperature-flattened draw, so the low-confidence threshold means
            # the same thing for a sampled attempt
            scores = out.logits
            if allowed_token_ids is not None:
                mask = torch.full_like(scores[0], float("-inf"))
                mask[:, allowed] = 0.0
                scores = tuple(s + mask for s in scores)
    new = out.sequences[0, inputs["input_ids"].shape[1]:]
    logprobs = []
    for step, token in enumerate(new.tolist()):
        logprobs.append(float(torch.log_softmax(scores[step][0].float(), -1)[token]))
    ended = len(new) > 0 and int(new[-1]) == tokenizer.eos_token_id
    text = processor.decode(new, skip_special_tokens=True).strip()
    return {"text": text, "tokens": int(len(new)), "mean_logprob": sum(logprobs) / max(1, len(logprobs)),
            "truncated": not ended}


def image_pixels(processor, images: list) -> Any:
    """(N, 3, S, S) float32 pixel tensor of N PIL images, as the processor feeds the vision tower
    (resized, rescaled and normalised; one global image each, no splitting)."""
    pixels = processor.image_processor([[image] for image in images], return_tensors="pt")["pixel_values"]
    return pixels.reshape(-1, *pixels.shape[-3:])


def vision_tower(model):
    """The vision tower of a model or peft wrapper: Idefics3's ``model.model.vision_model`` (or a
    Qwen2-VL-style ``visual``). One function for everything that freezes it (SFT) and everything
    that embeds with it (asset retrieval), so what is frozen is what is embedded."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for path in ("model.vision_model", "vision_model", "model.visual", "visual"):
        current = base
        for name in path.split("."):
            current = getattr(current, name, None)
        if current is not None:
            return current
    raise CheckpointError(getattr(model, "name_or_path", "model"), "has no vision tower (expected an "
                          "Idefics3-style model.vision_model or a Qwen2-VL-style visual)")


def image_features(model, pixel_values) -> Any:
    """(N, hidden) the mean over image tokens of what the connector hands the text model: the
    image as the language model sees it. pixel_values: (N, 3, S, S) from ``image_pixels``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = base.model
    patches = inner.vision_model(pixel_values=pixel_values.to(next(inner.parameters()).dtype)).last_hidden_state
    return inner.connector(patches).mean(1)


def pretrain_vision(model, pixel_values, labels, targets, *, epochs: int, batch_size: int, lr: float, seed: int,
                    flip: bool = True) -> dict[str, Any]:
    """Auxiliary stage before SFT: trains the vision tower and connector (the text model is left
    untouched) through a linear head on ``image_features`` to classify ``labels`` ((N,) int64)
    and regress ``targets`` ((N, k) float32, smooth L1), then drops the head.

    Why: in the SFT loss the few image-dependent answer tokens (an object's name, category and
    size) are a small share of hundreds of tokens, so a vision tower trained from scratch by SFT
    alone learns almost nothing and the model writes the same object for every picture. flip:
    random horizontal flips (for labels and targets that a mirror image does not change).
    Returns ``{"losses" (per epoch mean), "train_accuracy", "seconds", "head" (the trained
    head: class logits then targets, for diagnostics)}``."""
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = base.model
    n, classes = int(pixel_values.shape[0]), int(labels.max()) + 1
    width = int(image_features(model, pixel_values[:1]).shape[-1])
    generator = torch.Generator().manual_seed(seed)
    head = torch.nn.Linear(width, classes + targets.shape[1])
    params = list(inner.vision_model.parameters()) + list(inner.connector.parameters()) + list(head.parameters())
    steps = max(1, epochs * n // batch_size)
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=0.1)
    was_training = model.training
    model.train()
    start, losses, epoch_losses = time.perf_counter(), [], []
    for step in range(steps):
        index = torch.randint(0, n, (batch_size,), generator=generator)
        x = pixel_values[index]
        if flip:
            mirrored = torch.rand(batch_size, generator=generator) < 0.5
            x = torch.where(mirrored[:, None, None, None], x.flip(-1), x)
        out = head(image_features(model, x))
        loss = (torch.nn.functional.cross_entropy(out[:, :classes], labels[index])
                + torch.nn.functional.smooth_l1_loss(out[:, classes:], targets[index], beta=0.1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        epoch_losses.append(loss.item())
        if len(epoch_losses) * batch_size >= n or step == steps - 1:
            losses.append(sum(epoch_losses) / len(epoch_losses))
            epoch_losses = []
    model.train(was_training)
    with torch.no_grad():
        predicted = torch.cat([head(image_features(model, pixel_values[i:i + 256]))[:, :classes].argmax(1)
                               for i in range(0, n, 256)])
    return {"losses": losses, "train_accuracy": float((predicted == labels).float().mean()),
            "seconds": time.perf_counter() - start, "head": head}
