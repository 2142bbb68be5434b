"""The generator's likelihood against an independent multivariate-normal oracle, seeded sampling,
the checkpoint round trip, the DPO loss against a hand-computed value, and pair selection."""

import math

import numpy as np
import pytest
import torch

from physforge.dynamics.config import DPOConfig, EvalConfig, GeneratorConfig, PairConfig, TrainConfig
from physforge.dynamics.errors import DynamicsCheckpointError, DynamicsConfigError
from physforge.dynamics.model import SCALE, build_generator, load_generator, save_generator
from physforge.dynamics.recipe import dpo_loss, select_pairs, trainable_parameters

TINY = GeneratorConfig(max_objects=2, horizon=5, image_size=32, channels=(8, 8), encoder_dim=8,
                       encoder_channels=(8, 8), hidden=16, components=1, use_velocity=False, use_gravity=False,
                       use_properties=False, prior="none", learn_deceleration=False,
                       support_prior=False, friction_prior=False)


def inputs(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 3, 32, 32, generator=g), torch.rand(b, 2, 3, generator=g), torch.full((b, 2), 0.05),
            torch.tensor([[True, True], [True, False], [True, True]])[:b])


def test_log_prob_matches_full_covariance_normal_of_present_objects():
    """Oracle: for one component, the density of the displacements of the present objects is a
    full-covariance normal (factor factor^T + diag) in metres, built here without Woodbury."""
    model = build_generator(TINY, torch.Generator().manual_seed(0)).double()
    images, initial, size, mask = inputs()
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        params = model(images.double(), initial.double(), size.double(), mask)
        params["mean"] += 0.3 * torch.randn(params["mean"].shape, generator=g, dtype=torch.float64)
        params["factor"] += 0.2 * torch.randn(params["factor"].shape, generator=g, dtype=torch.float64)
        positions = model.sample(params, initial.double(), mask, 1, torch.Generator().manual_seed(3))[:, 0]
        ours = model.log_prob(params, positions, mask)
    for i in range(3):
        valid = mask[i][None, :, None].expand(TINY.horizon, -1, 3).reshape(-1)
        mean = params["mean"][i, 0][valid] * SCALE
        factor = params["factor"][i, 0][valid] * SCALE
        cov = factor @ factor.T + torch.diag((params["sigma"][i, 0][valid] * SCALE) ** 2)
        d = (positions[i, 1:] - positions[i, :1]).reshape(-1)[valid]
        expected = float(torch.distributions.MultivariateNormal(mean, cov).log_prob(d))
        assert float(ours[i]) == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_more_likely_near_the_mean():
    model = build_generator(TINY, torch.Generator().manual_seed(0))
    images, initial, size, mask = inputs()
    with torch.no_grad():
        params = model(images, initial, size, mask)
        mean_motion = torch.cat([initial[:, None], initial[:, None] + params["mean"][:, 0].reshape(
            3, TINY.horizon, 2, 3) * SCALE], 1)
        far = mean_motion.clone()
        far[:, 1:] += 0.05
        assert bool((model.log_prob(params, mean_motion, mask) > model.log_prob(params, far, mask)).all())


def test_sampling_is_seeded():
    model = build_generator(TINY, torch.Generator().manual_seed(0))
    images, initial, size, mask = inputs()
    with torch.no_grad():
        params = model(images, initial, size, mask)
    a = model.sample(params, initial, mask, 4, torch.Generator().manual_seed(7))
    b = model.sample(params, initial, mask, 4, torch.Generator().manual_seed(7))
    c = model.sample(params, initial, mask, 4, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (3, 4, TINY.horizon + 1, 2, 3)
    assert torch.equal(a[1, :, :, 1], initial[1, 1].expand(4, TINY.horizon + 1, 3))  # absent object stays put
    same = build_generator(TINY, torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), same.state_dict().values()))


