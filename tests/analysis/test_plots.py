"""``qcspin plot`` (analysis.plots.plot_file): every kind of qcspin file gives a PNG, every bad
file a one-line PlotError.  The files are made collectively once (small systems, short runs);
plotting is serial and done on rank 0 only, so the tests are rank-agnostic."""
from __future__ import annotations

import json
import os
import shutil
import tempfile

import h5py
import numpy as np
import pytest
from helpers import EXAMPLES, valve_1d

import toolkit  # noqa: F401  (complex PETSc)
from analysis import plots
from analysis.plots import PlotError, file_kind, plot_file
from toolkit import DeviceBuilder
from toolkit.parallel import barrier, bcast

from petsc4py import PETSc

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _open_valve():
    """Open 1D valve (8 sites, leads on both faces, damping for a quick steady state)."""
    b = DeviceBuilder(size=(8,))
    b.add_layer("PL", (0, 2), J_sd=1.0, J_ex=-1.0, K=0.4, easy_axis=(1, 0, 0), spin=(1, 0, 0),
                damping=0.5)
    b.add_layer("SL", (2, 5))
    b.add_layer("FL", (5, 8), J_sd=1.0, J_ex=-1.0, K=0.2, easy_axis=(0, 0, 1), spin=(0, 0, 1),
                damping=0.5)
    b._doc["leads"] = [{"side": "left", "gamma": 1.0, "temperature": 0.1},
                       {"side": "right", "gamma": 1.0, "temperature": 0.1}]
    b.set("electrons", n_poles=10)
    b.set("time", dt=0.2, t_end=1.0, output_every=5)
    return b.to_config()


@pytest.fixture(scope="module")
def files():
    """Every kind of qcspin file, made once for the module.  Collective."""
    from analysis.jeff import jeff_sweep, write_sweep
    from analysis.quench import analyze_sweep
    from integrators import Simulation
    from integrators.campaign import bias_sweep
    from toolkit.cli import main

    comm = PETSc.COMM_WORLD
    rank0 = comm.getRank() == 0
    d = bcast(tempfile.mkdtemp(prefix="qcspin-plots-") if rank0 else None, comm)
    out = {"dir": d}
    # an isolated valve (no leads): closed-system run
    out["run"] = os.path.join(d, "run.h5")
    sim = Simulation(valve_1d(N=8, n_s=2, t_end=2.0, output_every=4).finalized(), comm)
    try:
        sim.run(out["run"], progress=False, handle_signals=False)
    finally:
        sim.destroy()
    # an open valve: a bias sweep (stage 1, V_*.h5, sweep.h5) and its quench table
    sw = os.path.join(d, "sweep")
    res = bias_sweep(_open_valve(), [0.5, 1.5], outdir=sw, protocol="asymmetric",
                     stage1_time=20.0, t_end=20.0, comm=comm)
    out.update(open_run=res.files[1], sweep=os.path.join(sw, "sweep.h5"), sweep_dir=sw,
               quench=os.path.join(sw, "analysis.h5"))
    if rank0:
        analyze_sweep(sw, t_min=5.0)
    barrier(comm)
    cfg1 = os.path.join(EXAMPLES, "valve_1d.toml")
    out["transport"] = os.path.join(d, "transport.h5")
    assert main(["transport", cfg1, "--energies=-3:3:0.05", "--mu-l", "0.5", "--mu-r", "-0.3",
                 "-o", out["transport"]]) == 0
    out["spectrum"] = os.path.join(d, "spectrum.h5")
    assert main(["spectrum", cfg1, "-o", out["spectrum"]]) == 0
    out["spectrum_sweep"] = os.path.join(d, "spectrum_sweep.h5")
    assert main(["spectrum", cfg1, "--jsd-sweep", "0:4:0.5", "--config", "perpendicular",
                 "-o", out["spectrum_sweep"]]) == 0
    out["spectrum_nev"] = os.path.join(d, "spectrum_nev.h5")
    assert main(["spectrum", cfg1, "--nev", "6", "-o", out["spectrum_nev"]]) == 0
    # J_eff tables: short fixed-length runs (some fits invalid, which the plot must show)
    kw = dict(N_S=1, t_end=30.0, comm=comm)
    out["jeff_nnm"] = os.path.join(d, "jeff_nnm.h5")
    s_nnm = jeff_sweep("N_NM", [2, 3, 4, 5, 6], J_sd=0.5, path=out["jeff_nnm"], **kw)
    out["jeff_jsd"] = os.path.join(d, "jeff_jsd.h5")
    s_jsd = jeff_sweep("J_sd", [0.5, 1.0, 1.5], N_NM=2, path=out["jeff_jsd"], **kw)
    out["jeff_groups"] = os.path.join(d, "jeff_groups.h5")  # as scripts/fig05 writes them
    if rank0:
        write_sweep(s_nnm, out["jeff_groups"], group="J_sd=0.5")
        write_sweep(s_nnm, out["jeff_groups"], group="again")
    del s_jsd
    barrier(comm)
    yield out
    barrier(comm)
    if rank0:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def rank0():
    return PETSc.COMM_WORLD.getRank() == 0


