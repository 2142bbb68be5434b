"""Recipe: a VLM that writes an object as text from one image (PhysX-Anything's generative half).

Reads top to bottom: config -> data -> tokenizer/processor -> model -> loop; then
``AssetGenerator``, the multi-round inference. The VLM code is ``physforge.vlm`` (shared with
``physforge.reason``): from scratch, a byte-level BPE trained on the dataset's target text and
a tiny Idefics3 from a config; with ``base_model``, LoRA on a local transformers VLM folder.
Training is TRL's ``SFTTrainer`` on the dataset's conversational rows, the loss on every
assistant round (global answer and each part's geometry). A model trained from scratch can first
have its vision tower taught the training images' category and size (``vision_pretrain_epochs``)
and see extra global-answer-only rows (``global_repeats``): without them, the image-dependent
tokens are too small a share of the loss and the model learns to ignore the image.

Run folder: ``config.json``, ``model/`` (weights or adapter + processor + ``physforge_asset.json``
with the geometry resolution), ``summary.json``.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from physforge.checkpoints import CheckpointError
from physforge.configs import ConfigError, JsonConfig, check_float, check_int
from physforge.threads import with_config_threads

LOG = logging.getLogger(__name__)

MODEL_META = "physforge_asset.json"


class AssetVLMConfigError(ConfigError):
    """An asset-VLM training config holds a bad value; ``path`` names the field."""


@dataclass(frozen=True)
class AssetVLMConfig(JsonConfig):
    """One training run of ``physforge asset train-vlm``.

    data: image-asset dataset folder (``physforge asset image-data``). out: run folder.
    base_model: a local transformers VLM folder to fine-tune with LoRA (None: a tiny Idefics3
    from scratch). seed: initialisation and data order. steps: optimiser steps. batch_size:
    conversations per step. lr: learning rate. image_size: px given to the vision tower (a
    multiple of patch_size). patch_size: px. hidden, layers, heads: width, depth and attention
    heads of the vision and text towers. vocab_size: BPE vocabulary. lora_rank, lora_alpha:
    LoRA settings (base_model only). max_train_examples: cap on training rows (drawn with the seed).
    vision_pretrain_epochs: epochs of the auxiliary stage before SFT (``vlm.pretrain_vision``:
    the vision tower and connector learn each training image's category and log-dimensions; 0
    skips it; ignored with base_model, whose vision tower is pretrained). vision_pretrain_lr:
    its learning rate. global_repeats: each training row is also added this many times as a
    global-answer-only conversation (round 1: the image and the name/category/size/parts/joints
    answer, no geometry rounds), so the image-dependent tokens weigh more in the SFT loss;
    these rows are short and cheap.
    freeze_vision: keep the vision tower fixed during SFT (the connector and text model train),
    so that SFT's early, noisy gradients from a random text model cannot undo the auxiliary stage.
    init_model: a full (non-LoRA) ``model/`` folder from an earlier ``train-vlm`` run whose weights
    and processor SFT continues from (None: start fresh). A second, lower-lr stage on the same
    data: the first run sees each row less than once in its steps. Skips vision pretraining.
    threads: torch CPU threads (0: torch's default). One is the default because on a shared
    2-core machine two threads spin on each other: measured 5-10x slower per step under load.
    retrieval: train a retrieval-augmented model: every conversation's first user turn carries
    the target text of the training object whose image is nearest in the model's vision-tower
    embedding (``assets.image_retrieval``; another object's, never a view of the row's own), and
    the model folder keeps that index so inference retrieves the same way. Needs a vision tower
    that SFT leaves unchanged (freeze_vision, and init_model or vision_pretrain_epochs), or the
    saved index would no longer match the saved model.
    retrieval_at: where the reference goes (``image_text.with_reference``): "global", the first user
    turn, before the global answer; "geometry", the first geometry round's user turn, the neighbour
    then retrieved within the category of the global answer (in training the row's own category),
    so the global answer is written from the image alone.
    """

    data: str
    out: str
    base_model: str | None = None
    seed: int = 0
    steps: int = 600
    batch_size: int = 8
    lr: float = 2e-3
    image_size: int = 96
    patch_size: int = 8
    hidden: int = 128
    layers: int = 3
    heads: int = 4
    vocab_size: int = 1024
    lora_rank: int = 16
    lora_alpha: int = 32
    max_train_examples: int = 100_000
    threads: int = 1
    vision_pretrain_epochs: int = 0
    vision_pretrain_lr: float = 2e-3
    global_repeats: int = 0
    freeze_vision: bool = False
    init_model: str | None = None
    retrieval: bool = False
    retrieval_at: str = "global"

    error_type = AssetVLMConfigError

    def __post_init__(self):
        e = AssetVLMConfigError
        for name in ("data", "out"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise e(name, "expected a folder path")
        if self.base_model is not None and (not isinstance(self.base_model, str) or not self.base_model):
            raise e("base_model", "expected a local model folder or None")
        if self.init_model is not None and (not isinstance(self.init_model, str) or not self.init_model):
            raise e("init_model", "expected a model/ folder from 'asset train-vlm' or None")
        if self.init_model is not None and self.base_model is not None:
            raise e("init_model", "give either base_model (LoRA on a pretrained VLM) or init_model (continue "
                    "a train-vlm model), not both")
        check_int("seed", self.seed, 0, 2**31, e)
        check_int("steps", self.steps, 1, 10_000_000, e)
        check_int("batch_size", self.batch_size, 1, 4096, e)
        check_float("lr", self.lr, 0.0, 10.0, e)
        check_int("image_size", self.image_size, 16, 2048, e)
        check_int("patch_size", self.patch_size, 2, 64, e)
        if self.image_size % (2 * self.patch_size):
            raise e("image_size", f"must be a multiple of 2 x patch_size ({2 * self.patch_size}) for the "
                    f"connector's pixel shuffle, got {self.image_size}")
        check_int("hidden", self.hidden, 8, 8192, e)
        check_int("layers", self.layers, 1, 64, e)
        check_int("heads", self.heads, 1, 128, e)
        if self.hidden % self.heads:
            raise e("heads", f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        check_int("vocab_size", self.vocab_size, 300, 200_000, e)
        check_int("lora_rank", self.lora_rank, 1, 1024, e)
        check_int("lora_alpha", self.lora_alpha, 1, 4096, e)
        check_int("max_train_examples", self.max_train_examples, 1, 100_000_000, e)
        check_int("threads", self.threads, 0, 1024, e)
        check_int("vision_pretrain_epochs", self.vision_pretrain_epochs, 0, 100_000, e)
        check_float("vision_pretrain_lr", self.vision_pretrain_lr, 0.0, 10.0, e)
        check_int("global_repeats", self.global_repeats, 0, 100, e)
        if not isinstance(self.freeze_vision, bool):
            raise e("freeze_vision", f"expected true or false, got {self.freeze_vision!r}")
        if not isinstance(self.retrieval, bool):
            raise e("retrieval", f"expected true or false, got {self.retrieval!r}")
        from physforge.assets.image_text import REFERENCE_PLACES

        if self.retrieval_at not in REFERENCE_PLACES:
            raise e("retrieval_at", f"expected one of {REFERENCE_PLACES}, got {self.retrieval_at!r}")
        if self.retrieval and self.base_model is not None:
            raise e("retrieval", "a retrieval model embeds images with a vision tower trained here; LoRA on "
                    "base_model changes the tower after the index is built. Leave base_model out (use init_model)")
        if self.retrieval and not (self.freeze_vision and (self.init_model is not None
                                                           or self.vision_pretrain_epochs > 0)):
            raise e("retrieval", "retrieval needs a trained vision tower kept frozen during SFT, so the saved "
                    "index matches the saved model: set freeze_vision true and give init_model (or "
                    f"vision_pretrain_epochs > 0); got freeze_vision={self.freeze_vision}, init_model="
                    f"{self.init_model!r}, vision_pretrain_epochs={self.vision_pretrain_epochs}")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def train_texts(rows_messages: list[list[dict]]) -> list[str]:
    """Every prompt and answer of the training conversations (the tokenizer's corpus)."""
    return [part["text"] for messages in rows_messages for message in messages for part in message["content"]
            if part["type"] == "text" and part["text"]]


@with_config_threads
def train_asset_vlm(config: AssetVLMConfig, *, overwrite: bool = False) -> dict[str, Any]:
    """Run the recipe; returns the summary (also ``summary.json``)."""
    import torch
    from datasets import load_dataset

    from physforge.outputs import prepare_run_folder, write_json
    from physforge.vlm import build_model, build_processor, load_base_for_lora, sft_train

    # -- config -----------------------------------------------------------------------------------
    out = prepare_run_folder(config.out, overwrite=overwrite, config=config.to_dict())
    torch.manual_seed(config.seed)  # transformers initialises weights from torch's global generator

    # -- data -------------------------------------------------------------------------------------
    data = Path(config.data)
    info_path, train_path = data / "meta" / "info.json", data / "train" / "data.parquet"
    if not info_path.is_file() or not train_path.is_file():
        raise AssetVLMConfigError("data", f"{data} is not an image-asset dataset with a train split; write one with "
                                  "'physforge asset image-data --out DIR'")
    info = json.loads(info_path.read_text())
    train = load_dataset("parquet", data_files={"train": str(train_path)}, split="train")
    split_rows = train  # the whole train split, in file order: what a retrieval index holds
    train = train.shuffle(seed=config.seed).select(range(min(config.max_train_examples, len(train))))
    columns = train.select_columns(["category", "annotation", "images"])
    # object_id and view stay until retrieval has matched each row to its neighbour
    train = train.select_columns(["messages", "images", "object_id", "view"])
    if config.global_repeats:
        from datasets import concatenate_datasets

        global_only = train.map(lambda row: {"messages": row["messages"][:2]})
        train = concatenate_datasets([train] + [global_only] * config.global_repeats).shuffle(seed=config.seed)

    # -- tokenizer / processor and model ----------------------------------------------------------
    peft_config = None
    if config.init_model is not None:
        from physforge.vlm import load_vlm

        init = Path(config.init_model)
        if (init / "adapter_config.json").is_file():
            raise AssetVLMConfigError("init_model", f"{init} is a LoRA adapter; give a full model/ folder")
        model, processor = load_vlm(init)
        model.train()
    elif config.base_model is None:
        processor = build_processor(train_texts(train["messages"]), vocab_size=config.vocab_size,
                                    image_size=config.image_size, patch_size=config.patch_size)
        model = build_model(processor, hidden=config.hidden, layers=config.layers, heads=config.heads,
                            image_size=config.image_size, patch_size=config.patch_size)
    else:
        model, processor, peft_config = load_base_for_lora(config.base_model, rank=config.lora_rank,
                                                           alpha=config.lora_alpha)
    n_params = sum(p.numel() for p in model.parameters())
    vision = None
    if config.vision_pretrain_epochs and config.base_model is None and config.init_model is None:
        vision = _pretrain_vision(model, processor, columns, info["categories"]["train"], config, data)
        # logged before SFT starts, so a long run's vision stage can be judged without waiting for it
        LOG.info("vision pretraining: %s", {k: v for k, v in vision.items() if k != "losses"})
    if config.freeze_vision:
        from physforge.vlm import vision_tower

        vision_tower(model).requires_grad_(False)
    index = None
    if config.retrieval:
        index, train = _with_references(model, processor, split_rows, train, config.retrieval_at)
    train = train.select_columns(["messages", "images"])
    tokenizer = processor.tokenizer
    lengths = [len(tokenizer(processor.apply_chat_template(m, tokenize=False))["input_ids"])
               for m in train["messages"][:200]]

    # -- loop -------------------------------------------------------------------------------------
    trainer, result, seconds, losses = sft_train(model, processor, train, work_dir=out / "trainer", steps=config.steps,
                                                 batch_size=config.batch_size, lr=config.lr, seed=config.seed,
                                                 assistant_only_loss=config.base_model is None,
                                                 peft_config=peft_config)
    model_dir = out / "model"
    trainer.model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)
    meta = {"kind": "physforge.asset_vlm", "resolution": info["resolution"], "image_size": config.image_size,
            "train_categories": info["categories"]["train"]}
    if index is not None:
        index.save(model_dir)
        meta["retrieval"] = True  # a folder that says so but lacks its index is refused on load
        meta["retrieval_at"] = config.retrieval_at
    write_json(model_dir / MODEL_META, meta)
    shutil.rmtree(out / "trainer", ignore_errors=True)
    summary = {"steps": config.steps, "parameters": n_params, "train_examples": len(train),
               "mode": "lora" if peft_config is not None else "continued" if config.init_model else "scratch",
               "base_model": config.base_model, "init_model": config.init_model,
               "train_seconds": round(seconds, 3), "train_loss": round(float(result.training_loss), 5),
               "final_loss": round(float(losses[-1]), 5) if losses else None, "losses": losses,
               "train_images_per_second": round(config.steps * config.batch_size / seconds, 3) if seconds else None,
               "mean_text_tokens": float(np.mean(lengths)) if lengths else None, "model": str(model_dir),
               "vision_pretrain": vision,
               "retrieval": None if index is None else {"rows": int(len(index.row_objects)),
                                                        "objects": len(index.object_ids)}}
    if not np.isfinite(summary["train_loss"]):
        raise AssetVLMConfigError("lr", f"training loss is {summary['train_loss']}; lower --lr")
    write_json(out / "summary.json", summary)
    return summary


def _with_references(model, processor, split_rows, train, at: str):
    """(index over the whole train split, training rows whose first turn carries their
    leave-one-object-out neighbour's reference). The rows are matched to the index by
    (object_id, view)."""
    from physforge.assets.image_retrieval import build_index, references_of_rows
    from physforge.assets.image_text import with_reference

    object_ids = split_rows["object_id"]
    start = time.process_time()
    index = build_index(model, processor, _pil_images(split_rows["images"]), object_ids, split_rows["category"],
                        references_of_rows(split_rows["messages"], object_ids))
    neighbours = index.leave_one_object_out(same_category=at == "geometry")
    reference = {(o, v): index.references[k] for o, v, k in zip(object_ids, split_rows["view"], neighbours)}
    LOG.info("retrieval index: %d images of %d objects in %.1f CPU-s", len(object_ids), len(index.object_ids),
             time.process_time() - start)
    train = train.map(lambda row: {"messages": with_reference(row["messages"],
                                                              reference[(row["object_id"], row["view"])], at)})
    return index, train


def _pil_images(column) -> list:
    from PIL import Image

    out = []
    for images in column:
        image = images[0]
        if isinstance(image, dict):  # undecoded datasets Image: PNG bytes
            image = Image.open(io.BytesIO(image["bytes"]))
        out.append(image.convert("RGB"))
    return out


def _vision_targets(rows, categories: list[str]):
    """(labels (N,) int64 category index, targets (N, 3) float32 log-dimensions in m) of rows."""
    import torch

    index = {c: i for i, c in enumerate(categories)}
    labels = torch.tensor([index[c] for c in rows["category"]], dtype=torch.int64)
    dims = [json.loads(a)["dimensions"] for a in rows["annotation"]]
    return labels, torch.tensor(np.log(np.asarray(dims, dtype=np.float64)), dtype=torch.float32)


def _pretrain_vision(model, processor, rows, categories: list[str], config: AssetVLMConfig, data: Path) -> dict:
    """The auxiliary vision stage; also scores its head on the unseen-seed split when the dataset
    has one (a diagnostic only: nothing is selected on it)."""
    import torch
    from datasets import load_dataset

    from physforge.vlm import image_features, image_pixels, pretrain_vision

    labels, targets = _vision_targets(rows, categories)
    pixels = image_pixels(processor, _pil_images(rows["images"]))
    result = pretrain_vision(model, pixels, labels, targets, epochs=config.vision_pretrain_epochs,
                             batch_size=32, lr=config.vision_pretrain_lr, seed=config.seed)
    head = result.pop("head")
    out = {"epochs": config.vision_pretrain_epochs, "seconds": round(result["seconds"], 3),
           "train_accuracy": round(result["train_accuracy"], 4), "losses": [round(v, 5) for v in result["losses"]]}
    test_path = data / "test_objects" / "data.parquet"
    if test_path.is_file():
        test = load_dataset("parquet", data_files={"test": str(test_path)}, split="test")
        test_labels, test_targets = _vision_targets(test, categories)
        with torch.no_grad():
            scores = head(image_features(model, image_pixels(processor, _pil_images(test["images"]))))
        out["test_objects_accuracy"] = round(float((scores[:, :len(categories)].argmax(1) == test_labels)
                                                   .float().mean()), 4)
        out["test_objects_log_dimension_error"] = round(float((scores[:, len(categories):] - test_targets)
                                                              .abs().mean()), 4)
    return out


# -- inference ---------------------------------------------------------------------------------

#: Where the built-in model lives (shipped with the package).
BUILTIN_MODEL = Path(__file__).parent / "builtin_model"


class AssetGenerator:
    """Multi-round generation from one image: the global answer, parsed and repaired into the
    schema, then each part's geometry decoded under a digits/space/semicolon token whitelist.

        generator = AssetGenerator()                  # the built-in model, or AssetGenerator(path)
        result = generator.generate(rgb)              # rgb: (H, W, 3) uint8
        result["annotation"], result["voxels"]        # AssetAnnotation, label -> (n, n, n) bool

    A retrieval-augmented model (its metadata says ``retrieval``; its folder holds
    ``image_retrieval.INDEX_FILE``) first retrieves the training object nearest to the image and
    asks with its reference text (``image_text.first_user_turn``); ``result["retrieved"]`` names it
    (None without retrieval).
    """

    def __init__(self, model: str | Path | None = None, *, max_global_tokens: int = 500,
                 max_part_tokens: int = 200):
        from physforge.assets.image_text import GEOMETRY_CHARACTERS, GEOMETRY_RESOLUTION
        from physforge.vlm import load_vlm, token_whitelist

        path = Path(model) if model is not None else BUILTIN_MODEL
        if not path.is_dir():
            raise CheckpointError(path, "no such model folder; give a 'model/' folder written by "
                                  "'physforge asset train-vlm' or leave --model out for the built-in model")
        self.path = path
        self.model, self.processor = load_vlm(path)
        meta_path = path / MODEL_META
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        self.resolution = int(meta.get("resolution", GEOMETRY_RESOLUTION))
        self.image_size = int(meta.get("image_size", 96))
        self.geometry_tokens = token_whitelist(self.processor.tokenizer, GEOMETRY_CHARACTERS)
        self.max_global_tokens, self.max_part_tokens = max_global_tokens, max_part_tokens
        from physforge.assets.image_retrieval import INDEX_FILE, check_index_matches, load_index
        from physforge.assets.image_text import REFERENCE_PLACES

        # only a folder whose train-vlm run says so retrieves: a model trained without references must
        # not be prompted with one because an index file lies beside it. load_index names the missing
        # file and the fix when the folder says it has one
        self.retrieval = load_index(path) if meta.get("retrieval") is True else None
        self.retrieval_at = meta.get("retrieval_at", "global")
        if self.retrieval is not None:
            if self.retrieval_at not in REFERENCE_PLACES:
                raise CheckpointError(meta_path, f"retrieval_at is {self.retrieval_at!r}, expected one of "
                                      f"{REFERENCE_PLACES}; retrain, or restore the file written by train-vlm")
            check_index_matches(self.retrieval, self.model, path / INDEX_FILE)

    def retrieve(self, picture, exclude_object: str | None = None, category: str | None = None):
        """The training object nearest to one PIL image (``image_retrieval.Neighbour``), or None for a
        model without retrieval. exclude_object: never that object (for an image of the training set);
        category: only that category's objects (when the index has any)."""
        if self.retrieval is None:
            return None
        from physforge.assets.image_retrieval import embed_images

        return self.retrieval.neighbour(embed_images(self.model, self.processor, [picture])[0], exclude_object,
                                        category)

    def generate_global(self, image: np.ndarray, exclude_object: str | None = None) -> dict[str, Any]:
        """Round 1 only (name, category, size, parts, joints) for one RGB image (H, W, 3) uint8:
        ``vlm.generate``'s dict (plus ``retrieved``). What the image ablation of ``asset eval`` compares."""
        from PIL import Image

        from physforge.assets.image_text import first_user_turn
        from physforge.vlm import generate

        picture = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
        # a geometry-place model answers round 1 from the image alone
        neighbour = self.retrieve(picture, exclude_object) if self.retrieval_at == "global" else None
        messages = [first_user_turn(neighbour.reference if neighbour is not None else None)]
        return generate(self.model, self.processor, messages, [picture], max_new_tokens=self.max_global_tokens) | {
            "retrieved": neighbour.object_id if neighbour is not None else None}

    def generate(self, image: np.ndarray, exclude_object: str | None = None, *, seed: int | None = None,
                 temperature: float = 0.7) -> dict[str, Any]:
        """Text -> schema -> voxels for one RGB image (H, W, 3) uint8. Raises GenerationParseError
        when the global answer cannot be repaired into an annotation. exclude_object: a retrieval
        model never retrieves that training object (for an image of the training set).
        seed: None (default) decodes every round greedily; an int samples every round at
        ``temperature``, round r with its own seed drawn from (seed, r), so one seed gives one
        reproducible generation and the caller's torch RNG is untouched (``vlm.generate``)."""
        from PIL import Image

        from physforge.assets.image_text import first_user_turn, geometry_prompt, parse_geometry, parse_global
        from physforge.vlm import generate

        start = time.perf_counter()
        picture = Image.fromarray(np.asarray(image, dtype=np.uint8)).convert("RGB")
        neighbour = self.retrieve(picture, exclude_object) if self.retrieval_at == "global" else None
        messages: list[dict] = [first_user_turn(neighbour.reference if neighbour is not None else None)]
        def sampling(round_index: int) -> dict[str, Any]:
            if seed is None:
                return {}
            # one seed per round: reseeding every round with the same value would replay one stream
            round_seed = int(np.random.SeedSequence([seed, round_index]).generate_state(1)[0])
            return {"seed": round_seed, "temperature": temperature}

        first = generate(self.model, self.processor, messages, [picture], max_new_tokens=self.max_global_tokens,
                         **sampling(0))
        parsed = parse_global(first["text"])
        messages.append({"role": "assistant", "content": [{"type": "text", "text": first["text"]}]})
        tokens, logprob_sum = first["tokens"], first["mean_logprob"] * first["tokens"]
        part_texts, voxels, dropped = {}, {}, {}
        if self.retrieval_at == "geometry":  # the neighbour of the category the model just named
            neighbour = self.retrieve(picture, exclude_object, parsed.annotation.category)
        for k, part in enumerate(parsed.annotation.parts):
            # Each round sees the earlier parts' rounds, exactly as the training conversations
            # (``image_text.conversation``) lay them out. Asked with the global answer alone, as
            # before, the model had never seen that context: it wrote the same cells for every
            # leg of a table and a whole box for a 4-cell latch (held-out IoU 0.32 -> 0.46 with
            # the shipped model, see builtin_model/README.md).
            prompt = [{"type": "text", "text": geometry_prompt(part.label, part.name)}]
            if k == 0 and neighbour is not None and self.retrieval_at == "geometry":
                prompt.insert(0, {"type": "text", "text": neighbour.reference})  # image_text.with_reference
            messages.append({"role": "user", "content": prompt})
            reply = generate(self.model, self.processor, messages, [picture], max_new_tokens=self.max_part_tokens,
                             allowed_token_ids=self.geometry_tokens, **sampling(k + 1))
            messages.append({"role": "assistant", "content": [{"type": "text", "text": reply["text"]}]})
            part_texts[part.label] = reply["text"]
            voxels[part.label], dropped[part.label] = parse_geometry(reply["text"], self.resolution)
            tokens += reply["tokens"]
            logprob_sum += reply["mean_logprob"] * reply["tokens"]
        return {"global_text": first["text"], "annotation": parsed.annotation, "repairs": list(parsed.repairs),
                "part_texts": part_texts, "voxels": voxels, "dropped_cuboids": dropped, "tokens": tokens,
                "mean_logprob": logprob_sum / max(1, tokens), "global_truncated": first["truncated"],
                "seconds": time.perf_counter() - start, "resolution": self.resolution,
                "retrieved": neighbour.object_id if neighbour is not None else None,
                "retrieved_similarity": neighbour.similarity if neighbour is not None else None,
                "seed": seed, "temperature": temperature if seed is not None else None}