def test_checkpoint_round_trip(tmp_path):
    model = build_generator(TINY, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    save_generator(model, tmp_path / "ck", step=12, stage="sft", train_config={"x": 1})
    loaded = load_generator(tmp_path / "ck")
    assert loaded.step == 12 and loaded.stage == "sft" and loaded.config == TINY
    images, initial, size, mask = inputs()
    with torch.no_grad():
        a, b = model.eval()(images, initial, size, mask), loaded(images, initial, size, mask)
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(DynamicsCheckpointError, match="no checkpoint.json"):
        load_generator(tmp_path / "missing")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(DynamicsCheckpointError, match="cannot read the weights"):
        load_generator(tmp_path / "ck")


def test_dpo_loss_hand_value():
    # beta [(−10 − −11) − (−12 − −11)] = 0.5 * 2 = 1; loss = −log sigmoid(1) = log(1 + e^−1)
    loss, rewards = dpo_loss(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]),
                             torch.tensor([-11.0]), beta=0.5)
    assert float(loss) == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    assert float(loss) == pytest.approx(0.3132617, rel=1e-6)
    assert float(rewards["rewards_chosen"]) == pytest.approx(0.5)
    assert float(rewards["rewards_rejected"]) == pytest.approx(-0.5)
    equal, _ = dpo_loss(torch.zeros(2), torch.zeros(2), torch.zeros(2), torch.zeros(2), beta=3.0)
    assert float(equal) == pytest.approx(math.log(2))


def test_pairs_best_against_worst_ties_dropped():
    config = PairConfig(samples_per_image=4, pairs_per_image=2, margin=0.01, relative_margin=0.1)
    assert select_pairs([0.1, 0.5, 0.3, 0.105], config) == [(0, 1), (3, 2)]
    assert select_pairs([0.1, 0.105, 0.102, 0.104], config) == []  # gaps under the margin: ties
    assert select_pairs([1.0, 1.05, 2.0, 1.02], config) == [(0, 2)]  # 1.02 vs 1.05: under 10 % of 1.05


def test_stage_parameters_are_disjoint():
    model = build_generator(TINY, torch.Generator().manual_seed(0))
    encoder = {id(p) for p in trainable_parameters(model, "encoder")}
    generator = {id(p) for p in trainable_parameters(model, "generator")}
    assert encoder and generator and not encoder & generator
    assert encoder == {id(p) for p in model.encoder.parameters()}
    assert not any(p.requires_grad for p in model.encoder.parameters())  # the last call froze the encoder


def test_velocity_conditioning_is_required_when_configured():
    from dataclasses import replace

    model = build_generator(replace(TINY, use_velocity=True), torch.Generator().manual_seed(0))
    images, initial, size, mask = inputs()
    with pytest.raises(ValueError, match="pass velocity"):
        model(images, initial, size, mask)
    with torch.no_grad():
        slow = model(images, initial, size, mask, torch.zeros(3, 2, 3))
        fast = model(images, initial, size, mask, torch.ones(3, 2, 3))
    assert not torch.equal(slow["mean"], fast["mean"]) or not torch.equal(slow["logits"], fast["logits"])
    model = build_generator(replace(TINY, use_velocity=True, use_gravity=True), torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="pass gravity"):
        model(images, initial, size, mask, torch.zeros(3, 2, 3))


G = torch.tensor([[0.0, 0.0, -9.81]], dtype=torch.float64)


