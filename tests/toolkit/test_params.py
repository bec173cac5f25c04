"""Device.with_params (Kwant's ``params``): a parameter change without rebuilding the config
gives exactly the device that the changed config builds, and its config says so."""
from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
from helpers import EXAMPLES

from toolkit import ConfigError, load_config
from toolkit.config import config_to_toml
from toolkit.device import device_from_config


def _rebuilt(cfg, **layer_values):
    """The device of ``cfg`` with {layer: {key: value}} changed in the config itself."""
    layers = tuple(replace(l, **layer_values.get(l.name, {})) for l in cfg.layers)
    return device_from_config(replace(cfg, layers=layers))


def _same(a, b):
    for name in ("J_sd", "K", "B", "J_ex", "spins0", "hopping", "bonds", "coords"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert config_to_toml(a.config) == config_to_toml(b.config)


def test_with_params_equals_the_rebuilt_device():
    """J_sd for every magnetic layer, K per layer by name and B: bitwise the arrays and the
    config text of the device built from the changed config."""
    cfg = load_config(os.path.join(EXAMPLES, "valve_1d.toml"))
    dev = device_from_config(cfg)
    mags = dev.magnetic_layers
    assert len(mags) == 2
    new = dev.with_params(J_sd=2.5, K={mags[1]: 0.3}, B=[0.0, 0.1, 0.0])
    ref = _rebuilt(replace(cfg, field=(0.0, 0.1, 0.0)),
                   **{mags[0]: {"J_sd": 2.5}, mags[1]: {"J_sd": 2.5, "K": 0.3}})
    _same(new, ref)
    assert new.coords is dev.coords            # the geometry is shared, not rebuilt
    _same(dev.with_params(), dev)              # nothing changed


@pytest.mark.parametrize("params, match", [
    ({"J_ex": 1.0}, r"parameter 'J_ex'.*expected one of \['J_sd', 'K', 'B', 'mu', 'V'\]"),
    ({"J_sd": {"nowhere": 1.0}}, r"parameter 'J_sd'.*'nowhere' has no classical spins"),
    ({"J_sd": "big"}, r"parameter 'J_sd' of layer .*'big'"),
    ({"B": [1.0, 2.0]}, r"parameter 'B'.*\[Bx, By, Bz\]"),
])
def test_with_params_refuses_bad_values(params, match):
    dev = device_from_config(load_config(os.path.join(EXAMPLES, "valve_1d.toml")))
    with pytest.raises(ConfigError, match=match):
        dev.with_params(**params)


def test_lead_params_mu_and_v(comm):
    """mu (all leads, or one by name) and V change only the config's leads and bias: the
    config equals the one with the keys changed, the geometry arrays are shared (the same
    objects), and a Simulation of it runs with those reservoirs (lead_mu at the stationary
    start) and that bias."""
    from integrators import Simulation

    cfg = load_config(os.path.join(EXAMPLES, "valve_1d_tb.toml"),
                      ["leads.left.representation=modes", "leads.right.representation=modes",
                       "leads.left.sites=8", "leads.right.sites=8"])
    dev = device_from_config(cfg)
    d2 = dev.with_params(mu=-1.5, V=0.1)
    want = replace(cfg, leads=tuple(replace(lc, mu=-1.5) for lc in cfg.leads),
                   bias=replace(cfg.bias, V=0.1))
    assert config_to_toml(d2.config) == config_to_toml(want)
    assert d2.coords is dev.coords and d2.hopping is dev.hopping
    d3 = dev.with_params(mu={"right": -1.55})
    assert [lc.mu for lc in d3.config.leads] == [-1.6, -1.55]
    sim = Simulation(d2, comm)
    assert np.allclose(sim.mu_of_t.mu0, [-1.5, -1.5])
    assert np.allclose(sim.mu_of_t.on, [-1.4, -1.5])       # asymmetric: mu_left + V
    sim.destroy()


@pytest.mark.parametrize("params, match", [({"mu": {"middle": 0.0}}, "lead 'middle'"),
                                           ({"mu": "x"}, "parameter 'mu'")])
def test_lead_params_refused(params, match):
    cfg = load_config(os.path.join(EXAMPLES, "valve_1d_tb.toml"))
    with pytest.raises(ConfigError, match=match):
        device_from_config(cfg).with_params(**params)
    closed = device_from_config(load_config(os.path.join(EXAMPLES, "valve_1d.toml")))
    with pytest.raises(ConfigError, match="no \\[\\[leads\\]\\]|needs a \\[bias\\]"):
        closed.with_params(**({"mu": 0.0} if "mu" in params else {"V": 0.1}))
