"""Nothing lost, nothing silent: every bad config input gives a one-line ConfigError that names the
key, the value and what is allowed (never a traceback, never silent acceptance).

Pure config parsing, no collective calls: every rank runs the same checks on its own files."""
import copy
import os
import tempfile
import tomllib

import pytest
from helpers import EXAMPLES

from toolkit import ConfigError, DeviceBuilder, load_config
from toolkit.config import (
    N_POLES_LIMIT,
    config_from_dict,
    config_to_toml,
    config_warnings,
)
from toolkit.overrides import apply_overrides

VALVE = {
    "lattice": {"size": [10, 2]},
    "layers": [{"name": "PL", "columns": [0, 3], "J_sd": 1.0, "spin": [1, 0, 0]},
               {"name": "SL", "columns": [3, 6]},
               {"name": "FL", "columns": [6, 10], "J_sd": 1.0, "spin": [0, 0, 1]}],
    "time": {"dt": 0.1, "t_end": 1.0},
}
OPEN = dict(copy.deepcopy(VALVE), leads=[{"side": "left", "gamma": 1.0},
                                         {"side": "right", "gamma": 1.0, "name": "drain"}])


def _error(fn, *args) -> str:
    with pytest.raises(ConfigError) as exc:
        fn(*args)
    msg = str(exc.value)
    assert "\n" not in msg, msg                     # one line
    return msg


def _bad(doc, overrides, needles):
    msg = _error(lambda: config_from_dict(apply_overrides(doc, overrides)))
    for n in needles:
        assert n in msg, (n, msg)
    return msg


@pytest.fixture
def own_dir():
    """A directory of this process only (the file tests make no collective calls)."""
    with tempfile.TemporaryDirectory(prefix="qcspin-bad-") as d:
        yield d


# ----------------------------------------------------------------------------- 1. files
def test_not_a_toml_file(own_dir):
    hdf5 = os.path.join(own_dir, "run.h5")
    with open(hdf5, "wb") as fh:
        fh.write(b"\x89HDF\r\n\x1a\n" + bytes(64))
    latin1 = os.path.join(own_dir, "latin1.toml")
    with open(latin1, "wb") as fh:
        fh.write('name = "Überlauf"\n'.encode("latin-1"))
    nul = os.path.join(own_dir, "zeros.toml")
    with open(nul, "wb") as fh:
        fh.write(bytes(100))
    noise = os.path.join(own_dir, "noise.toml")
    with open(noise, "wb") as fh:
        fh.write(bytes(range(256)) * 4)
    for path, what in ((own_dir, "is a directory"), (hdf5, "HDF5 file"),
                       (latin1, "not UTF-8 text"), (nul, "binary data"), (noise, "not UTF-8")):
        msg = _error(load_config, path)
        assert f"config file '{path}'" in msg and what in msg, msg
        assert "expected a TOML config file" in msg, msg


def test_bom_and_plain_text_files(own_dir):
    p = os.path.join(own_dir, "bom.toml")
    with open(p, "wb") as fh:
        fh.write("\ufeff[lattice]\nsize = [4]\n".encode("utf-8"))
    assert load_config(p).lattice.size == (4,)     # a UTF-8 byte-order mark is harmless
    with open(p, "w") as fh:
        fh.write("[lattice]\nsize = [4\n")
    assert "not valid TOML" in _error(load_config, p)


# ----------------------------------------------------------------------------- 2. --set paths
@pytest.mark.parametrize("item,needles", [
    ("layers.9.J_sd=1", ["'layers.9.J_sd' = 1", "3 [[layers]]", "0 = 'PL'", "2 = 'FL'"]),
    ("layers.x.J_sd=1", ["'layers.x.J_sd'", "select one by index 0..2 or by name"]),
    ("layers.-1.J_sd=1", ["'layers.-1.J_sd'", "3 [[layers]]"]),
    ("layers.J_sd=1", ["'layers.J_sd'", "1 = 'SL'"]),
    ("time.dt.foo=1", ["'time.dt.foo' = 1", "'time.dt' = 0.1 is a value, not a table", "'foo'"]),
    ("lattice.size.5=3", ["'lattice.size.5' = 3", "2 entries", "index 0..1"]),
    ("lattice.size.x=3", ["'lattice.size.x'", "index 0..1"]),
    ("bonds.0.hopping=0.5", ["'bonds.0.hopping' = 0.5", "no [[bonds]]", "--set 'bonds=["]),
    ("leads.0.mu=0.1", ["'leads.0.mu'", "no [[leads]]"]),
    ("layers.SL.spin.0=1", ["'layers[1].spin' = {'0': 1}", "expected a list of 3"]),
    ("time..dt=1", ["override 'time..dt=1'", "section.key=value"]),
    ("=1", ["override '=1'", "section.key=value"]),
    ("time.dt", ["override 'time.dt'", "section.key=value"]),
])
def test_bad_override_paths(item, needles):
    _bad(VALVE, [item], needles)