def test_ballistic_prior_is_closed_form_flight_then_rest_on_the_ground():
    """Oracle: p0 + v t + g t^2 / 2 until the ball reaches its resting height (its radius above the
    ground plane), then that height; horizontal motion continues (no friction in the prior)."""
    from physforge.dynamics.model import physics_prior

    horizon, dt = 10, 0.1
    initial = torch.tensor([[[0.0, 0.0, 1.0], [0.3, 0.0, 0.05]]], dtype=torch.float64)
    velocity = torch.tensor([[[1.0, 0.5, 2.0], [0.0, -1.0, 0.0]]], dtype=torch.float64)
    size = torch.tensor([[0.05, 0.05]], dtype=torch.float64)
    prior = physics_prior("ballistic", initial, velocity, size, G, horizon, dt)
    t = np.arange(1, horizon + 1) * dt
    z = 1.0 + 2.0 * t - 0.5 * 9.81 * t ** 2
    assert z.min() < 0.05 < z.max()  # the ball lands inside the horizon
    expected = np.stack([t, 0.5 * t, np.maximum(z, 0.05) - 1.0], -1)
    np.testing.assert_allclose(prior[0, :, 0].numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(prior[0, :, 1].numpy(), np.stack([0 * t, -t, 0 * t], -1), atol=1e-12)  # slides on
    np.testing.assert_allclose(physics_prior("constant_velocity", initial, velocity, size, G, horizon, dt)[0, :, 0]
                               .numpy(), np.stack([t, 0.5 * t, 2.0 * t], -1), atol=1e-12)
    assert not physics_prior("none", initial, velocity, size, G, horizon, dt).any()
    with pytest.raises(ValueError, match="prior: expected"):
        physics_prior("parabola", initial, velocity, size, G, horizon, dt)


def test_ballistic_prior_matches_the_simulator_in_free_flight():
    """Independent oracle: MuJoCo (RK4) throwing a ball; the prior agrees until it lands."""
    from physforge.dynamics.model import physics_prior
    from physforge.dynamics.verify import reference_rollout
    from physforge.world import Body, Geom, Pose, Sphere, World

    ball = Body("ball", (Geom(Sphere(0.05)),), Pose((0.0, 0.0, 2.0)), velocity=(0.8, -0.3, 1.0))
    world = World(bodies=(ball,), gravity=(0.0, 0.0, -9.5), timestep=0.002, integrator="RK4")
    horizon, dt = 6, 0.1
    reference, _ = reference_rollout(world, ("ball",), horizon, dt)
    prior = physics_prior("ballistic", torch.tensor(reference[:1]), torch.tensor([[[0.8, -0.3, 1.0]]]).double(),
                          torch.tensor([[0.05]]).double(), torch.tensor([[0.0, 0.0, -9.5]]).double(), horizon, dt)
    np.testing.assert_allclose(reference[0] + prior[0].numpy(), reference[1:], atol=1e-4)


def test_sliding_deceleration_after_touchdown_closed_form():
    """A ball thrown from 1 m flies (horizontal v t), touches down at the root of the height
    equation, then slides at constant deceleration a until it stops; a box already down slides from t = 0."""
    from physforge.dynamics.model import physics_prior

    horizon, dt, a = 20, 0.05, 2.0
    initial = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.5, 0.04]]], dtype=torch.float64)
    velocity = torch.tensor([[[0.6, 0.8, 0.0], [-1.5, 0.0, 0.0]]], dtype=torch.float64)
    size = torch.tensor([[0.05, 0.04]], dtype=torch.float64)
    prior = physics_prior("ballistic", initial, velocity, size, G, horizon, dt, torch.tensor([[a, a]]).double())
    t = np.arange(1, horizon + 1) * dt
    landing = math.sqrt(2 * 0.95 / 9.81)  # s, 1 m down to its 0.05 m resting height
    sliding = np.clip(t - landing, 0.0, 1.0 / a)  # speed 1 m/s
    distance = np.minimum(t, landing) + sliding - 0.5 * a * sliding ** 2
    np.testing.assert_allclose(prior[0, :, 0, 0].numpy(), 0.6 * distance, atol=1e-12)
    np.testing.assert_allclose(prior[0, :, 0, 1].numpy(), 0.8 * distance, atol=1e-12)
    box = np.clip(t, 0.0, 1.5 / a)
    np.testing.assert_allclose(prior[0, :, 1, 0].numpy(), -(1.5 * box - 0.5 * a * box ** 2), atol=1e-12)
    assert float(prior[0, -1, 1, 0]) == pytest.approx(-1.5 ** 2 / (2 * a))  # stopped after v^2 / 2a
    assert not prior[0, :, 1, 1:].any()  # a box on the ground stays on it


