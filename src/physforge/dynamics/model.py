"""The trajectory generator: a mixture density network over object motions, conditioned on the
first frame (a small CNN), the PhysEncoder's physical embedding (``physforge.reason``) and what the
known scene states but one frame cannot show: initial positions and sizes, with ``use_velocity``
velocities, with ``use_gravity`` the gravity vector, with ``use_properties`` each object's friction,
restitution and mass. Its log-likelihood is exact, so DPO applies as written.

This module imports torch at the top; ``physforge.dynamics`` loads it on first use only.

Motion model. The displacements d = (p_t - p_0, t = 1..T) of all objects, divided by SCALE, form
one vector x of D = T x N x 3 dimensions. Each of ``components`` mixture components is a low-rank
Gaussian N(mean, W W^T + diag(sigma^2)) with W of rank ``rank``: the factors carry whole-motion
variation (a faster launch, a later bounce) so samples are smooth curves, and sigma (floored at
``min_sigma``) the small independent rest. Each mean is a learned residual over a physics prior
(``physics_prior``; by default ballistic flight from the known initial velocities under the known
gravity, stopped at the ground), so the network learns what free flight does not explain
(contacts, friction, bounces, walls) rather than re-deriving p0 + v t + g t^2 / 2 from pixels.
Absent object slots are left out of the density exactly.
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
#: m/s^2, gravity is divided by this before the network sees it
GRAVITY_SCALE = 9.81
#: m/s^2, a unit of the learned deceleration head (softplus output)
DECELERATION_SCALE = 1.0
#: m/s^2, added to the known deceleration before the head's correction (softplus needs > 0)
FRICTION_FLOOR = 1e-3


def inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    return y + torch.log(-torch.expm1(-y))


def known_deceleration(gravity: torch.Tensor, support: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, N) m/s^2: Coulomb's sliding deceleration mu |g| on the ground (mu from ``support``: the
    contact an object rests on, or the ground it comes down on), 0 for a ball (it rolls) and for
    empty slots."""
    rolls = support[..., 4] > 0.5
    decel = support[..., 3] * gravity.norm(dim=-1)[:, None]
    return torch.where(rolls | ~mask, torch.zeros_like(decel), decel)


#: an object rests on a tilted surface (and slides or rolls down it in the prior) when gravity's
#: component along the surface exceeds this fraction of |g| (sin 1 degree); flatter is the floor
TILT = math.sin(math.radians(1.0))


