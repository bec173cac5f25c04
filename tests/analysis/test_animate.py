"""``qcspin animate`` (analysis/animate.py, analysis/animate_cli.py): the series a frame shows
against the run file's own datasets and the bias protocol of its config, the arrows' geometry,
blitted movie frames against a full drawing of the same record, the frame count of the MP4
(ffprobe) and GIF (Pillow) files, --frame PNGs, refusal to overwrite and one-line errors.

The runs are made once per module with ``qcspin run`` (collective): an open 8-site valve with
wide-band leads and an asymmetric bias step, and the closed valve of examples/valve_1d.toml.
Drawing is serial (rank 0 in the command); all tests but one are serial-only."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile

import h5py
import numpy as np
import pytest
from helpers import EXAMPLES

import toolkit  # noqa: F401  (complex PETSc)
from analysis import animate as anim
from analysis.animate import (
    ARROW,
    HEAD_LENGTH,
    HEAD_WIDTH,
    AnimateError,
    animate,
    draw_frame,
    frame_records,
    read_run,
    write_frame,
)
from toolkit.io import FileExistsErrorQC, write_table
from toolkit.parallel import barrier, bcast
from toolkit.results import load_result

from petsc4py import PETSc

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BIAS_V, T_ON, MU0 = 0.5, 0.5, 0.2

OPEN_TOML = f"""
name = "open test valve"
[lattice]
size = [8]
[[layers]]
name = "PL"
columns = [0, 2]
J_sd = 1.0
J_ex = -1.0
spin = [1, 0, 0]
[[layers]]
name = "SL"
columns = [2, 5]
[[layers]]
name = "FL"
columns = [5, 8]
J_sd = 1.0
J_ex = -1.0
spin = [0, 0.3, 1]
[[leads]]
side = "left"
gamma = 1.0
temperature = 0.1
mu = {MU0}
n_poles = 10
[[leads]]
side = "right"
gamma = 1.0
temperature = 0.1
mu = {MU0}
n_poles = 10
[bias]
protocol = "asymmetric"
V = {BIAS_V}
t_on = {T_ON}
[time]
dt = 0.05
t_end = 3.0
output_every = 2
"""

NO_SPINS_TOML = """
name = "chain without moments"
[lattice]
size = [6]
[[layers]]
name = "N"
columns = [0, 6]
[time]
dt = 0.1
t_end = 0.5
output_every = 5
"""


@pytest.fixture(scope="module")
def runs():
    """The run files of the module (and a few files that are not runs).  Collective."""
    from toolkit.cli import main

    comm = PETSc.COMM_WORLD
    rank0 = comm.getRank() == 0
    d = bcast(tempfile.mkdtemp(prefix="qcspin-animate-") if rank0 else None, comm)
    out = {"dir": d, "open": os.path.join(d, "open.h5"), "closed": os.path.join(d, "closed.h5"),
           "nospin": os.path.join(d, "nospin.h5")}
    if rank0:
        for name, text in (("open.toml", OPEN_TOML), ("nospin.toml", NO_SPINS_TOML)):
            with open(os.path.join(d, name), "w") as fh:
                fh.write(text)
    barrier(comm)
    # 31 records (t = 0 .. 3 step 0.1), bias step at t = 0.5
    assert main(["-q", "run", os.path.join(d, "open.toml"), "-o", out["open"]]) == 0
    # 21 records (t = 0 .. 2 step 0.1), no leads
    assert main(["-q", "run", os.path.join(EXAMPLES, "valve_1d.toml"), "-o", out["closed"],
                 "--t-end", "2", "--set", "time.output_every=2"]) == 0
    assert main(["-q", "run", os.path.join(d, "nospin.toml"), "-o", out["nospin"]]) == 0
    if rank0:
        out_text = os.path.join(d, "notes.h5")
        with open(out_text, "w") as fh:
            fh.write("not a result\n")
        with h5py.File(os.path.join(d, "foreign.h5"), "w") as f:
            f["x"] = np.arange(3)
        write_table(os.path.join(d, "sweep.h5"), {"V": np.arange(3.0)}, {}, kind="sweep")
    barrier(comm)
    yield out
    barrier(comm)
    if rank0:
        shutil.rmtree(d, ignore_errors=True)


def _path(runs, name: str) -> str:
    return os.path.join(runs["dir"], name)


def _mp4_frames(path: str) -> int:
    """Frames of an MP4 as ffprobe decodes and counts them."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream=nb_read_frames,width,height", "-of",
                          "csv=p=0", path], capture_output=True, text=True, check=True,
                         timeout=60)
    w, h, n = (int(x) for x in out.stdout.strip().split(","))
    assert (w, h) == (1280, 720)
    return n


