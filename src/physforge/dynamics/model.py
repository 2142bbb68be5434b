"""The trajectory generator: a mixture density network over object motions, conditioned on the
first frame (a small CNN), the PhysEncoder's physical embedding (``physforge.reason``) and the known
initial object state (positions, sizes and, with ``use_velocity``, velocities). Its log-likelihood
is exact, so DPO applies as written.

This module imports torch at the top; ``physforge.dynamics`` loads it on first use only.

Motion model. The displacements d = (p_t - p_0, t = 1..T) of all objects, divided by SCALE, form
one vector x of D = T x N x 3 dimensions. Each of ``components`` mixture components is a low-rank
Gaussian N(mean, W W^T + diag(sigma^2)) with W of rank ``rank``: the factors carry whole-motion
variation (a faster launch, a later bounce) so samples are smooth curves, and sigma (floored at
``min_sigma``) the small independent rest. With ``velocity_prior`` each mean is a learned residual
over constant-velocity motion from the known initial velocities (gravity, contacts and friction
are left to the network). Absent object slots are left out of the density exactly.
log p(motion) = log p(x) - D_valid log SCALE.

A checkpoint is a folder: ``model.safetensors`` and ``checkpoint.json`` (kind, format version,
model arguments, PhysEncoder arguments, step, stage, training config).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from physforge.dynamics.config import GeneratorConfig
from physforge.dynamics.errors import DynamicsCheckpointError

KIND = "physforge.dynamics.TrajectoryGenerator"
FORMAT_VERSION = 1
#: m, second differences are divided by this before the mixture sees them
SCALE = 0.1


class TrajectoryGenerator(nn.Module):
    """(image, initial state) -> mixture over future motions of up to ``max_objects`` objects.

    Inputs: images (B, 3, S, S) float32 in [0, 1]; initial (B, N, 3) m; size (B, N) m; mask (B, N)
    bool; velocity (B, N, 3) m/s, the known initial velocities (used when ``config.use_velocity``).
    Motions: positions (B, T + 1, N, 3) m, world frame (frame 0 = initial).
    """

    def __init__(self, config: GeneratorConfig, encoder_config: dict[str, Any] | None = None):
        super().__init__()
        from physforge.reason.config import EncoderConfig
        from physforge.reason.encoder import PhysEncoder

        self.config = config
        if encoder_config is None:
            encoder_config = EncoderConfig(image_size=config.image_size, clip_frames=1,
                                           channels=config.encoder_channels, dim=config.encoder_dim).to_dict()
        self.encoder = PhysEncoder(EncoderConfig.from_dict(encoder_config, where="encoder"))
        layers: list[nn.Module] = []
        width = 3
        for c in config.channels:
            layers += [nn.Conv2d(width, c, 3, stride=2, padding=1), nn.GroupNorm(1, c), nn.GELU()]
            width = c
        self.visual = nn.Sequential(*layers, nn.Flatten())
        side = config.image_size >> len(config.channels)
        n, t, k = config.max_objects, config.horizon, config.components
        self.dim = t * n * 3
        state_dim = n * (8 if config.use_velocity else 5)
        self.fuse = nn.Sequential(
            nn.Linear(width * side * side + self.encoder.config.dim + state_dim, config.hidden), nn.GELU(),
            nn.Linear(config.hidden, config.hidden), nn.GELU())
        self.logits = nn.Linear(config.hidden, k)
        self.mean = nn.Linear(config.hidden, k * self.dim)
        self.factor = nn.Linear(config.hidden, k * self.dim * config.rank)
        self.log_sigma = nn.Linear(config.hidden, k * self.dim)
        nn.init.zeros_(self.mean.weight)
        nn.init.zeros_(self.mean.bias)
        nn.init.normal_(self.factor.weight, std=1e-3)
        nn.init.zeros_(self.factor.bias)
        nn.init.zeros_(self.log_sigma.weight)
        nn.init.constant_(self.log_sigma.bias, math.log(0.1))

    @property
    def dimensions(self) -> tuple[int, int, int]:
        return self.config.components, self.config.horizon, self.config.max_objects

    # -- conditioning --------------------------------------------------------------------------------
    def physical_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """PhysEncoder z (B, dim) of the conditioning frame, shown as a clip of repeated frames."""
        ec = self.encoder.config
        frames = images if images.shape[-1] == ec.image_size else F.interpolate(
            images, size=(ec.image_size, ec.image_size), mode="bilinear", align_corners=False)
        clips = frames.unsqueeze(1).expand(-1, ec.clip_frames, -1, -1, -1)
        return self.encoder.encode(clips)

    def forward(self, images, initial, size, mask, velocity=None) -> dict[str, torch.Tensor]:
        """Mixture parameters in units of SCALE: logits (B, K); mean (B, K, D); factor (B, K, D, rank);
        sigma (B, K, D), with D = T x N x 3 in (step, object, axis) order."""
        b = images.shape[0]
        k = self.config.components
        parts = [initial * mask[..., None], size[..., None], mask[..., None].float()]
        if self.config.use_velocity:
            if velocity is None:
                raise ValueError("this generator is conditioned on the initial velocities; pass velocity (B, N, 3) m/s")
            parts.append(velocity * mask[..., None])
        state = torch.cat(parts, -1).flatten(1)
        h = self.fuse(torch.cat([self.visual(images - 0.5), self.physical_embedding(images), state], -1))
        sigma = self.config.min_sigma / SCALE + torch.exp(self.log_sigma(h).clamp(-12.0, 5.0)).reshape(b, k, self.dim)
        mean = self.mean(h).reshape(b, k, self.dim)
        if self.config.use_velocity and self.config.velocity_prior:  # learn the residual over constant-velocity motion (no gravity assumed)
            t = torch.arange(1, self.config.horizon + 1, dtype=images.dtype) * self.config.dt
            drift = (t[None, :, None, None] * (velocity * mask[..., None])[:, None]) / SCALE  # (B, T, N, 3)
            mean = mean + drift.reshape(b, 1, self.dim)
        return {"logits": self.logits(h), "mean": mean,
                "factor": self.factor(h).reshape(b, k, self.dim, self.config.rank), "sigma": sigma}

    def _valid(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, D) bool: the dimensions of objects present."""
        t = self.config.horizon
        return mask[:, None, :, None].expand(-1, t, -1, 3).reshape(mask.shape[0], self.dim)

    # -- likelihood and sampling -----------------------------------------------------------------------
    def log_prob(self, params: dict[str, torch.Tensor], positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(motion) (B,) nats of positions (B, T + 1, N, 3) m; only objects in ``mask`` count.

        Absent dimensions are given mean = value, no factor and unit variance, which adds exactly
        -log(2 pi) / 2 each; that constant is taken back out."""
        x = ((positions[:, 1:] - positions[:, :1]) / SCALE).reshape(positions.shape[0], 1, self.dim)
        valid = self._valid(mask)[:, None, :]  # (B, 1, D)
        mean = torch.where(valid, params["mean"], x)
        factor = params["factor"] * valid[..., None]
        variance = torch.where(valid, params["sigma"] ** 2, torch.ones_like(params["sigma"]))
        per_component = torch.distributions.LowRankMultivariateNormal(mean, factor, variance).log_prob(x)  # (B, K)
        absent = (~valid[:, 0]).sum(-1).float()
        dims = valid[:, 0].sum(-1).float()
        log_weights = F.log_softmax(params["logits"], -1)
        return (torch.logsumexp(log_weights + per_component, -1) + 0.5 * math.log(2 * math.pi) * absent
                - dims * math.log(SCALE))

    @torch.no_grad()
    def sample(self, params: dict[str, torch.Tensor], initial: torch.Tensor, mask: torch.Tensor, num: int,
               generator: torch.Generator) -> torch.Tensor:
        """``num`` motions per condition: positions (B, num, T + 1, N, 3) m (absent objects stay put)."""
        b = params["logits"].shape[0]
        probs = F.softmax(params["logits"], -1)
        pick = torch.multinomial(probs, num, replacement=True, generator=generator)  # (B, num)
        mean = torch.gather(params["mean"], 1, pick[..., None].expand(-1, -1, self.dim))
        sigma = torch.gather(params["sigma"], 1, pick[..., None].expand(-1, -1, self.dim))
        factor = torch.gather(params["factor"], 1, pick[..., None, None].expand(-1, -1, self.dim, self.config.rank))
        latent = torch.randn(b, num, self.config.rank, 1, generator=generator, dtype=mean.dtype)
        noise = torch.randn(b, num, self.dim, generator=generator, dtype=mean.dtype)
        x = mean + (factor @ latent).squeeze(-1) + sigma * noise
        t, n = self.config.horizon, self.config.max_objects
        displacement = (x * SCALE).reshape(b, num, t, n, 3) * mask[:, None, None, :, None]
        start = initial[:, None, None]
        return torch.cat([start.expand(-1, num, 1, -1, -1), start + displacement], 2)


def image_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0


def batch_tensors(examples) -> dict[str, torch.Tensor]:
    """Model inputs and targets of some ``physforge.dynamics.data.Example``s."""
    return {"images": image_tensor(np.stack([e.image for e in examples])),
            "initial": torch.from_numpy(np.stack([e.initial for e in examples])).float(),
            "size": torch.from_numpy(np.stack([e.size for e in examples])).float(),
            "velocity": torch.from_numpy(np.stack([e.velocity for e in examples])).float(),
            "mask": torch.from_numpy(np.stack([e.mask for e in examples])),
            "target": torch.from_numpy(np.stack([e.target for e in examples])).float()}  # (B, T + 1, N, 3) m


def build_generator(config: GeneratorConfig, generator: torch.Generator,
                    encoder_checkpoint: str | Path | None = None) -> TrajectoryGenerator:
    """A fresh generator (weights depend only on ``generator``'s state); the PhysEncoder comes from
    ``encoder_checkpoint`` (a ``physforge reason train`` checkpoint folder) when given."""
    encoder = None
    if encoder_checkpoint:
        from physforge.reason.encoder import load_encoder

        encoder = load_encoder(encoder_checkpoint)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))
        model = TrajectoryGenerator(config, None if encoder is None else encoder.config.to_dict())
    if encoder is not None:
        model.encoder.load_state_dict(encoder.state_dict())
    return model


def save_generator(model: TrajectoryGenerator, folder: str | Path, step: int, stage: str,
                   train_config: dict[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``checkpoint.json`` into ``folder`` (each atomically)."""
    from physforge.checkpoints import save_checkpoint

    return save_checkpoint(model, folder, {
        "kind": KIND, "format_version": FORMAT_VERSION, "step": step, "stage": stage,
        "model": model.config.to_dict(), "encoder": model.encoder.config.to_dict(), "train_config": train_config})


def load_generator(folder: str | Path) -> TrajectoryGenerator:
    """Load a generator checkpoint folder (safetensors; no pickle), in eval mode."""
    from physforge.checkpoints import load_weights, read_checkpoint_meta

    folder = Path(folder)
    meta = read_checkpoint_meta(folder, KIND, FORMAT_VERSION, error=DynamicsCheckpointError,
                                hint="pass the checkpoint/ folder of a `physforge dynamics train` or `dpo` run")
    model = TrajectoryGenerator(GeneratorConfig.from_dict(meta["model"], where=f"{folder / 'checkpoint.json'}: model"),
                                meta["encoder"])
    load_weights(model, folder, error=DynamicsCheckpointError)
    model.step = int(meta.get("step", 0))
    model.stage = str(meta.get("stage", ""))
    return model.eval()
