"""The PhysEncoder: a clip encoder giving a physical representation vector, with multi-task
heads (future state, relative properties, stability, contacts) and a question-answering head.

This module imports torch at the top; ``physforge.reason`` loads it on first use only.

    from physforge.reason import load_encoder
    model = load_encoder("runs/reason/checkpoint")
    z = model.encode(clips)          # clips: (B, T, 3, S, S) float32 in [0, 1] -> z: (B, dim)
    answers = model.answer(split, questions)

A checkpoint is a folder: ``model.safetensors`` (weights only) and ``checkpoint.json``
(kind, model arguments, step, training config).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from physforge.reason.config import EncoderConfig
from physforge.reason.data import N_FUTURE, N_NEXT, PAIRS, SLOTS, Split, clip_picks, tokenize
from physforge.reason.errors import CheckpointError

KIND = "physforge.reason.PhysEncoder"
FORMAT_VERSION = 1
ANSWER_TYPES = ("bool", "count", "number", "name", "choice", "multi")
#: Per-slot features given to an option with slot_options: 3 properties, displaced, N_FUTURE x 3 displacements
#: (and, with track, 2 image coordinates in each of the clip_frames + N_NEXT frames: ``slot_width``).
SLOT_FEATURES = 3 + 1 + 3 * N_FUTURE
#: Objects of the question text whose slot features slot_question gives the fused layer.
QUESTION_SLOTS = 2


def slot_width(config: EncoderConfig) -> int:
    """Width of one slot's features (see ``PhysEncoder.slot_features``)."""
    return SLOT_FEATURES + (2 * (config.clip_frames + N_NEXT) if config.track else 0)


def keypoint_width(config: EncoderConfig) -> int:
    """Per-frame width of the keypoint layer's output: K x (x, y, pooled features)."""
    return config.keypoints * (2 + config.channels[config.keypoint_stage - 1])


def spatial_softmax(logits: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) heatmap logits -> (N, K, H, W) weights summing to 1 over each map."""
    n, k, h, w = logits.shape
    return torch.softmax(logits.reshape(n, k, h * w), -1).reshape(n, k, h, w)


def soft_argmax(weights: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) weights summing to 1 per map -> (N, K, 2) expected (x, y) in [-1, 1] over the
    pixel centres (2 i + 1) / W - 1, x right (columns), y down (rows)."""
    h, w = weights.shape[-2:]
    xs = (2 * torch.arange(w, dtype=weights.dtype, device=weights.device) + 1) / w - 1
    ys = (2 * torch.arange(h, dtype=weights.dtype, device=weights.device) + 1) / h - 1
    return torch.stack([(weights.sum(-2) * xs).sum(-1), (weights.sum(-1) * ys).sum(-1)], -1)