def test_sliding_prior_against_the_simulator():
    """Independent oracle: MuJoCo slides a box over the floor with Coulomb friction mu; the prior with
    deceleration mu g stops it within 1 cm of where the simulator does."""
    from physforge.dynamics.model import physics_prior
    from physforge.dynamics.verify import reference_rollout
    from physforge.world import Body, Box, Geom, Ground, Material, Pose, World

    mu, speed, half = 0.3, 1.2, 0.05
    steel = Material("steel", friction=(mu, 0.005, 0.0001))
    box = Body("box", (Geom(Box((half, half, half)), material=steel),), Pose((0.0, 0.0, half)),
               velocity=(speed, 0.0, 0.0))
    ice = Ground(material=Material("ice", friction=(0.01, 0.005, 0.0001)))  # MuJoCo takes the larger mu
    world = World(bodies=(box,), gravity=(0.0, 0.0, -9.81), timestep=0.002, ground=ice)
    horizon, dt = 10, 0.1
    reference, _ = reference_rollout(world, ("box",), horizon, dt)
    prior = physics_prior("ballistic", torch.tensor(reference[:1]), torch.tensor([[[speed, 0.0, 0.0]]]).double(),
                          torch.tensor([[half]]).double(), G, horizon, dt, torch.tensor([[mu * 9.81]]).double())
    np.testing.assert_allclose(reference[0] + prior[0].numpy(), reference[1:], atol=0.01)
    assert reference[-1, 0, 0] == pytest.approx(speed ** 2 / (2 * mu * 9.81), abs=0.01)


def test_prior_is_the_mean_of_an_untrained_generator():
    """Every component's mean motion is the prior plus the mean head's residual: with that head at
    zero it is the prior exactly, and freshly initialised it is within a centimetre of it (SFT starts
    from the ballistic baseline and learns a residual)."""
    from dataclasses import replace

    from physforge.dynamics.model import physics_prior

    config = replace(TINY, use_velocity=True, use_gravity=True, prior="ballistic", components=2)  # no deceleration
    model = build_generator(config, torch.Generator().manual_seed(0))
    images, initial, size, mask = inputs()
    velocity = torch.randn(3, 2, 3, generator=torch.Generator().manual_seed(1))
    gravity = G.float().expand(3, 3)
    prior = physics_prior("ballistic", initial, velocity * mask[..., None], size, gravity, config.horizon, config.dt)
    present = mask[:, None, :, None]
    expected = (initial[:, None] + prior) * present
    with torch.no_grad():
        fresh = model.most_likely(model(images, initial, size, mask, velocity, gravity), initial)
        assert float((fresh[:, 1:] * present - expected).abs().max()) < 0.01
        model.mean.weight.zero_()
        motion = model.most_likely(model(images, initial, size, mask, velocity, gravity), initial)
    torch.testing.assert_close(motion[:, 1:] * present, expected, atol=1e-5, rtol=0)


def test_configs_name_the_bad_field():
    with pytest.raises(DynamicsConfigError, match="image_size: must be a multiple of 16"):
        GeneratorConfig(image_size=40)
    with pytest.raises(DynamicsConfigError, match="pairs_per_image"):
        PairConfig(samples_per_image=4, pairs_per_image=3)
    with pytest.raises(DynamicsConfigError, match="train: expected 'generator'"):
        DPOConfig(checkpoint="a", dataset="b", train="everything")
    with pytest.raises(DynamicsConfigError, match="model.horizon"):
        TrainConfig(dataset="d", model={"horizon": 1})
    with pytest.raises(DynamicsConfigError, match="model.colour: unknown field"):
        TrainConfig(dataset="d", model={"colour": 1})
    with pytest.raises(DynamicsConfigError, match="prior: the 'ballistic' prior needs the gravity vector"):
        GeneratorConfig(use_gravity=False)
    with pytest.raises(DynamicsConfigError, match="prior: the 'constant_velocity' prior extrapolates"):
        GeneratorConfig(use_velocity=False, prior="constant_velocity")
    with pytest.raises(DynamicsConfigError, match="baselines: unknown"):
        EvalConfig(dataset="d", baselines=("oracle",))
    assert TrainConfig.from_dict(TrainConfig(dataset="d").to_dict()) == TrainConfig(dataset="d")