def test_override_an_empty_array():
    _bad(dict(VALVE, bonds=[]), ["bonds.0.hopping=1"], ["'bonds' is empty", "--set 'bonds=["])


def test_layers_and_leads_by_name():
    cfg = config_from_dict(apply_overrides(OPEN, ["layers.FL.J_sd=3", "layers.0.K=0.1",
                                                  "leads.left.mu=0.1", "leads.drain.gamma=0.5"]))
    assert [l.J_sd for l in cfg.layers] == [1.0, 0.0, 3.0] and cfg.layers[0].K == 0.1
    assert cfg.leads[0].mu == 0.1 and cfg.leads[1].gamma == 0.5
    # a lead's name defaults to its side; with a name, the side does not select it
    _bad(OPEN, ["leads.right.mu=1"], ["'leads.right.mu'", "0 = 'left'", "1 = 'drain'"])
    # default layer names 'layer<i>' select too; a number is always an index
    d = copy.deepcopy(VALVE)
    del d["layers"][1]["name"]
    cfg = config_from_dict(apply_overrides(d, ["layers.layer1.hopping=0.5"]))
    assert cfg.layers[1].hopping == 0.5
    d["layers"][1]["name"] = "0"
    cfg = config_from_dict(apply_overrides(d, ["layers.0.J_sd=2"]))
    assert cfg.layers[0].J_sd == 2.0 and cfg.layers[1].J_sd == 0.0
    # a whole array can still be set
    cfg = config_from_dict(apply_overrides(VALVE, ['bonds=[{between = ["PL", "SL"], '
                                                   'hopping = 0.5}]']))
    assert cfg.bonds[0].hopping == 0.5


def test_overrides_do_not_touch_the_input():
    d = copy.deepcopy(VALVE)
    apply_overrides(d, ["layers.PL.J_sd=5", "electrons.n_poles=10"])
    assert d == VALVE


# ----------------------------------------------------------------------------- 3. time
@pytest.mark.parametrize("text,needle", [("-5", ">= 0"), ("nan", "finite"), ("inf", "finite"),
                                         ("-inf", "finite"), ("1e400", "finite"),
                                         ("'long'", "real number")])
def test_t_end(text, needle):
    _bad(VALVE, [f"time.t_end={text}"], ["config key 'time.t_end'", needle])


# ----------------------------------------------------------------------------- 4. poles
def test_n_poles_limit():
    ok = config_from_dict(apply_overrides(OPEN, [f"electrons.n_poles={N_POLES_LIMIT}"]))
    assert ok.electrons.n_poles == N_POLES_LIMIT
    # 2N x 2N eigenvectors of doubles: 32 N^2 bytes = 298 GiB at N = 100000
    _bad(OPEN, ["electrons.n_poles=100000"],
         ["'electrons.n_poles' = 100000", f"<= {N_POLES_LIMIT}", "200000 x 200000", "298 GiB"])
    _bad(OPEN, [f"electrons.n_poles={N_POLES_LIMIT + 1}"], [f"<= {N_POLES_LIMIT}"])


# ----------------------------------------------------------------------------- 5. spin keys
@pytest.mark.parametrize("key,value", [("J_sd", "1.0"), ("K", "0.1"), ("J_ex", "-1"),
                                       ("damping", "0.1"), ("frozen", "true"),
                                       ("easy_axis", "[1, 0, 0]"), ("spin_length", "2")])
def test_spin_keys_need_spins(key, value):
    _bad(VALVE, [f"layers.SL.{key}={value}"],
         [f"'layers[1].{key}'", "layer 'SL' has no classical spins", "'spin' or 'spins'"])
    with pytest.raises(ConfigError, match="no classical spins"):
        DeviceBuilder(size=(6,)).add_layer("M", (0, 6), **{key: tomllib.loads(f"v={value}")["v"]}
                                           ).finalized()