def _gif_frames(path: str) -> tuple[int, tuple[int, int]]:
    from PIL import Image

    with Image.open(path) as im:
        return im.n_frames, im.size


def _expected_frames(path: str, every: int, t_min=-np.inf, t_max=np.inf) -> int:
    """ceil(records in [t_min, t_max] / every), from the file's time dataset."""
    t = load_result(path)["time"]
    return math.ceil(int(np.count_nonzero((t >= t_min - 1e-9) & (t <= t_max + 1e-9))) / every)


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None or shutil.which("ffprobe")
                                  is None, reason="ffmpeg/ffprobe not installed")


# ----------------------------------------------------------------------------- the series
@pytest.mark.skip_in_parallel
def test_series_match_the_run_file(runs):
    """V_L(t) is the asymmetric bias step of the config (0 before t_on, V after: mu_left - mu
    to one rounding), the analyzer's mean M_z is the mean of its spins' z components (to
    round-off of the layer sum), the spin currents are the right lead's and the one through
    the plane in front of FL (x = 4|5), all taken from the file's datasets."""
    s = read_run(runs["open"])
    r = load_result(runs["open"])
    t = r["time"]
    assert s.n == len(t) == 31 and s.time_unit == "hbar/hopping".replace("hbar", "ħ")
    titles = [tr.title for tr in s.traces]
    assert len(titles) == 4, titles
    v, mz, lead, plane = (tr.y for tr in s.traces)
    # (mu0 + V) - mu0: exact up to one rounding of the sum (1e-15)
    np.testing.assert_allclose(v, np.where(t >= T_ON - 1e-9, BIAS_V, 0.0), rtol=0, atol=1e-15)
    fl = r.device.spin_layer == r.device.layer("FL")
    np.testing.assert_allclose(mz, r["spins"][:, fl, 2].mean(axis=1), rtol=0, atol=1e-13)
    right = [lc.side for lc in r.config.leads].index("right")
    np.testing.assert_array_equal(lead, r["lead_spin_current"][:, right])
    planes = list(r.device.planes)
    assert "right lead" in titles[2] and "plane 4|5" in titles[3] and 4 in planes
    np.testing.assert_array_equal(plane, r["plane_spin_current"][:, planes.index(4)])
    assert s.magnetic == (r.device.layer("PL"), r.device.layer("FL"))
    # the arrow scale: the longest moment at t = 0
    np.testing.assert_allclose(s.s_max, np.linalg.norm(r["spins", 0], axis=1).max(), rtol=1e-15)


@pytest.mark.skip_in_parallel
def test_closed_run_has_no_lead_panels(runs):
    """A run without leads: no V_L and no lead spin current, the analyzer and the plane spin
    current into FL (plane 14|15 of the 20-site chain) only; its frame and GIF are written."""
    s = read_run(runs["closed"])
    titles = [tr.title for tr in s.traces]
    assert len(titles) == 2 and "mean $M_z$" in titles[0] and "plane 14|15" in titles[1]
    assert s.lead_sides == ()
    png = _path(runs, "closed_t1.png")
    info = write_frame(runs["closed"], png, 1.0)
    with open(png, "rb") as fh:
        assert fh.read(8) == PNG_MAGIC
    assert int(info.records[0]) == 10
    gif = _path(runs, "closed.gif")
    info = animate(runs["closed"], gif, every=4)
    assert _gif_frames(gif) == (info.n_frames, (768, 432))
    assert info.n_frames == _expected_frames(runs["closed"], 4) == 6