def test_experiment_summary_mean_and_spread():
    from physforge.dynamics.experiment import summarise, table

    def result(l2, iou):
        row = {"l2": l2, "chamfer": 0.1, "iou": iou, "gravity_residual": 0.0, "penetration": 0.0,
               "energy_created": 0.0, "cost": l2, "violation_rate": 0.5}
        return {"scenes": {"test": 10}, "models": {"sft": {"test": row}}}

    summary = summarise({0: result(0.2, 0.5), 1: result(0.4, None), 2: result(0.3, 0.7)})
    assert summary["mean"]["sft"]["test"]["l2"] == pytest.approx(0.3)
    assert summary["std"]["sft"]["test"]["l2"] == pytest.approx(0.1)  # sample std of 0.2, 0.4, 0.3
    assert summary["mean"]["sft"]["test"]["iou"] == pytest.approx(0.6)  # a missing value is skipped
    assert "| test (10) | sft | 0.3000 ± 0.1000 |" in table(summary)


def test_physencoder_from_a_reason_checkpoint(tmp_path):
    from physforge.reason.config import EncoderConfig
    from physforge.reason.encoder import build_encoder, save_encoder

    encoder = build_encoder(EncoderConfig(image_size=64, clip_frames=2, channels=(8, 8), dim=8),
                            torch.Generator().manual_seed(5))
    save_encoder(encoder, tmp_path / "enc", step=3)
    model = build_generator(TINY, torch.Generator().manual_seed(0), encoder_checkpoint=tmp_path / "enc")
    assert all(torch.equal(a, b) for a, b in zip(model.encoder.state_dict().values(), encoder.state_dict().values()))
    images, initial, size, mask = inputs()
    with torch.no_grad():
        z = model.physical_embedding(images)  # 32 px frames resized to the encoder's 64, shown as 2-frame clips
        params = model(images, initial, size, mask)
    assert z.shape == (3, 8) and params["mean"].shape == (3, 1, TINY.horizon * 2 * 3)
    save_generator(model, tmp_path / "gen", step=1, stage="sft")
    assert load_generator(tmp_path / "gen").encoder.config.clip_frames == 2


def test_checkpoint_from_before_frame_differences_loads(tmp_path):
    """Generators saved before the PhysEncoder's frame_diff option (3-channel frame CNN) still load."""
    import json

    model = build_generator(TINY, torch.Generator().manual_seed(0))
    save_generator(model, tmp_path / "old", step=1, stage="sft")
    meta_path = tmp_path / "old" / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    assert meta["encoder"].pop("frame_diff") is False  # a single conditioning frame has nothing to difference
    meta_path.write_text(json.dumps(meta))
    loaded = load_generator(tmp_path / "old")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def ramp_world(angle_deg: float, mu: float, shape: str, along: float = 0.15):
    """An object resting 0.5 mm above a fixed ramp tilted by ``angle_deg`` (descending along +x),
    laid out as the data engine's ramps family does; ``along`` m down from the ramp's top."""
    from physforge.world import Body, Box, Geom, Joint, Material, Pose, Sphere, World

    angle, half_length, half_thickness, size = math.radians(angle_deg), 0.5, 0.02, 0.05
    top = 2 * half_length * math.sin(angle) + 0.02
    centre = np.array([0.0, 0.0, top - half_length * math.sin(angle)])
    normal = np.array([math.sin(angle), 0.0, math.cos(angle)])
    downhill = np.array([math.cos(angle), 0.0, -math.sin(angle)])
    rough = Material("rough", friction=(mu, 0.005, 0.0001))
    ramp = Body("ramp", (Geom(Box((half_length + 0.05, 0.25, half_thickness)),
                              material=Material("ramp", friction=(mu / 2, 0.005, 0.0001))),),
                Pose.from_axis_angle(tuple(np.round(centre - normal * half_thickness, 6)), (0, 1, 0), angle),
                Joint("fixed"))
    geom = Geom(Sphere(size) if shape == "sphere" else Box((size, size, size)), material=rough)
    position = centre + downhill * (-half_length + along) + normal * (size + 5e-4)
    thing = Body("thing", (geom,), Pose.from_axis_angle(tuple(np.round(position, 6)), (0, 1, 0), angle))
    return World(bodies=(ramp, thing), gravity=(0.0, 0.0, -9.81), timestep=0.002), size