class PhysEncoder(nn.Module):
    """Clip -> z (dim,), heads on z, and question answering on (z, question, options).

    Inputs: clips (B, T, 3, S, S) float32 in [0, 1] with T = config.clip_frames and
    S = config.image_size; tokens (B, L) int64 (0 = padding).
    """

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = 6 if config.frame_diff else 3
        for c in config.channels:
            layers += [nn.Conv2d(width, c, 3, stride=2, padding=1), nn.GroupNorm(1, c), nn.GELU()]
            width = c
        self.frame_cnn = nn.Sequential(*layers)
        side = config.image_size >> len(config.channels)
        self.frame_proj = nn.Linear(width * side * side, config.dim)
        frame_width = config.dim
        if config.keypoints:
            stage_channels = config.channels[config.keypoint_stage - 1]
            self.heatmap = nn.Conv2d(stage_channels, config.keypoints, 1)
            with torch.no_grad():
                self.heatmap.weight.mul_(config.keypoint_gain)
            self.keypoint_proj = nn.Linear(keypoint_width(config), config.dim)
            frame_width += config.dim
        self.temporal = nn.Sequential(nn.Linear(config.clip_frames * frame_width, config.dim), nn.GELU(),
                                      nn.Linear(config.dim, config.dim))
        self.blind_z = nn.Parameter(torch.zeros(config.dim))
        self.drop = nn.Dropout(config.dropout)
        n = len(SLOTS)
        self.state_head = nn.Linear(config.dim, N_FUTURE * n * 3)
        self.property_head = nn.Linear(config.dim, n * 3)
        self.stability_head = nn.Linear(config.dim, n)
        self.contact_head = nn.Linear(config.dim, len(PAIRS))
        if config.track:
            self.track_head = nn.Linear(keypoint_width(config) if config.keypoints else config.dim, n * 2)
            self.next_head = nn.Linear(config.dim, N_NEXT * n * 2)
        self.embed = nn.Embedding(len(config.vocab), config.text_dim, padding_idx=0)
        self.position = nn.Embedding(config.max_text, config.text_dim)
        self.text_conv = nn.Sequential(nn.Conv1d(config.text_dim, config.text_dim, 3, padding=1), nn.GELU(),
                                       nn.Conv1d(config.text_dim, config.text_dim, 3, padding=1), nn.GELU())
        self.text_out = nn.Linear(2 * config.text_dim, config.text_dim)
        question_width = QUESTION_SLOTS * slot_width(config) if config.slot_question else 0
        self.fuse = nn.Sequential(nn.Linear(config.dim + config.text_dim + question_width, config.hidden), nn.GELU(),
                                  nn.Linear(config.hidden, config.hidden), nn.GELU())
        self.film = nn.Linear(config.text_dim, 2 * config.dim)
        self.bool_head = nn.Linear(config.hidden, 1)
        self.count_head = nn.Linear(config.hidden, config.max_count + 1)
        self.number_head = nn.Linear(config.hidden, 1)
        self.name_head = nn.Linear(config.hidden, len(config.names))
        option_width = slot_width(config) if config.slot_options else 0
        self.option_head = nn.Sequential(nn.Linear(config.hidden + config.text_dim + option_width, config.hidden),
                                         nn.GELU(), nn.Linear(config.hidden, 1))
        self._token_index = {t: i for i, t in enumerate(config.vocab)}

    # -- representation ---------------------------------------------------------------------------
    def encode(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, T, 3, S, S) float32 in [0, 1] -> z (B, dim)."""
        return self.encode_parts(clips)[0]

    def encode_parts(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """clips (B, T, 3, S, S) -> (z (B, dim), per-frame features (B, T, F); None when blind).
        F = dim, or with config.keypoints dim + keypoint_width(config): the dense projection,
        then the keypoint layer's positions and pooled features (see ``keypoint_features``)."""
        b, t = clips.shape[:2]
        if self.config.blind:
            return self.blind_z.expand(b, -1), None
        expected = (self.config.clip_frames, 3, self.config.image_size, self.config.image_size)
        if tuple(clips.shape[1:]) != expected:
            raise ValueError(f"clips: expected shape (B, {', '.join(map(str, expected))}), got {tuple(clips.shape)}")
        frames = clips - 0.5
        if self.config.frame_diff:
            # The first frame's difference is zero: it has no predecessor in the clip.
            diff = torch.cat([torch.zeros_like(clips[:, :1]), clips[:, 1:] - clips[:, :-1]], 1)
            frames = torch.cat([frames, diff], 2)
        x = frames.reshape(b * t, *frames.shape[2:])
        keypoints = None
        for i, layer in enumerate(self.frame_cnn):
            x = layer(x)
            if self.config.keypoints and i == 3 * self.config.keypoint_stage - 1:  # conv, norm, GELU per stage
                keypoints = self.keypoint_features(x).reshape(b, t, -1)
        features = F.gelu(self.frame_proj(x.flatten(1))).reshape(b, t, self.config.dim)
        temporal_in = features
        if keypoints is not None:
            temporal_in = torch.cat([features, F.gelu(self.keypoint_proj(keypoints))], -1)
            features = torch.cat([features, keypoints], -1)
        return self.temporal(self.drop(temporal_in.reshape(b, -1))), features

    def keypoint_features(self, feature_map: torch.Tensor) -> torch.Tensor:
        """feature_map (N, C, H, W) -> (N, K * (2 + C)): per learned heatmap, its expected image
        position (x, y) in [-1, 1] (pixel centres, x right, y down, as the tracking targets),
        then the features averaged under it."""
        weights = spatial_softmax(self.heatmap(feature_map))  # (N, K, H, W)
        xy = soft_argmax(weights)
        pooled = torch.einsum("nkhw,nchw->nkc", weights, feature_map)
        return torch.cat([xy, pooled], -1).flatten(1)

    def track(self, z: torch.Tensor, frame_features: torch.Tensor) -> dict[str, torch.Tensor]:
        """Object-tracking predictions (config.track): shown (B, T, 8, 2), each slot's image
        position in each input frame, from that frame's features; next (B, N_NEXT, 8, 2), in the
        frames after the last one, from z. Coordinates in [-1, 1], x right, y down."""
        if not self.config.track:
            raise ValueError("track: this PhysEncoder has no tracking heads; build it with EncoderConfig(track=True)")
        b, t = frame_features.shape[:2]
        if self.config.keypoints:
            frame_features = frame_features[..., self.config.dim:]  # the keypoint layer, not the dense one
        return {"shown": self.track_head(frame_features).reshape(b, t, len(SLOTS), 2),
                "next": self.next_head(z).reshape(b, N_NEXT, len(SLOTS), 2)}

    def heads(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Auxiliary predictions from z (B, dim): future (B, N_FUTURE, 8, 3) m; properties (B, 8, 3)
        (centred log mass, friction, restitution); displaced (B, 8) logits; contacts (B, 28) logits."""
        b = z.shape[0]
        return {"future": self.state_head(z).reshape(b, N_FUTURE, len(SLOTS), 3),
                "properties": self.property_head(z).reshape(b, len(SLOTS), 3),
                "displaced": self.stability_head(z), "contacts": self.contact_head(z)}

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N, L) int64, 0 = padding -> (N, text_dim): two word-order-aware convolutions over
        word + position embeddings, max- and mean-pooled over the real tokens."""
        mask = (tokens != 0).unsqueeze(-1).float()  # (N, L, 1)
        positions = torch.arange(tokens.shape[1], device=tokens.device).clamp(max=self.config.max_text - 1)
        x = self.embed(tokens) + self.position(positions)
        h = self.text_conv(x.transpose(1, 2)).transpose(1, 2)  # (N, L, text_dim)
        pooled_max = (h - 1e4 * (1 - mask)).max(1).values
        pooled_mean = (h * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.text_out(torch.cat([pooled_max, pooled_mean], -1))

    def slot_features(self, z: torch.Tensor, option_slots: torch.Tensor,
                      frame_features: torch.Tensor | None = None) -> torch.Tensor:
        """(B, O, slot_width): the heads' predictions for the object slot each option names
        (option_slots (B, O) int64, -1: names no object -> zeros): centred log mass, friction,
        restitution, displaced, future displacements and, with config.track, the predicted image
        positions in the clip's frames and the next ones (from ``frame_features`` (B, T, dim);
        zeros without them, as for a blind model)."""
        heads = self.heads(z)
        b = z.shape[0]
        parts = [heads["properties"], heads["displaced"].unsqueeze(-1),
                 heads["future"].permute(0, 2, 1, 3).reshape(b, len(SLOTS), -1)]
        if self.config.track:
            width = 2 * (self.config.clip_frames + N_NEXT)
            if frame_features is None:
                parts.append(z.new_zeros(b, len(SLOTS), width))
            else:
                tracked = self.track(z, frame_features)
                parts.append(torch.cat([tracked["shown"], tracked["next"]], 1).permute(0, 2, 1, 3)
                             .reshape(b, len(SLOTS), width))
        per_slot = torch.cat(parts, -1)  # (B, 8, F)
        index = option_slots.clamp(min=0)
        picked = torch.gather(per_slot, 1, index.unsqueeze(-1).expand(-1, -1, per_slot.shape[-1]))
        return picked * (option_slots >= 0).unsqueeze(-1).float()

    def qa(self, z: torch.Tensor, tokens: torch.Tensor, option_tokens: torch.Tensor,
           option_slots: torch.Tensor | None = None, question_slots: torch.Tensor | None = None,
           frame_features: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Answer logits. z (B, dim); tokens (B, L); option_tokens (B, O, Lo) (O may be 0);
        option_slots (B, O) int64, the object slot each option names (-1: none; used with
        config.slot_options); question_slots (B, QUESTION_SLOTS) int64, the objects the question
        names (used with config.slot_question); frame_features (B, T, dim) from encode_parts
        (for the tracked positions in the slot features). Returns bool (B,), count
        (B, max_count + 1), number (B,) in SI units, name (B, n_names), options (B, O) logits."""
        q = self.encode_text(tokens)
        gamma, beta = self.film(q).chunk(2, dim=-1)
        fused = [self.drop(z) * (1 + gamma) + beta, q]
        if self.config.slot_question:
            if question_slots is None:
                raise ValueError("question_slots: this PhysEncoder has slot_question; pass the (B, 2) slots from "
                                 "batch()")
            fused.append(self.slot_features(z, question_slots, frame_features).flatten(1))
        h = self.drop(self.fuse(torch.cat(fused, dim=-1)))
        out = {"bool": self.bool_head(h).squeeze(-1), "count": self.count_head(h),
               "number": self.number_head(h).squeeze(-1), "name": self.name_head(h)}
        b, o = option_tokens.shape[:2]
        if o:
            text = self.encode_text(option_tokens.reshape(b * o, -1)).reshape(b, o, -1)
            parts = [h.unsqueeze(1).expand(-1, o, -1), text]
            if self.config.slot_options:
                if option_slots is None:
                    raise ValueError("option_slots: this PhysEncoder has slot_options; pass the (B, O) slots from "
                                     "batch()")
                parts.append(self.slot_features(z, option_slots, frame_features))
            out["options"] = self.option_head(torch.cat(parts, -1)).squeeze(-1)
        else:
            out["options"] = h.new_zeros(b, 0)
        return out

    # -- inputs -----------------------------------------------------------------------------------
    def token_ids(self, text: str) -> list[int]:
        ids = [self._token_index.get(t, 1) for t in tokenize(text)][: self.config.max_text]
        return ids or [1]

    def clip_tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        """images: per example (n_shown, S, S, 3) uint8 -> (B, clip_frames, 3, S, S) float32 in [0, 1],
        each clip resampled to clip_frames frames (nearest in time)."""
        t = self.config.clip_frames
        clips = []
        for frames in images:
            clips.append(frames[clip_picks(len(frames), t)])
        array = np.stack(clips).astype(np.float32) / 255.0
        return torch.from_numpy(array).permute(0, 1, 4, 2, 3).contiguous()

    def batch(self, split: Split, questions: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        """Model inputs of some questions: clips, tokens, option_tokens, option_mask (B, O) bool."""
        tokens = _pad([self.token_ids(q["question"]) for q in questions])
        o = max((len(q["options"]) for q in questions), default=0)
        option_ids = [[self.token_ids(opt["text"]) for opt in q["options"]] for q in questions]
        width = max((len(ids) for row in option_ids for ids in row), default=1)
        option_tokens = torch.zeros(len(questions), o, width, dtype=torch.long)
        option_mask = torch.zeros(len(questions), o, dtype=torch.bool)
        option_slots = torch.full((len(questions), o), -1, dtype=torch.long)
        for i, row in enumerate(option_ids):
            for k, ids in enumerate(row):
                option_tokens[i, k, : len(ids)] = torch.tensor(ids)
                option_mask[i, k] = True
                option_slots[i, k] = option_slot(questions[i]["options"][k]["text"])
        question_slots = torch.tensor([named_slots(q["question"]) for q in questions], dtype=torch.long)
        if self.config.blind:
            s = self.config.image_size
            clips = torch.zeros(len(questions), self.config.clip_frames, 3, s, s)
        else:
            clips = self.clip_tensor([split.images(q) for q in questions])
        return {"clips": clips, "tokens": tokens, "option_tokens": option_tokens, "option_mask": option_mask,
                "option_slots": option_slots, "question_slots": question_slots}

    def forward(self, clips, tokens, option_tokens, option_mask=None, option_slots=None, question_slots=None):
        z, frame_features = self.encode_parts(clips)
        return z, self.qa(z, tokens, option_tokens, option_slots, question_slots, frame_features)

    # -- answers ----------------------------------------------------------------------------------
    def decode(self, outputs: dict[str, torch.Tensor], questions: list[dict[str, Any]]) -> list[str]:
        """Answer strings in the grader's formats from qa() outputs."""
        answers = []
        for i, q in enumerate(questions):
            kind = q["answer_type"]
            if kind == "bool":
                answers.append("yes" if outputs["bool"][i] > 0 else "no")
            elif kind == "count":
                answers.append(str(int(outputs["count"][i].argmax())))
            elif kind == "number":
                answers.append(f"{float(outputs['number'][i]):.3f}")
            elif kind == "name":
                answers.append(self.config.names[int(outputs["name"][i].argmax())])
            elif kind in ("choice", "multi"):
                n = len(q["options"])
                scores = outputs["options"][i, :n]
                labels = [opt["label"] for opt in q["options"]]
                if kind == "choice" or n == 0:
                    answers.append(labels[int(scores.argmax())] if n else "A")
                else:
                    chosen = [labels[k] for k in range(n) if scores[k] > 0]
                    answers.append(",".join(chosen) if chosen else "none")
            else:
                raise ValueError(f"question {q['question_id']}: unknown answer_type {kind!r}; expected one of "
                                 f"{ANSWER_TYPES}")
        return answers

    @torch.no_grad()
    def answer(self, split: Split, questions: list[dict[str, Any]], batch_size: int = 64) -> list[str]:
        """Answer strings for questions of ``split`` (eval mode, no gradients)."""
        was_training = self.training
        self.eval()
        out: list[str] = []
        for start in range(0, len(questions), batch_size):
            chunk = questions[start: start + batch_size]
            inputs = self.batch(split, chunk)
            _, outputs = self(**inputs)
            out.extend(self.decode(outputs, chunk))
        self.train(was_training)
        return out


def option_slot(text: str) -> int:
    """The object slot an option names: the index in SLOTS of the only colour word in its text
    (options such as "red cube"), or -1 when it names none or several (collision pairs)."""
    found = {SLOTS.index(t) for t in tokenize(text) if t in SLOTS}
    return found.pop() if len(found) == 1 else -1


def named_slots(text: str) -> list[int]:
    """The slots (indices in SLOTS) of the first QUESTION_SLOTS distinct colour words of a
    question, in order of mention, padded with -1."""
    found: list[int] = []
    for token in tokenize(text):
        if token in SLOTS and SLOTS.index(token) not in found:
            found.append(SLOTS.index(token))
    return (found + [-1] * QUESTION_SLOTS)[:QUESTION_SLOTS]


def _pad(rows: list[list[int]]) -> torch.Tensor:
    width = max(len(r) for r in rows)
    out = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out


def build_encoder(config: EncoderConfig, generator: torch.Generator) -> PhysEncoder:
    """A freshly initialised PhysEncoder; the weights depend only on ``generator``'s seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        return PhysEncoder(config)


def save_encoder(model: PhysEncoder, folder: str | Path, step: int, train_config: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``checkpoint.json`` into ``folder`` (each atomically)."""
    from physforge.checkpoints import save_checkpoint

    return save_checkpoint(model, folder, {"kind": KIND, "format_version": FORMAT_VERSION, "step": step,
                                           "model": model.config.to_dict(), "train_config": train_config})


def is_encoder_checkpoint(folder: str | Path) -> bool:
    path = Path(folder) / "checkpoint.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("kind") == KIND
    except (json.JSONDecodeError, AttributeError):
        return False


def load_encoder(folder: str | Path) -> PhysEncoder:
    """Load a PhysEncoder checkpoint folder (safetensors weights; no pickle). Returns it in eval mode."""
    from physforge.checkpoints import load_weights, read_checkpoint_meta

    folder = Path(folder)
    meta = read_checkpoint_meta(folder, KIND, FORMAT_VERSION, error=CheckpointError,
                                hint="pass a folder written by `physforge reason train` (its checkpoint/ subfolder)")
    arguments = meta["model"]
    if isinstance(arguments, dict) and "frame_diff" not in arguments:
        # Checkpoints written before frame differences existed were trained on frames alone.
        arguments = {**arguments, "frame_diff": False}
    model = PhysEncoder(EncoderConfig.from_dict(arguments, where=f"{folder / 'checkpoint.json'}: model"))
    load_weights(model, folder, error=CheckpointError)
    model.step = int(meta.get("step", 0))
    return model.eval()