def test_arrow_segments_geometry():
    """Each arrow: the shaft from P to P + M, two barbs HEAD_LENGTH |M| back from the tip and
    HEAD_WIDTH |M| to either side, perpendicular to M and to the view direction (so the head
    is seen face-on); an arrow along the view still gets a finite head; shadows' barbs lie
    in the floor (perpendicular to z).  Exact geometry up to round-off (1e-12)."""
    el, az = np.radians(anim.ELEV), np.radians(anim.AZIM)
    view = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    rng = np.random.default_rng(3)
    P = rng.normal(size=(6, 3))
    M = rng.normal(size=(6, 3))
    M[-1] = 0.7 * view                     # along the view direction
    for up, normal in ((False, view), (True, np.array([0.0, 0.0, 1.0]))):
        Mj = M * [1, 1, 0] if up else M
        segs = anim._arrow_segments(P, Mj, up=up)
        assert len(segs) == 2 * len(P)
        for j in range(len(P)):
            shaft, head = segs[2 * j], segs[2 * j + 1]
            np.testing.assert_allclose(shaft, [P[j], P[j] + Mj[j]], atol=1e-12)
            L = np.linalg.norm(Mj[j])
            d = Mj[j] / L
            np.testing.assert_allclose(head[1], P[j] + Mj[j], atol=1e-12)
            mid = 0.5 * (head[0] + head[2])
            np.testing.assert_allclose(mid, P[j] + Mj[j] - HEAD_LENGTH * L * d, atol=1e-12)
            wing = 0.5 * (head[0] - head[2])
            assert abs(np.linalg.norm(wing) - HEAD_WIDTH * L) < 1e-12
            assert abs(wing @ d) < 1e-12
            if not (j == len(P) - 1 and not up):   # the arrow along the view: any normal
                assert abs(wing @ normal) < 1e-12


@pytest.mark.skip_in_parallel
def test_blitted_frame_equals_full_drawing(runs):
    """The movie frames are blitted (static parts drawn once): a frame reached after another
    one equals the full drawing of the same record except where overlapping lines are drawn
    in another order (the cursor over grid lines): < 0.5 % of the pixels (measured 0.04 %).
    The arrows drawn are the moments scaled by ARROW/max|M|."""
    s = read_run(runs["open"])
    fig = anim._new_figure()
    frame = anim._frame_for(s, fig, None, None)
    frame.blit(3)
    frame.blit(20)
    a = np.asarray(fig.canvas.buffer_rgba()).copy()
    full = draw_frame(s, 20)
    full.canvas.draw()
    b = np.asarray(full.canvas.buffer_rgba())
    assert a.shape == b.shape == (720, 1280, 4)
    assert np.mean(np.any(a != b, axis=-1)) < 5e-3
    spins = load_result(runs["open"])["spins", 20]
    for k, _, arrows in frame._arrows:
        shafts = np.array(arrows._segments3d[0::2])
        on = s.spin_layer == k
        np.testing.assert_allclose(shafts[:, 0], s.pos[on], atol=1e-12)
        np.testing.assert_allclose(shafts[:, 1] - shafts[:, 0], spins[on] * ARROW / s.s_max,
                                   atol=1e-12)
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(full)


@pytest.mark.skip_in_parallel
def test_frame_records():
    """every: the smallest step giving at most max_frames frames; t range inclusive."""
    t = np.arange(11) * 0.5
    s = anim.RunSeries(path="x.h5", title="", time_unit="fs", t=t, n=11, pos=np.zeros((1, 3)),
                       spin_layer=np.zeros(1, int), layer_names=("A",), magnetic=(0,),
                       site_pos=np.zeros((1, 3)), site_layer=np.zeros(1, int), lead_sides=(),
                       s_max=1.0)
    np.testing.assert_array_equal(frame_records(s, max_frames=4), [0, 3, 6, 9])
    np.testing.assert_array_equal(frame_records(s, max_frames=11), np.arange(11))
    np.testing.assert_array_equal(frame_records(s, every=2, t_min=1.0, t_max=3.0), [2, 4, 6])
    assert len(frame_records(s)) == 11
    with pytest.raises(AnimateError, match=r"t >= 6 fs: its records span t = 0 \.\. 5 fs"):
        frame_records(s, t_min=6.0)
    assert anim.nearest_record(s, 1.2) == 2
    with pytest.raises(AnimateError, match="t = 9 is not allowed"):
        anim.nearest_record(s, 9.0)


# ----------------------------------------------------------------------------- the files
@needs_ffmpeg
def test_cli_mp4_frame_count(runs):
    """``qcspin animate`` (any number of ranks; rank 0 draws): the MP4 has one frame per
    selected record, counted by ffprobe: every 2nd record of t in [0.5, 2.5] -> 11 frames."""
    from toolkit.cli import main

    comm = PETSc.COMM_WORLD
    out = _path(runs, "open_part.mp4")
    assert main(["-q", "animate", runs["open"], "-o", out, "--every", "2", "--t-min", "0.5",
                 "--t-max", "2.5", "--fps", "10"]) == 0
    barrier(comm)
    if comm.getRank() == 0:
        assert os.path.getsize(out) > 0
        expected = _expected_frames(runs["open"], 2, 0.5, 2.5)
        assert expected == 11 and _mp4_frames(out) == expected
    barrier(comm)


