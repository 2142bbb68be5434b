"""The generator's likelihood against an independent multivariate-normal oracle, seeded sampling,
the checkpoint round trip, the DPO loss against a hand-computed value, and pair selection."""

import math

import pytest
import torch

from physforge.dynamics.config import DPOConfig, GeneratorConfig, PairConfig, TrainConfig
from physforge.dynamics.errors import DynamicsCheckpointError, DynamicsConfigError
from physforge.dynamics.model import SCALE, build_generator, load_generator, save_generator
from physforge.dynamics.recipe import dpo_loss, select_pairs, trainable_parameters

TINY = GeneratorConfig(max_objects=2, horizon=5, image_size=32, channels=(8, 8), encoder_dim=8,
                       encoder_channels=(8, 8), hidden=16, components=1, use_velocity=False)


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
