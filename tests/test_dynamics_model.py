"""The generator's likelihood against an independent multivariate-normal oracle, seeded sampling,
the checkpoint round trip, the DPO loss against a hand-computed value, and pair selection."""

import math

import numpy as np
import pytest
import torch

from physforge.dynamics.config import DPOConfig, GeneratorConfig, PairConfig, TrainConfig
from physforge.dynamics.errors import DynamicsCheckpointError, DynamicsConfigError
from physforge.dynamics.model import (SCALE, build_generator, integrate, load_generator, save_generator,
                                      second_differences)
from physforge.dynamics.recipe import dpo_loss, select_pairs, trainable_parameters

TINY = GeneratorConfig(max_objects=2, horizon=5, image_size=32, channels=(8, 8), encoder_dim=8,
                       encoder_channels=(8, 8), hidden=16, components=1)


def inputs(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, 3, 32, 32, generator=g), torch.rand(b, 2, 3, generator=g), torch.full((b, 2), 0.05),
            torch.tensor([[True, True], [True, False], [True, True]])[:b])


def test_second_differences_invert():
    d = torch.randn(2, 6, 3, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x = second_differences(d)
    assert torch.allclose(integrate(x), d)
    assert torch.allclose(x[:, 0], d[:, 0]) and torch.allclose(x[:, 2], d[:, 2] - 2 * d[:, 1] + d[:, 0])


def test_log_prob_matches_multivariate_normal_of_positions():
    model = build_generator(TINY, torch.Generator().manual_seed(0)).double()
    images, initial, size, mask = inputs()
    with torch.no_grad():
        params = model(images.double(), initial.double(), size.double(), mask)
        params["mean"] += 0.3 * torch.randn(params["mean"].shape, generator=torch.Generator().manual_seed(2),
                                            dtype=torch.float64)
        positions = model.sample(params, initial.double(), mask, 1, torch.Generator().manual_seed(3))[:, 0]
        ours = model.log_prob(params, positions, mask)
    t = TINY.horizon
    cumsum = torch.tril(torch.ones(t, t, dtype=torch.float64))
    b_matrix = cumsum @ cumsum  # second differences -> displacements, per (object, axis)
    for i in range(3):
        total = 0.0
        for n in range(2):
            if not mask[i, n]:
                continue
            for axis in range(3):
                mean = b_matrix @ params["mean"][i, 0, :, n, axis] * SCALE
                std = params["sigma"][i, 0, :, n, axis] * SCALE
                cov = b_matrix @ torch.diag(std ** 2) @ b_matrix.T
                d = positions[i, 1:, n, axis] - positions[i, 0, n, axis]
                total += float(torch.distributions.MultivariateNormal(mean, cov).log_prob(d))
        assert float(ours[i]) == pytest.approx(total, rel=1e-9, abs=1e-6)


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