def support_acceleration(gravity: torch.Tensor, support: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Acceleration (B, N, 3) m/s^2 of each object at the start, and (B, N) bool "on a tilted surface".

    gravity (B, 3) m/s^2; support (B, N, 6) as ``physforge.dynamics.data.object_support``: normal,
    friction mu, rolls, k = I / (m r^2). An object resting on a surface tilted by theta (gravity
    along it g sin(theta), into it g cos(theta)) accelerates down the slope: a ball rolls without
    slipping at g sin(theta) / (1 + k) when mu g cos(theta) can supply the torque (mu >= k / (1 + k)
    tan(theta)); otherwise it slides at g (sin(theta) - mu cos(theta)), or sticks where that is
    negative (Coulomb). Objects on nothing or on flat ground get g (free flight; the ground
    clamp of ``physics_prior`` holds them)."""
    normal, mu = support[..., :3], support[..., 3]
    rolls, k = support[..., 4] > 0.5, support[..., 5]
    g = gravity[:, None, :].expand_as(normal)
    into = -(g * normal).sum(-1)  # (B, N) m/s^2, > 0 when gravity presses the object onto the surface
    along = g + into[..., None] * normal  # gravity's component in the surface plane
    slope = along.norm(dim=-1)
    tilted = (normal.norm(dim=-1) > 0.5) & (into > 0) & (slope > TILT * gravity.norm(dim=-1)[:, None])
    rolling = rolls & (mu * into >= k / (1 + k) * slope)
    magnitude = torch.where(rolling, slope / (1 + k), torch.relu(slope - mu * into))
    downhill = along / slope.clamp(min=1e-9)[..., None]
    return torch.where(tilted[..., None], magnitude[..., None] * downhill, g), tilted


def physics_prior(kind: str, initial: torch.Tensor, velocity: torch.Tensor, size: torch.Tensor,
                  gravity: torch.Tensor, horizon: int, dt: float,
                  deceleration: torch.Tensor | None = None, support: torch.Tensor | None = None) -> torch.Tensor:
    """Displacements (B, T, N, 3) m of a closed-form guess at frames 1..T (``dt`` s apart).

    initial (B, N, 3) m and velocity (B, N, 3) m/s, world frame; size (B, N) m (the data engine's
    characteristic size); gravity (B, 3) m/s^2. ``kind``: "none" (zeros: objects stay put),
    "constant_velocity" (v t) or "ballistic" (v t + a t^2 / 2 with a = g, with the height held at or
    above min(z0, size): an object falls until it rests on the ground plane z = 0 of the data
    engine's worlds, and one that starts lower than its size, e.g. a box on a face, keeps its height).
    support: (B, N, 6) or None, "ballistic" only: what each object rests on
    (``support_acceleration``); an object on a tilted surface (a ramp) gets that surface's
    acceleration (rolling, sliding under Coulomb friction, or sticking) instead of g until it is
    down at its resting height. Without it the ballistic prior drops such an object straight
    through the surface it sits on.
    deceleration: (B, N) m/s^2, "ballistic" only: from the moment an object is down, its horizontal
    speed falls at this constant rate until it stops (Coulomb sliding friction, mu g); None = no
    friction. Contacts between objects and bounces are absent: the generator learns them."""
    t = torch.arange(1, horizon + 1, dtype=initial.dtype) * dt
    shape = (initial.shape[0], horizon) + tuple(initial.shape[1:])
    if kind == "none":
        return initial.new_zeros(shape)
    displacement = t[None, :, None, None] * velocity[:, None]
    if kind == "constant_velocity":
        return displacement
    if kind != "ballistic":
        raise ValueError(f"prior: expected 'none', 'constant_velocity' or 'ballistic', got {kind!r}")
    if support is None:
        acceleration = gravity[:, None, :].expand_as(velocity)
    else:
        acceleration, _ = support_acceleration(gravity, support)
    tt = t[None, :, None, None]
    displacement = displacement + 0.5 * tt ** 2 * acceleration[:, None]
    lowest = torch.clamp(size - initial[..., 2], max=0.0)  # (B, N) m, the resting height minus the start
    z = torch.maximum(displacement[..., 2], lowest[:, None])
    # down: the later root of z0 + vz t + a_z t^2 / 2 = resting height (0 when already down; never,
    # i.e. past the horizon, for an object that sticks on a slope)
    end = horizon * dt + 1.0
    down = torch.clamp(-acceleration[..., 2], min=1e-6)  # (B, N)
    vz = velocity[..., 2]
    landing = torch.clamp((vz + torch.sqrt(vz ** 2 + 2 * down * (-lowest))) / down, max=end)  # (B, N) s
    a_h, v_h = acceleration[..., :2], velocity[..., :2]
    flying = torch.minimum(t[None, :, None], landing[:, None])[..., None]  # (B, T, N, 1) s
    before = v_h[:, None] * flying + 0.5 * a_h[:, None] * flying ** 2  # horizontal travel until down
    v_down = v_h + a_h * landing[..., None]  # (B, N, 2) m/s, horizontal velocity when down
    after = torch.relu(t[None, :, None] - landing[:, None])  # (B, T, N) s since down
    if deceleration is None:
        horizontal = before + v_down[:, None] * after[..., None]
    else:
        speed = v_down.norm(dim=-1)  # (B, N) m/s
        direction = v_down / speed.clamp(min=1e-9)[..., None]
        stop = speed / deceleration.clamp(min=1e-6)  # s of sliding until rest
        sliding = torch.minimum(after, stop[:, None])  # (B, T, N) s
        distance = speed[:, None] * sliding - 0.5 * deceleration[:, None] * sliding ** 2
        horizontal = before + distance[..., None] * direction[:, None]
    return torch.cat([horizontal, z[..., None]], -1)


class TrajectoryGenerator(nn.Module):
    """(image, initial state) -> mixture over future motions of up to ``max_objects`` objects.

    Inputs: images (B, 3, S, S) float32 in [0, 1]; initial (B, N, 3) m; size (B, N) m; mask (B, N)
    bool; velocity (B, N, 3) m/s, the known initial velocities (used when ``config.use_velocity``);
    gravity (B, 3) m/s^2, world frame (used when ``config.use_gravity``); properties (B, N, 3):
    friction, restitution, log10 mass/kg (used when ``config.use_properties``).
    Motions: positions (B, T + 1, N, 3) m, world frame (frame 0 = initial).
    """

    def __init__(self, config: GeneratorConfig, encoder_config: dict[str, Any] | None = None):
        super().__init__()
        from physforge.reason.config import EncoderConfig
        from physforge.reason.encoder import PhysEncoder

        self.config = config
        if encoder_config is None:
            # one conditioning frame has no previous frame to difference against
            encoder_config = EncoderConfig(image_size=config.image_size, clip_frames=1, channels=config.encoder_channels,
                                           dim=config.encoder_dim, frame_diff=False).to_dict()
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
        state_dim = n * (5 + 3 * config.use_velocity + 3 * config.use_properties) + 3 * config.use_gravity
        self.fuse = nn.Sequential(
            nn.Linear(width * side * side + self.encoder.config.dim + state_dim, config.hidden), nn.GELU(),
            nn.Linear(config.hidden, config.hidden), nn.GELU())
        self.logits = nn.Linear(config.hidden, k)
        self.mean = nn.Linear(config.hidden, k * self.dim)
        self.factor = nn.Linear(config.hidden, k * self.dim * config.rank)
        self.log_sigma = nn.Linear(config.hidden, k * self.dim)
        if config.learn_deceleration:
            # per component and object, m/s^2; starts near 0 (the plain ballistic prior)
            self.deceleration = nn.Linear(config.hidden, k * n)
            nn.init.zeros_(self.deceleration.weight)
            # with friction_prior the head is a correction (0 = the known mu g), else it starts near 0
            nn.init.constant_(self.deceleration.bias, 0.0 if config.friction_prior else -6.0)
        # small random weights: the components differ from the start (identical ones stay identical
        # under the winner-takes-all mean term and the mixture collapses to one), yet every mean starts
        # within millimetres of the prior
        nn.init.normal_(self.mean.weight, std=0.1 / math.sqrt(config.hidden))
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

    def forward(self, images, initial, size, mask, velocity=None, gravity=None,
                properties=None, support=None) -> dict[str, torch.Tensor]:
        """Mixture parameters in units of SCALE: logits (B, K); mean (B, K, D); factor (B, K, D, rank);
        sigma (B, K, D), with D = T x N x 3 in (step, object, axis) order. support (B, N, 6): what
        each object rests on (``physics_prior``), needed when ``config.support_prior``."""
        b = images.shape[0]
        c = self.config
        k = c.components
        if c.support_prior and support is None:
            raise ValueError("this generator's prior knows what each object rests on; pass support (B, N, 6)")
        if not c.support_prior:
            support = None
        parts = [initial * mask[..., None], size[..., None], mask[..., None].float()]
        if c.use_velocity:
            if velocity is None:
                raise ValueError("this generator is conditioned on the initial velocities; pass velocity (B, N, 3) m/s")
            velocity = velocity * mask[..., None]
            parts.append(velocity)
        if c.use_properties:
            if properties is None:
                raise ValueError("this generator is conditioned on object properties; pass properties (B, N, 3)")
            parts.append(properties * mask[..., None])
        state = [torch.cat(parts, -1).flatten(1)]
        if c.use_gravity:
            if gravity is None:
                raise ValueError("this generator is conditioned on gravity; pass gravity (B, 3) m/s^2")
            state.append(gravity / GRAVITY_SCALE)
        h = self.fuse(torch.cat([self.visual(images - 0.5), self.physical_embedding(images), *state], -1))
        sigma = c.min_sigma / SCALE + torch.exp(self.log_sigma(h).clamp(-12.0, 5.0)).reshape(b, k, self.dim)
        mean = self.mean(h).reshape(b, k, self.dim)
        if c.learn_deceleration:  # one friction deceleration per component and object: k priors
            n = c.max_objects
            raw = self.deceleration(h).reshape(b, k, n)
            if c.friction_prior:
                raw = raw + inverse_softplus(known_deceleration(gravity, support, mask) + FRICTION_FLOOR)[:, None]
            deceleration = DECELERATION_SCALE * F.softplus(raw).reshape(b * k, n)
            prior = physics_prior(c.prior, initial.repeat_interleave(k, 0), velocity.repeat_interleave(k, 0),
                                  size.repeat_interleave(k, 0), gravity.repeat_interleave(k, 0), c.horizon, c.dt,
                                  deceleration, None if support is None else support.repeat_interleave(k, 0)
                                  ).reshape(b, k, c.horizon, n, 3)
            mean = mean + (prior * mask[:, None, None, :, None] / SCALE).reshape(b, k, self.dim)
        elif c.prior != "none":
            prior = physics_prior(c.prior, initial, velocity, size, gravity, c.horizon, c.dt,
                                  support=support if c.prior == "ballistic" else None) * mask[:, None, :, None]
            mean = mean + (prior / SCALE).reshape(b, 1, self.dim)
        return {"logits": self.logits(h), "mean": mean,
                "factor": self.factor(h).reshape(b, k, self.dim, self.config.rank), "sigma": sigma}

    def condition(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Mixture parameters of a ``batch_tensors`` batch (or the same keys, indexed)."""
        return self(batch["images"], batch["initial"], batch["size"], batch["mask"], batch["velocity"],
                    batch["gravity"], batch["properties"], batch.get("support"))

    def _valid(self, mask: torch.Tensor) -> torch.Tensor:
        """(B, D) bool: the dimensions of objects present."""
        t = self.config.horizon
        return mask[:, None, :, None].expand(-1, t, -1, 3).reshape(mask.shape[0], self.dim)

    # -- likelihood and sampling -----------------------------------------------------------------------
    def log_prob(self, params: dict[str, torch.Tensor], positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(motion) (B,) nats of positions (B, T + 1, N, 3) m; only objects in ``mask`` count.

        Absent dimensions are given mean = value, no factor and unit variance, which adds exactly
        -log(2 pi) / 2 each; that constant is taken back out."""
        dtype = positions.dtype
        # float64: with sharp components the Woodbury capacitance I + W^T D^-1 W is too ill-conditioned
        # for a float32 Cholesky (it fails mid-training); D is only T x N x 3, so this is cheap
        positions = positions.double()
        x = ((positions[:, 1:] - positions[:, :1]) / SCALE).reshape(positions.shape[0], 1, self.dim)
        valid = self._valid(mask)[:, None, :]  # (B, 1, D)
        per_component = self._component_log_prob(params, x, mask)  # (B, K)
        absent = (~valid[:, 0]).sum(-1).double()
        dims = valid[:, 0].sum(-1).double()
        log_weights = F.log_softmax(params["logits"].double(), -1)
        return (torch.logsumexp(log_weights + per_component, -1) + 0.5 * math.log(2 * math.pi) * absent
                - dims * math.log(SCALE)).to(dtype)

    def mean_error(self, params: dict[str, torch.Tensor], positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B,) mean squared error (SCALE units, over present objects) of the component mean closest
        to the motion (winner takes all, as in multiple-choice learning).

        The NLL alone moves a mean slowly along directions its component gives a large variance
        (the gradient is scaled by the precision), so the means lag far behind what they could fit
        while the low-rank factors absorb the error, and one component ends up covering every
        outcome with a huge spread. This term pulls the nearest mean onto each motion, so components
        specialise on distinct outcomes (bounces or not, a collision or not) and stay sharp."""
        x = ((positions[:, 1:] - positions[:, :1]) / SCALE).reshape(positions.shape[0], 1, self.dim)
        valid = self._valid(mask)[:, None, :].float()
        squared = ((params["mean"] - x) ** 2 * valid).sum(-1) / valid.sum(-1)  # (B, K)
        return squared.min(-1).values

    def energy_score(self, params: dict[str, torch.Tensor], positions: torch.Tensor, mask: torch.Tensor, num: int,
                     generator: torch.Generator) -> torch.Tensor:
        """(B,) energy score (SCALE units) of ``num`` reparameterised samples against the motion:
        E d(X, y) - E d(X, X') / 2, with d the evaluation's L2 (Euclidean distance per frame and
        object, averaged over frames and present objects).

        A proper scoring rule, minimised by the true distribution, but linear in the distance: the
        Gaussian NLL answers a few large errors (a collision the model did not see coming) with a
        few very wide factor directions, which hardly cost it likelihood yet throw every sample far
        off; the energy score charges that spread by distance. Component choice is not differentiable
        here; the NLL trains the weights."""
        b, k = params["logits"].shape
        t, n = self.config.horizon, self.config.max_objects
        pick = torch.multinomial(F.softmax(params["logits"].detach(), -1), num, replacement=True, generator=generator)
        mean = torch.gather(params["mean"], 1, pick[..., None].expand(-1, -1, self.dim))
        sigma = torch.gather(params["sigma"], 1, pick[..., None].expand(-1, -1, self.dim))
        factor = torch.gather(params["factor"], 1, pick[..., None, None].expand(-1, -1, self.dim, self.config.rank))
        latent = torch.randn(b, num, self.config.rank, 1, generator=generator, dtype=mean.dtype)
        noise = torch.randn(b, num, self.dim, generator=generator, dtype=mean.dtype)
        x = (mean + (factor @ latent).squeeze(-1) + sigma * noise).reshape(b, num, t, n, 3)
        y = ((positions[:, 1:] - positions[:, :1]) / SCALE)[:, None]  # (B, 1, T, N, 3)
        count = mask.float().sum(-1) * t  # (B,)

        def distance(a, c):  # mean over frames and present objects of the per-frame Euclidean distance
            d = (a - c).pow(2).sum(-1).add(1e-12).sqrt()  # (B, ..., T, N)
            present = mask.float().reshape(b, *([1] * (d.dim() - 2)), n)
            return (d * present).sum((-1, -2)) / count.reshape(b, *([1] * (d.dim() - 3)))

        accuracy = distance(x, y).mean(1)
        spread = distance(x[:, :, None], x[:, None]).sum((1, 2)) / (num * (num - 1))
        return accuracy - 0.5 * spread

    def _component_log_prob(self, params, x, mask):
        """(B, K) log-density of x (B, 1, D) (SCALE units) under each component, present dimensions
        only (absent ones get mean = x and unit variance); float64 for the Woodbury Cholesky."""
        valid = self._valid(mask)[:, None, :]
        mean = torch.where(valid, params["mean"].double(), x.double())
        factor = params["factor"].double() * valid[..., None]
        variance = torch.where(valid, params["sigma"].double() ** 2, torch.ones_like(mean))
        return torch.distributions.LowRankMultivariateNormal(mean, factor, variance).log_prob(x.double()).to(x.dtype)

    @torch.no_grad()
    def most_likely(self, params: dict[str, torch.Tensor], initial: torch.Tensor) -> torch.Tensor:
        """Positions (B, T + 1, N, 3) m: the mean motion of each condition's heaviest component."""
        b = initial.shape[0]
        top = params["logits"].argmax(-1)
        mean = params["mean"][torch.arange(b), top].reshape(b, self.config.horizon, self.config.max_objects, 3)
        return torch.cat([initial[:, None], initial[:, None] + mean * SCALE], 1)

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
            "gravity": torch.from_numpy(np.stack([e.gravity for e in examples])).float(),  # (B, 3) m/s^2
            "properties": torch.from_numpy(np.stack([e.properties for e in examples])).float(),
            "support": torch.from_numpy(np.stack([e.support for e in examples])).float(),  # (B, N, 6)
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
    encoder = meta["encoder"]
    if isinstance(encoder, dict) and "frame_diff" not in encoder:  # written before the PhysEncoder had the option
        encoder = {**encoder, "frame_diff": False}
    arguments = meta["model"]
    if isinstance(arguments, dict) and "support_prior" not in arguments:  # trained before the prior knew supports
        arguments = {**arguments, "support_prior": False, "friction_prior": False}
    model = TrajectoryGenerator(GeneratorConfig.from_dict(arguments, where=f"{folder / 'checkpoint.json'}: model"),
                                encoder)
    load_weights(model, folder, error=DynamicsCheckpointError)
    model.step = int(meta.get("step", 0))
    model.stage = str(meta.get("stage", ""))
    return model.eval()