def _capture(mp, figs: list) -> None:
    save = plots.save_figure

    def keep(fig, png):
        figs.append(fig)
        return save(fig, png)

    mp.setattr(plots, "save_figure", keep)


@pytest.fixture
def captured(monkeypatch):
    """The figures the plot functions save (they are still written)."""
    figs = []
    _capture(monkeypatch, figs)
    return figs


@pytest.fixture(scope="module")
def plotted(files):
    """{key: (png, figure)} of every file of ``files`` plotted once by plot_file (rank 0;
    empty elsewhere)."""
    out = {}
    if PETSc.COMM_WORLD.getRank() == 0:
        with pytest.MonkeyPatch.context() as mp:
            figs = []
            _capture(mp, figs)
            for key, _ in KINDS:
                png = _scratch(files, f"{key}.png")
                out[key] = (plot_file(files[key], png), figs[-1])
    return out


def _is_png(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(8) == PNG_MAGIC


def _scratch(files, name: str) -> str:
    return os.path.join(files["dir"], name)


def _axes(fig):
    return [a for a in fig.axes if a.axison and a.get_label() != "<colorbar>"]


# ----------------------------------------------------------------------------- bad files
def test_missing_file(files, rank0):
    if rank0:
        with pytest.raises(PlotError, match="does not exist"):
            plot_file(_scratch(files, "nothing_here.h5"))


def test_directory(files, rank0):
    if rank0:
        with pytest.raises(PlotError, match="is a directory"):
            plot_file(files["dir"])
        # a sweep directory: the message names the files that can be plotted
        with pytest.raises(PlotError, match="analysis.h5"):
            plot_file(files["sweep_dir"])


@pytest.mark.parametrize("content, name, message", [
    (b"name = 'not a result'\n", "config.toml", "not an HDF5 file: a text file"),
    (b"hello\n", "notes.h5", "not an HDF5 file.*damaged"),
    (PNG_MAGIC + b"\0" * 64, "image.h5", "not an HDF5 file: a PNG image"),
    (b"", "empty.h5", "empty"),
])
def test_not_hdf5(files, rank0, content, name, message):
    if rank0:
        p = _scratch(files, name)
        with open(p, "wb") as fh:
            fh.write(content)
        with pytest.raises(PlotError, match=message):
            plot_file(p)
        assert not os.path.exists(os.path.splitext(p)[0] + ".png")


def test_truncated(files, rank0):
    """The first 2 KiB of a real result (an interrupted copy): HDF5 refuses to open it."""
    if rank0:
        p = _scratch(files, "truncated.h5")
        with open(files["run"], "rb") as src, open(p, "wb") as dst:
            dst.write(src.read(2048))
        with pytest.raises(PlotError, match="damaged.*truncated"):
            plot_file(p)


@pytest.mark.parametrize("victim", ["time", "energy", "device"])
def test_corrupted(files, rank0, victim):
    """Bytes flipped in the object header of a dataset/group: the file opens, reading fails."""
    if rank0:
        p = _scratch(files, f"corrupt_{victim}.h5")
        shutil.copy(files["run"], p)
        with h5py.File(p, "r") as f:
            addr = h5py.h5o.get_info(f[victim].id).addr
        with open(p, "r+b") as fh:
            fh.seek(addr)
            block = fh.read(64)
            fh.seek(addr)
            fh.write(bytes(b ^ 0xFF for b in block))
        with pytest.raises(PlotError, match="damaged") as exc:
            plot_file(p)
        assert "\n" not in str(exc.value)


def test_foreign_hdf5(files, rank0):
    if rank0:
        p = _scratch(files, "foreign.h5")
        with h5py.File(p, "w") as f:
            f["x"] = np.arange(3)
            f.attrs["creator"] = "someone else"
        with pytest.raises(PlotError, match="not a qcspin file") as exc:
            plot_file(p)
        for what in ("qcspin run", "qcspin transport", "qcspin spectrum", "qcspin jeff",
                     "sweep.h5", "analysis.h5"):
            assert what in str(exc.value)


def test_unknown_qcspin_kind(files, rank0):
    if rank0:
        p = _scratch(files, "other_kind.h5")
        with h5py.File(p, "w") as f:
            f.attrs["kind"] = "hologram"
            f.attrs["qcspin_format"] = 9
        with pytest.raises(PlotError, match="kind 'hologram'.*does not draw"):
            plot_file(p)


def test_run_without_records(files, rank0):
    """A run killed before its first record: attributes and device, but empty (or no) series."""
    if rank0:
        p = _scratch(files, "no_records.h5")
        shutil.copy(files["run"], p)
        with h5py.File(p, "r+") as f:
            def empty(name, obj):
                if isinstance(obj, h5py.Dataset) and obj.maxshape and obj.maxshape[0] is None \
                        and not name.startswith(("device", "checkpoint", "history")):
                    obj.resize(0, axis=0)
            f.visititems(empty)
        with pytest.raises(PlotError, match="without records"):
            plot_file(p)
        q = _scratch(files, "no_series.h5")
        with h5py.File(files["run"], "r") as src, h5py.File(q, "w") as f:
            for k, v in src.attrs.items():
                f.attrs[k] = v
            src.copy("device", f)
        with pytest.raises(PlotError, match="without records"):
            plot_file(q)


def test_png_never_replaces_data(files, rank0):
    if rank0:
        with pytest.raises(PlotError, match="would replace the file being plotted"):
            plot_file(files["run"], files["run"])
        with pytest.raises(PlotError, match="HDF5 file"):  # another result is not replaced
            plot_file(files["run"], files["transport"])
        with pytest.raises(PlotError, match="does not exist"):
            plot_file(files["run"], _scratch(files, "no/such/dir/run.png"))


# ----------------------------------------------------------------------------- every kind
KINDS = [("run", "run"), ("open_run", "run"), ("transport", "transport"),
         ("spectrum", "spectrum"), ("spectrum_sweep", "spectrum"), ("spectrum_nev", "spectrum"),
         ("jeff_nnm", "jeff"), ("jeff_jsd", "jeff"), ("jeff_groups", "jeff"),
         ("sweep", "sweep"), ("quench", "quench")]


@pytest.mark.parametrize("key, kind", KINDS)
def test_every_kind_gives_a_png(files, plotted, rank0, key, kind):
    if rank0:
        assert file_kind(files[key]) == kind
        png, fig = plotted[key]
        assert png == _scratch(files, f"{key}.png")
        assert _is_png(png) and os.path.getsize(png) > 10_000
        for ax in _axes(fig):  # every panel says what it shows
            assert ax.get_ylabel(), (key, ax.get_title())
            assert ax.get_xlabel() or ax.get_shared_x_axes().get_siblings(ax) != [ax]


def test_default_png_name(files, rank0):
    if rank0:
        p = _scratch(files, "copy.h5")
        shutil.copy(files["spectrum"], p)
        assert plot_file(p) == _scratch(files, "copy.png") and _is_png(_scratch(files, "copy.png"))


# ----------------------------------------------------------------------------- run plot
def _titles(fig):
    return [a.get_title() for a in _axes(fig)]


def test_run_plot_panels(files, plotted, rank0):
    """Isolated valve: no current panel (its plane currents are round-off); the energy panel
    is the relative drift on a log scale; M/N_S, energy and spin panels carry units."""
    if not rank0:
        return
    with h5py.File(files["run"], "r") as f:
        planes = f["plane_current"][...] if "plane_current" in f else np.zeros((1, 0))
        E = f["energy/total"][...]
        tu = f.attrs["time_unit"]
    assert np.abs(planes).max(initial=0.0) <= plots.CURRENT_ROUNDOFF  # what "no current" means
    fig = plotted["run"][1]
    titles = _titles(fig)
    assert not any("current" in t for t in titles), titles
    assert sum("M/N_S" in t for t in titles) == 2  # PL and FL; no panel for the spacer
    drift = next(a for a in _axes(fig) if "energy drift" in a.get_title())
    assert drift.get_yscale() == "log" and "|E(0)|" in drift.get_ylabel()
    # the plotted drift is |E(t) - E(0)| / |E(0)|, t = 0 (exactly 0) left out of the log plot
    y = drift.lines[0].get_ydata()
    ref = np.abs(E - E[0]) / abs(E[0])
    assert np.isnan(y[0]) and np.allclose(y[1:][ref[1:] > 0], ref[1:][ref[1:] > 0], rtol=1e-12)
    for ax in _axes(fig):
        assert ax.get_xlabel() == f"t [{tu}]"
        assert "[" in ax.get_ylabel() or "|E(0)|" in ax.get_ylabel(), ax.get_ylabel()


def test_open_run_shows_currents(files, plotted, rank0):
    if rank0:
        fig = plotted["open_run"][1]
        cur = [a for a in _axes(fig) if "current" in a.get_title()]
        assert len(cur) == 1 and len(cur[0].lines) >= 2
        assert "hopping/hbar" in cur[0].get_ylabel()
        assert any("not conserved" in t for t in _titles(fig))


def test_run_energy_drift_exact_zero(files, rank0, captured):
    """E(t) = E(0) exactly (nothing to show on a log scale) and E(0) = 0 (absolute drift)."""
    if not rank0:
        return
    p = _scratch(files, "flat.h5")
    shutil.copy(files["run"], p)
    with h5py.File(p, "r+") as f:
        f["energy/total"][...] = -3.0
    plot_file(p, _scratch(files, "flat.png"))
    drift = next(a for a in _axes(captured[-1]) if "energy drift" in a.get_title())
    assert "none" in drift.get_title() and any("exactly" in t.get_text() for t in drift.texts)
    with h5py.File(p, "r+") as f:
        e = f["energy/total"]
        e[...] = np.linspace(0.0, 1e-9, e.shape[0])
    plot_file(p, _scratch(files, "zero.png"))
    drift = next(a for a in _axes(captured[-1]) if "energy drift" in a.get_title())
    assert drift.get_ylabel().startswith("|E(t) - E(0)| [")  # absolute, with the unit


# ----------------------------------------------------------------------------- other plots
def test_spectrum_marks_fermi_level(files, plotted, rank0):
    """Half filling of the bipartite chain: the spectrum is symmetric about mu_bar = 0, so the
    mid-gap Fermi level is 0 (round-off, 1e-12); the incomplete spectrum marks mu_bar."""
    from analysis.levels import fermi_level
    from analysis.spectrum import Spectrum

    if not rank0:
        return
    with h5py.File(files["spectrum"], "r") as f:
        w, n_e = f["eigenvalues"][...], int(f.attrs["n_electrons"])
    ax = _axes(plotted["spectrum"][1])[0]
    ef = [l for l in ax.lines if "E_F" in l.get_label()]
    assert len(ef) == 1 and abs(ef[0].get_ydata()[0] - 0.5 * (w[n_e - 1] + w[n_e])) < 1e-12
    assert abs(ef[0].get_ydata()[0]) < 1e-12
    ax = _axes(plotted["spectrum_sweep"][1])[0]
    assert len([l for l in ax.lines if "E_F" in l.get_label()]) == 1
    ax = _axes(plotted["spectrum_nev"][1])[0]
    assert [l for l in ax.lines if "half filling" in l.get_label()]
    # no Fermi level without the information: incomplete spectrum away from half filling
    part = Spectrum(eigenvalues=np.arange(4.0), polarization=np.zeros((4, 3)),
                    sigma_m=np.zeros(4), localization=np.zeros((1, 4)), eigenvectors=None,
                    layer_names=("a",), n_sites=10, method="x", complete=False, target=0.0)
    assert fermi_level(part, 7, 0.0)[0] is None


def test_transport_polarization_panel(files, plotted, rank0):
    """P is labelled as the spin-z transmission of Eq. 17; P/Theta stays in [-1, 1] (|P| <=
    Theta for spin-independent wide-band leads); mu_l and mu_r are marked."""
    if not rank0:
        return
    axes = _axes(plotted["transport"][1])
    titles = [a.get_title(loc="left") for a in axes]
    assert any("Eq. 17" in t and "not normalised" in t for t in titles)
    ratio = axes[-1]
    assert ratio.get_ylabel() == r"$P/\Theta$"
    y = ratio.lines[0].get_ydata()
    assert np.nanmax(np.abs(y)) <= 1 + 1e-9 and np.isfinite(y).any()
    mus = sorted({float(l.get_xdata()[0]) for l in axes[0].lines if "mu" in l.get_label()})
    assert mus == [-0.3, 0.5]


def test_jeff_plot_does_not_join_invalid_points(files, rank0, captured):
    """A point flagged invalid and one without a value (NaN) break the line; the RKKY
    reference is drawn at even N_NM only (odd spacers: zero mode, first order in J_sd)."""
    if not rank0:
        return
    p = _scratch(files, "jeff_marked.h5")
    shutil.copy(files["jeff_nnm"], p)
    with h5py.File(p, "r+") as f:
        f["valid"][...] = True
        f["valid"][1] = False
        J = f["J_eff"][...]
        J[3] = np.nan
        f["J_eff"][...] = J
        x = f["value"][...]
    plot_file(p, _scratch(files, "jeff_marked.png"))
    ax = _axes(captured[-1])[0]
    line = ax.lines[0].get_ydata()
    assert np.isnan(line[1]) and np.isnan(line[3]) and np.isfinite(line[[0, 2, 4]]).all()
    labels = [l.get_label() for l in ax.lines]
    assert any("invalid fit (1)" in s for s in labels)
    assert any("without a value" in s for s in labels)
    rkky = [l for l in ax.lines if l.get_label().startswith("RKKY")]
    assert len(rkky) == 1 and np.all(rkky[0].get_xdata() % 2 == 0)
    assert set(rkky[0].get_xdata()) <= set(x)


def test_jeff_groups_one_figure(files, plotted, rank0):
    if rank0:
        labels = [l.get_label() for l in _axes(plotted["jeff_groups"][1])[0].lines]
        assert any(s.startswith("J_sd=0.5:") for s in labels)
        assert any(s.startswith("again:") for s in labels)


def test_sweep_and_quench_tables_named(files, plotted, rank0):
    """The summary and quench tables are drawn with the layer and lead names of the runs."""
    if not rank0:
        return
    labels = [l.get_label() for a in _axes(plotted["sweep"][1]) for l in a.lines]
    assert any(s.startswith("left") for s in labels) and any(s.startswith("FL") for s in labels)
    with h5py.File(files["quench"], "r") as f:
        layers = json.loads(f.attrs["layers"])
    assert any("FL" in t for t in _titles(plotted["quench"][1])) and "FL" in layers


@pytest.mark.skip_in_parallel
def test_file_being_written(files):
    """A file held open for writing by another process (HDF5 lock, e.g. a running qcspin run)
    is not reported as damaged."""
    import subprocess
    import sys

    p = _scratch(files, "busy.h5")
    shutil.copy(files["run"], p)
    code = ("import sys; from analysis.plots import plot_file, PlotError\n"
            "try:\n    plot_file(sys.argv[1])\nexcept PlotError as e:\n    print(e)\n")
    from helpers import ROOT as root
    env = {k: v for k, v in os.environ.items() if k != "HDF5_USE_FILE_LOCKING"}
    with h5py.File(p, "a"):
        out = subprocess.run([sys.executable, "-c", code, p], capture_output=True, text=True,
                             cwd=root, env=env, timeout=60)
    assert "open for writing by another process" in out.stdout, out.stdout + out.stderr


@pytest.mark.skip_in_parallel
def test_cli_plot_exit_status(files, capsys):
    """``qcspin plot``: a bad file gives one 'qcspin: error:' line and exit status 2, no
    traceback; a good one writes the PNG."""
    from toolkit.cli import main

    p = _scratch(files, "cli_notes.txt")
    with open(p, "w") as fh:
        fh.write("not a result\n")
    capsys.readouterr()
    assert main(["plot", p]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qcspin: error:") and "not an HDF5" in err[0]
    png = _scratch(files, "cli_spectrum.png")
    assert main(["plot", files["spectrum"], "-o", png]) == 0 and _is_png(png)
