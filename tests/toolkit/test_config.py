"""Config validation: every bad value gives an error naming the key, the value and what is
allowed."""
import re
import textwrap
import tomllib

import pytest

from toolkit import ConfigError, config_from_dict, config_to_toml, load_config

BASE = {
    "lattice": {"size": [10, 2]},
    "layers": [{"name": "A", "columns": [0, 3], "J_sd": 1.0, "spin": [1, 0, 0]},
               {"name": "B", "columns": [6, 10], "J_sd": 1.0, "spin": [0, 0, 1]}],
    "time": {"dt": 0.1, "t_end": 1.0},
}


def _with(path, value):
    import copy

    d = copy.deepcopy(BASE)
    node = d
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
    if isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return d


@pytest.mark.parametrize("path,value,needles", [
    ("lattice.size", [-3, 2], ["lattice.size[0]", "-3", ">= 1"]),
    ("lattice.size", [1, 2, 3, 4], ["lattice.size", "[Lx], [Lx, Ly] or [Lx, Ly, Lz]"]),
    ("layers.0.columns", [0, 12], ["layers[0].columns", "[0, 12]", "Lx = 10"]),
    ("layers.1.columns", [2, 5], ["overlap", "'A'", "'B'"]),
    ("layers.0.spin", [0, 0, 0], ["layers[0].spin", "non-zero length"]),
    ("time.dt", 0.0, ["time.dt", "0.0", "> 0"]),
    ("time.dt", -1, ["time.dt", "-1", "> 0"]),
    ("time.output_every", 0, ["time.output_every", ">= 1"]),
    ("layers.0.damping", -0.1, ["layers[0].damping", ">= 0"]),
    ("layers.0.colour", "red", ["layers[0].colour", "unknown key", "J_sd"]),
    ("lattice.hoping", 1.0, ["lattice.hoping", "unknown key", "hopping"]),
    ("units", "SI", ["units", "'SI'", "natural", "eV-fs"]),
    ("electrons.initial", "thermal", ["electrons.initial", "ground", "fermi"]),
    ("layers.0.J_sd", "big", ["layers[0].J_sd", "'big'", "real number"]),
    ("layers.0", {"name": "A", "columns": [0, 3], "spins": [[1, 0, 0]]},
     ["layers[0].spins", "list of 6 vectors"]),
    ("layers.0.spins", [[1, 0, 0]] * 6, ["layers[0].spins", "either 'spin' or 'spins'"]),
    ("electrons.n_electrons", 100, ["electrons.n_electrons", "at most 2 x sites = 40"]),
    ("output.planes", [2, 9], ["output.planes[1]", "9", "Lx - 1 = 9"]),
    ("leads", [{"side": "top", "gamma": 1.0}], ["leads[0].side", "'top'", "left"]),
    ("leads", [{"side": "left", "gamma": 0.0}], ["leads[0].gamma", "> 0"]),
    ("bias", {"protocol": "symmetric", "V": 1.0}, ["bias.protocol", "left and a right lead"]),
])
def test_bad_values_are_named(path, value, needles):
    with pytest.raises(ConfigError) as exc:
        config_from_dict(_with(path, value))
    msg = str(exc.value)
    for n in needles:
        assert n in msg, (n, msg)


def test_unknown_top_level_and_bad_between():
    d = dict(BASE, solvr={})
    with pytest.raises(ConfigError, match="solvr"):
        config_from_dict(d)
    d = dict(BASE, bonds=[{"between": ["A", "C"], "hopping": 0.5}])
    with pytest.raises(ConfigError, match="layer 'C' is not defined"):
        config_from_dict(d)


def test_fermi_needs_temperature():
    with pytest.raises(ConfigError, match="electrons.temperature"):
        config_from_dict(_with("electrons", {"initial": "fermi"}))


def test_roundtrip_through_toml():
    cfg = config_from_dict(dict(BASE, solver={"options": {"ts_adapt_type": "basic"}}))
    again = config_from_dict(tomllib.loads(config_to_toml(cfg)))
    assert again == cfg


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "nope.toml"))
    p = tmp_path / "bad.toml"
    p.write_text("[lattice\nsize=3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(p))
    p.write_text(textwrap.dedent("""
        [lattice]
        size = [8]
        [time]
        dt = 0.1
    """))
    cfg = load_config(str(p), ["time.dt=0.02", "lattice.mu_bar=0.5"])
    assert cfg.time.dt == 0.02 and cfg.lattice.mu_bar == 0.5


def test_builder_guard_and_frozen_device():
    from toolkit import DeviceBuilder

    b = DeviceBuilder(size=(4,))
    with pytest.raises(AttributeError, match="finalized"):
        _ = b.n_sites
    dev = b.finalized()
    with pytest.raises(ValueError):      # a read-only NumPy array
        dev.hopping[0] = 3.0
    with pytest.raises(ConfigError, match="columns"):
        DeviceBuilder(size=(4,)).add_layer("X", (2, 9)).finalized()


def test_ev_fs_units():
    from integrators import Simulation
    from toolkit.units import HBAR_EV_FS

    cfg = config_from_dict(dict(BASE, units="eV-fs", time={"dt": 0.1, "t_end": 1.0}))
    sim = Simulation(cfg)
    assert abs(sim.dt - 0.1 / HBAR_EV_FS) < 1e-15
    sim.step(3)
    assert abs(sim.observables(root=None)["time"] - 0.3) < 1e-12  # reported in fs
    sim.destroy()


# ----------------------------------------------------------------------------- schema
def test_schema_checks_are_one_set_with_two_names():
    """toolkit.schema: the same check names a config key (ConfigError) or an argument
    (ValueError); the module doctests run."""
    import doctest

    from toolkit import lead_schema, schema

    for mod in (schema, lead_schema):
        assert doctest.testmod(mod).failed == 0
    with pytest.raises(ConfigError, match=re.escape("config key 'x' = True is not allowed: "
                                                    "expected an integer")):
        schema.integer("config key 'x'", True, exc=ConfigError)
    with pytest.raises(ValueError, match=re.escape("g[1] = -1.0 is not allowed: expected a "
                                                   "number >= 0")):
        schema.reals("g", [1.0, -1.0])
    with pytest.raises(ValueError, match="expected a number > 0 or 4 numbers"):
        schema.reals("g", [1.0, 1.0], length=4)
    tb = lead_schema.LEAD_SCHEMAS["tight-binding"].schema
    assert tb["sites"].resolve("sites", None) == 60 and tb["sites"].resolve("sites", 7) == 7
    ref = tb.reference()
    assert "sites : int >= 1 (default 60)" in ref and "hopping : real > 0" in ref