@pytest.mark.parametrize("angle, mu, shape, expected", [
    (30.0, 0.2, "box", 9.81 * (math.sin(math.radians(30)) - 0.2 * math.cos(math.radians(30)))),  # slides
    (15.0, 0.5, "box", 0.0),  # sticks: tan 15 deg < 0.5
    (30.0, 0.5, "sphere", 9.81 * math.sin(math.radians(30)) * 5 / 7),  # rolls: 0.5 >= 2/7 tan 30 deg
])
def test_prior_on_a_ramp_against_the_simulator(angle, mu, shape, expected):
    """Independent oracle: MuJoCo lets a box slide or stick and a ball roll down a ramp; while it is
    on the ramp the prior (the support read from the world) follows it within 1.5 cm, where the plain
    ballistic prior drops the object through the ramp."""
    from physforge.dynamics.data import object_support
    from physforge.dynamics.model import physics_prior, support_acceleration
    from physforge.dynamics.verify import reference_rollout

    world, size = ramp_world(angle, mu, shape)
    support = torch.tensor(object_support(world, ("thing",), 1)[None]).double()  # (1, 1, 6)
    normal = support[0, 0, :3].numpy()
    assert normal == pytest.approx([math.sin(math.radians(angle)), 0.0, math.cos(math.radians(angle))], abs=1e-6)
    assert float(support[0, 0, 3]) == pytest.approx(mu)  # the larger of object's and ramp's
    assert float(support[0, 0, 4]) == (shape == "sphere")
    acceleration, tilted = support_acceleration(G, support)
    assert bool(tilted[0, 0]) and float(acceleration[0, 0].norm()) == pytest.approx(expected, rel=1e-6)
    horizon, dt = 4, 0.1  # 0.4 s: still on the ramp
    reference, _ = reference_rollout(world, ("thing",), horizon, dt)
    start = torch.tensor(reference[:1])
    still = torch.zeros(1, 1, 3, dtype=torch.float64)
    prior = physics_prior("ballistic", start, still, torch.tensor([[size]]).double(), G, horizon, dt, support=support)
    np.testing.assert_allclose(reference[0] + prior[0].numpy(), reference[1:], atol=0.015)
    travelled = np.linalg.norm(reference[-1, 0] - reference[0, 0])
    assert travelled == pytest.approx(0.5 * expected * (horizon * dt) ** 2, abs=0.015)
    plain = physics_prior("ballistic", start, still, torch.tensor([[size]]).double(), G, horizon, dt)
    assert np.abs(reference[0] + plain[0].numpy() - reference[1:]).max() > 0.1


def test_known_friction_deceleration_and_supportless_prior_unchanged():
    """Objects resting on nothing (or on the flat floor) keep the plain ballistic prior exactly; the
    known deceleration is mu |g| for a sliding object and 0 for a ball (it rolls) or an empty slot."""
    from physforge.dynamics.model import known_deceleration, physics_prior

    initial = torch.tensor([[[0.0, 0.0, 1.0], [0.0, 0.5, 0.04]]], dtype=torch.float64)
    velocity = torch.tensor([[[0.6, 0.8, 0.0], [-1.5, 0.0, 0.0]]], dtype=torch.float64)
    size = torch.tensor([[0.05, 0.04]], dtype=torch.float64)
    support = torch.tensor([[[0, 0, 0, 0.4, 1, 0.4], [0, 0, 1, 0.3, 0, 0]]], dtype=torch.float64)
    decel = torch.tensor([[2.0, 2.0]], dtype=torch.float64)
    for d in (None, decel):
        torch.testing.assert_close(physics_prior("ballistic", initial, velocity, size, G, 20, 0.05, d, support),
                                   physics_prior("ballistic", initial, velocity, size, G, 20, 0.05, d), atol=1e-12,
                                   rtol=0)
    known = known_deceleration(G, support, torch.tensor([[True, True]]))
    assert known[0].tolist() == pytest.approx([0.0, 0.3 * 9.81])
    assert known_deceleration(G, support, torch.tensor([[True, False]])).tolist() == [[0.0, 0.0]]
