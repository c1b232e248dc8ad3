"""generate.sampler: every selectable sampler runs through a diffusers scheduler object (issue 12 item 8)."""

from __future__ import annotations

import pytest
import torch

from voyager_pipe.errors import InputError
from voyager_pipe.generate.sampler import SAMPLERS, add_noise, check_sampler, flow_sigmas, sample_flow


def _oracle(x0: torch.Tensor):
    """The exact velocity of the straight path to ``x0``: ``v = (x - x0) / sigma``."""
    return lambda x, sigma: (x - x0) / sigma


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("sigma_from", [1.0, 0.8])
def test_each_sampler_lands_on_the_clean_sample(sampler, sigma_from):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(3, 4, 6, 5, generator=g)
    noise = torch.randn(x0.shape, generator=g)
    out = sample_flow(add_noise(x0, noise, sigma_from), _oracle(x0), flow_sigmas(sigma_from, 0.0, 20, 7.0), sampler)
    assert float((out - x0).abs().max()) < 1e-3


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_each_sampler_stops_at_an_intermediate_level_on_the_path(sampler):
    """Refinement and overlap passes start and stop between 0 and 1: the result is the path's point at sigma_to."""
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    out = sample_flow(add_noise(x0, noise, 0.8), _oracle(x0), flow_sigmas(0.8, 0.3, 6, 7.0), sampler)
    torch.testing.assert_close(out, add_noise(x0, noise, 0.3), atol=1e-4, rtol=0)


def test_model_calls_and_callbacks_per_sampler():
    x0 = torch.zeros(1, 2, 4, 4)
    x = torch.ones(1, 2, 4, 4)
    calls = {name: [] for name in SAMPLERS}
    steps_done = {name: [] for name in SAMPLERS}
    for name in SAMPLERS:
        velocity = _oracle(x0)
        sample_flow(x, lambda x, s, name=name: (calls[name].append(s), velocity(x, s))[1], flow_sigmas(1.0, 0.0, 5, 7.0),
                    name, callback=lambda i, n, name=name: steps_done[name].append((i, n)))
        assert steps_done[name] == [(i, 5) for i in range(5)]
    sigmas = flow_sigmas(1.0, 0.0, 5, 7.0).tolist()
    assert calls["euler"] == pytest.approx(sigmas[:-1])
    assert len(calls["heun"]) == 2 * 5 - 1  # predictor + corrector, a plain Euler step into 0
    assert calls["heun"][:3] == pytest.approx([sigmas[0], sigmas[1], sigmas[1]])
    assert len(calls["unipc"]) == len(calls["dpmpp"]) == 5


def test_higher_order_samplers_are_more_accurate_than_euler():
    """dx/dsigma = x from sigma 1 to 0 has the solution x(1) / e: Heun's error falls with the square of the step."""
    import math

    x = torch.ones(1, 1, 2, 2, dtype=torch.float64)
    exact = math.exp(-1.0)

    def error(name, steps):
        return float((sample_flow(x.clone(), lambda x, s: x, flow_sigmas(1.0, 0.0, steps, 1.0), name) - exact).abs().max())

    assert error("heun", 20) < error("euler", 20) / 10
    assert error("heun", 40) < error("heun", 20) / 3  # second order
    assert error("euler", 40) > error("euler", 20) / 2.5  # first order


def test_unknown_sampler_is_refused_with_the_field_name():
    with pytest.raises(InputError, match="generate.sampler"):
        check_sampler("FlowMatchEulerDiscreteScheduler")
    with pytest.raises(InputError, match="generate.sampler"):
        sample_flow(torch.zeros(1, 1, 1, 1), lambda x, s: x, flow_sigmas(1.0, 0.0, 2, 7.0), "ddim")