def test_spin_keys_at_defaults_and_roundtrip():
    """Result files of earlier versions list every key of every layer, at its default value on
    a layer without spins: they still load.  The resolved config leaves them out."""
    d = copy.deepcopy(VALVE)
    d["layers"][1].update(J_sd=0.0, J_ex=0.0, K=0.0, easy_axis=[0.0, 0.0, 1.0], spin_length=1.0,
                          frozen=False, damping=0.0)
    cfg = config_from_dict(d)
    text = config_to_toml(cfg)
    sl = tomllib.loads(text)["layers"][1]
    assert sl == {"name": "SL", "columns": [3, 6]}
    assert config_from_dict(tomllib.loads(text)) == cfg
    # hopping is an electron property: fine without spins
    cfg = config_from_dict(apply_overrides(VALVE, ["layers.SL.hopping=0.5"]))
    assert cfg.layers[1].hopping == 0.5


# ----------------------------------------------------------------------------- 6. couplings
@pytest.mark.parametrize("arr,key", [("bonds", "hopping"), ("exchange", "J_ex")])
def test_couplings_need_touching_layers(arr, key):
    _bad(VALVE, [f'{arr}=[{{between = ["PL", "FL"], {key} = 0.5}}]'],
         [f"'{arr}[0].between' = ['PL', 'FL']", "'PL' (columns [0, 3))", "'FL' (columns [6, 10))",
          "must be adjacent"])
    _bad(VALVE, [f'{arr}=[{{between = ["PL", "SL"]}}]'], [f"'{arr}[0].{key}' = None", "required"])
    _bad(VALVE, [f"{arr}={{}}"], [f"'{arr}' = {{}}", f"array of tables [[{arr}]]"])
    _bad(VALVE, [f"{arr}=3"], [f"'{arr}' = 3", f"[[{arr}]]"])


def test_couplings_duplicates_and_exchange_needs_spins():
    _bad(VALVE, ['bonds=[{between = ["PL", "SL"], hopping = 0.5}, '
                 '{between = ["SL", "PL"], hopping = 0.7}]'],
         ["'bonds[1].between' = ['SL', 'PL']", "already set by bonds[0]"])
    _bad(VALVE, ['exchange=[{between = ["PL", "SL"], J_ex = 0.5}]'],
         ["'exchange[0].between'", "layer 'SL' has no classical spins"])
    d = {"lattice": {"size": [4]},
         "layers": [{"name": "A", "columns": [0, 2], "spin": [1, 0, 0]},
                    {"name": "B", "columns": [2, 4], "spin": [0, 0, 1]}],
         "exchange": [{"between": ["B", "A"], "J_ex": -0.5}],
         "bonds": [{"between": ["A", "B"], "hopping": 0.5}]}
    from toolkit.device import device_from_config

    dev = device_from_config(config_from_dict(d))
    assert dev.exchange_bonds.tolist() == [[1, 2]] and dev.J_ex.tolist() == [-0.5]
    assert sorted(dev.hopping.tolist()) == [0.5, 1.0, 1.0]


# ----------------------------------------------------------------------------- 7. warnings
def test_uncovered_columns_warn():
    d = copy.deepcopy(VALVE)
    del d["layers"][1]
    d["lattice"]["size"] = [12, 2]
    w = config_warnings(config_from_dict(d))
    assert w == ["columns [3, 6) of the lattice (Lx = 12) belong to no layer: they are "
                 "non-magnetic sites with the lattice hopping; add a layer or check lattice.size",
                 "columns [10, 12) of the lattice (Lx = 12) belong to no layer: they are "
                 "non-magnetic sites with the lattice hopping; add a layer or check lattice.size"]
    assert config_warnings(config_from_dict(VALVE)) == []


def test_examples_have_no_warnings():
    for name in sorted(os.listdir(EXAMPLES)):
        if name.endswith(".toml"):
            assert config_warnings(load_config(os.path.join(EXAMPLES, name))) == [], name


def test_settings_without_effect_warn():
    w = config_warnings(config_from_dict(apply_overrides(
        VALVE, ["electrons.n_poles=10", 'solver.stiff="imex"', 'solver.ts_type="ssp"',
                'solver.rk_type="5dp"'])))
    assert any("electrons.n_poles = 10 has no effect without [[leads]]" in s for s in w)
    assert any("solver.stiff = 'imex' has no effect" in s for s in w)
    assert any("solver.rk_type = '5dp' has no effect with solver.ts_type = 'ssp'" in s for s in w)
    w = config_warnings(config_from_dict(apply_overrides(OPEN, ["electrons.n_poles=12"])))
    assert any("electrons.n_poles = 12 is deprecated" in s for s in w)
    assert config_warnings(config_from_dict(apply_overrides(
        OPEN, ["electrons.n_poles=12", "leads.0.n_poles=12", "leads.1.n_poles=12"]))) == []
    w = config_warnings(config_from_dict(apply_overrides(
        OPEN, ["electrons.n_electrons=10", "bias.t_on=2", "bias.V=0.5"])))
    assert any("electrons.n_electrons = 10 has no effect" in s for s in w)
    assert any("bias.V = 0.5 has no effect with bias.protocol = 'none'" in s for s in w)
    assert any("bias.t_on = 2.0 has no effect with bias.protocol = 'none'" in s for s in w)