@needs_ffmpeg
@pytest.mark.skip_in_parallel
def test_default_output_every_record(runs, capsys):
    """Without -o: FILE name + .mp4, every record (31 < 300 frames), 20 fps by default."""
    from toolkit.cli import main

    src = _path(runs, "copy.h5")
    shutil.copy(runs["open"], src)
    assert main(["animate", src]) == 0
    out = _path(runs, "copy.mp4")
    assert _mp4_frames(out) == 31
    text = capsys.readouterr().out
    assert "31 frames" in text and "20 fps" in text and out in text
    fps = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=r_frame_rate", "-of", "csv=p=0", out], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert fps == "20/1"


@pytest.mark.skip_in_parallel
def test_gif_without_ffmpeg(runs, monkeypatch, capsys):
    """Without ffmpeg the default output is a GIF (said on stderr) with the expected frame
    count (Pillow); an explicit .mp4 is refused with a message naming it."""
    from toolkit.cli import main

    monkeypatch.setattr(anim, "ffmpeg_available", lambda: False)
    src = _path(runs, "nofmpeg.h5")
    shutil.copy(runs["open"], src)
    capsys.readouterr()
    assert main(["animate", src, "--every", "3"]) == 0
    err = capsys.readouterr().err
    assert "ffmpeg is not installed" in err and "GIF" in err
    assert _gif_frames(_path(runs, "nofmpeg.gif")) == (_expected_frames(src, 3), (768, 432))
    assert _expected_frames(src, 3) == 11
    assert main(["animate", src, "-o", _path(runs, "x.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.mp4" in err[0] and "needs ffmpeg" in err[0]


@pytest.mark.skip_in_parallel
def test_frame_png_and_overwrite(runs, capsys):
    """--frame T: a 1280 x 720 PNG of the record nearest T (default name FILE_tT.png); an
    existing output is refused (one line naming it, the file untouched) unless --overwrite."""
    from PIL import Image

    from toolkit.cli import main

    src = _path(runs, "frames.h5")
    shutil.copy(runs["open"], src)
    assert main(["animate", src, "--frame", "1.26"]) == 0
    png = _path(runs, "frames_t1.26.png")
    assert "record 13, t = 1.3" in capsys.readouterr().out
    with Image.open(png) as im:
        assert im.size == (1280, 720) and im.format == "PNG"
    before = open(png, "rb").read()
    assert main(["animate", src, "--frame", "1.26"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and png in err[0] and "--overwrite" in err[0]
    assert open(png, "rb").read() == before
    assert main(["animate", src, "--frame", "2.0", "-o", png, "--overwrite"]) == 0
    assert open(png, "rb").read() != before
    # the library refuses too
    with pytest.raises(FileExistsErrorQC, match="exists"):
        write_frame(src, png, 1.0)
    gif = _path(runs, "frames.gif")
    open(gif, "w").close()
    with pytest.raises(FileExistsErrorQC, match="frames.gif"):
        animate(src, gif)
    assert os.path.getsize(gif) == 0


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("name, words", [
    ("missing.h5", "does not exist"),
    ("notes.h5", "not an HDF5 file"),
    ("foreign.h5", "not one qcspin wrote"),
    ("sweep.h5", "is a qcspin sweep file, not a run file"),
    ("nospin.h5", "without classical spins"),
    ("", "is a directory"),
])
def test_bad_input_one_line(runs, capsys, name, words):
    """A file that is not a run with moments: exit status 2, one line naming the file."""
    from toolkit.cli import main

    path = _path(runs, name) if name else runs["dir"]
    capsys.readouterr()
    assert main(["animate", path, "-o", _path(runs, "bad.gif")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("qcspin: error:"), err
    assert words in err[0] and (os.path.basename(path) or path) in err[0]
    assert not os.path.exists(_path(runs, "bad.gif"))


@pytest.mark.skip_in_parallel
@pytest.mark.parametrize("args, words", [
    (["--fps", "0"], "--fps = 0.0 is not allowed"),
    (["--every", "0"], "--every = 0 is not allowed"),
    (["--t-min", "2", "--t-max", "1"], "--t-min = 2 is not allowed"),
    (["--t-min", "50"], "no record of"),
    (["--frame", "99"], "--frame = 99 is not allowed"),
    (["--frame", "1", "--every", "2"], "--fps and --every do not apply"),
    (["-o", "x.avi"], "-o/--output = 'x.avi' is not allowed"),
    (["--frame", "1", "-o", "x.gif"], "give a .png file"),
])
def test_bad_options_one_line(runs, capsys, args, words):
    from toolkit.cli import main

    capsys.readouterr()
    assert main(["animate", runs["open"], *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