# ----------------------------------------------------------------------------- 8. the rest
@pytest.mark.parametrize("doc,item,needles", [
    (VALVE, "layers=3", ["'layers' = 3", "[[layers]]"]),
    (VALVE, "leads={}", ["'leads' = {}", "[[leads]]"]),
    (VALVE, "leads=[3]", ["'leads[0]' = 3", "table"]),
    (VALVE, 'field.B="x"', ["'field.B' = 'x'", "3 real numbers"]),
    (VALVE, "field=3", ["'field' = 3", "table"]),
    (VALVE, "lattice.size=[]", ["'lattice.size' = []", "[Lx]"]),
    (VALVE, "lattice=3", ["'lattice' = 3", "table"]),
    (VALVE, "solver.options=3", ["'solver.options' = 3", "table of PETSc options"]),
    (VALVE, "solver.options.ts_rtol=[1, 2]", ["'solver.options.ts_rtol' = [1, 2]",
                                              "a string, a number"]),
    (OPEN, "leads.0.temperature=0", ["'leads[0].temperature' = 0", "> 0"]),
    (OPEN, "leads.drain.temperature=nan", ["'leads[1].temperature' = nan", "finite"]),
    (OPEN, "bias.t_off=5", ["'bias.t_off' = 5", "no effect with bias.protocol = 'none'"]),
    (VALVE, "electrons.temperature=0.1", ["'electrons.temperature' = 0.1", "initial = 'fermi'"]),
    (OPEN, "output.planes=[2, 2]", ["'output.planes[1]' = 2", "once"]),
    (VALVE, "name=3", ["'name' = 3", "string"]),
])
def test_other_bad_values(doc, item, needles):
    _bad(doc, [item], needles)


def test_good_neighbours_of_the_bad_values():
    cfg = config_from_dict(apply_overrides(OPEN, [
        'bias.protocol="symmetric"', "bias.V=1", "bias.t_off=5", 'solver.stiff="none"',
        'solver.ts_type="ssp"', "output.planes=[]", "solver.options.ts_rtol=1e-8"]))
    assert cfg.bias.t_off == 5.0 and cfg.output.planes == () and cfg.solver.ts_type == "ssp"
    cfg = config_from_dict(apply_overrides(VALVE, ['electrons.initial="fermi"',
                                                   "electrons.temperature=0.1"]))
    assert cfg.electrons.temperature == 0.1


def test_builder_bad_input():
    import numpy as np

    with pytest.raises(ConfigError, match=r"'layers\[0\].columns' = 3 .*\[start, stop\)"):
        DeviceBuilder(size=(4,)).add_layer("X", 3).finalized()
    for section in ("layers", "units"):
        with pytest.raises(ConfigError, match=f"config key '{section}' = .*add_layer"):
            DeviceBuilder(size=(4,)).set(section, J_sd=1.0)
    # NumPy values are the numbers and lists of a TOML document
    dev = DeviceBuilder(size=np.array([4, 2])).add_layer(
        "M", np.array([1, 3]), J_sd=np.float32(0.5), spin=np.array([0, 0, 1])).finalized()
    assert dev.n_sites == 8 and dev.n_spins == 4 and dev.J_sd.tolist() == [0.5] * 4


def test_cli_reports_one_line(own_dir, capsys):
    from toolkit.cli import main as cli_main

    from petsc4py import PETSc

    cfg = os.path.join(EXAMPLES, "valve_1d.toml")
    for argv, needle in ((["run", own_dir], "is a directory"),
                         (["run", cfg, "--set", "layers.9.J_sd=1"], "3 [[layers]]"),
                         (["run", cfg, "--set", "layers.SL.K=0.1"], "no classical spins")):
        assert cli_main(argv + ["-q", "-o", os.path.join(own_dir, "x.h5")]) == 2
        err = capsys.readouterr().err
        if PETSc.COMM_WORLD.getRank() == 0:
            assert err.count("\n") == 1 and err.startswith("qcspin: error: "), err
            assert needle in err, err
    assert not os.path.exists(os.path.join(own_dir, "x.h5"))
