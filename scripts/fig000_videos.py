#!/usr/bin/env python
"""Videos 1-3 of paper 000: animations of every moment M_i(t) with the pulse and spin currents.

``analysis.animate.animate`` (the machinery of ``qcspin animate``) on the runs of
``scripts/fig000_runs.py``: Video 1, the spin valve with the paper's 0.25 V / 0.6 ps pulse
(``valve_paper``: the analyzer only tilts here) and with the 1.0 V / 1.3 ps pulse that switches
it (``valve_switch``); Video 2, the FM/NM/AFI/FM junction with J_AFI-FM = 0.1 eV
(``afi_paper``); Video 3, the same with J_AFI-FM = 0 (``afi_noexch``).  Each frame: the moments
in 3D at their sites (the AFI's 20 Neel-ordered ones in the middle), below V_L(t), the
analyzer's mean M_z, the spin current from the right lead into the device (I_R^S with the
opposite sign) and the full-rho spin current through the plane in front of the analyzer (for
the AFI junction: I_AFI->FM^S), all in qcspin's units (s = sigma/2 per fs).

    python scripts/fig000_videos.py [--quick] [--outdir DIR] [--overwrite] [--gif]

MP4 (H.264, ffmpeg) or GIF (``--gif``, or when ffmpeg is missing); at most 300 frames, 20 per
second (--quick, a pipeline test: 6 GIF frames of the quick runs).  Writes
DIR/fig000_video_<run>.{mp4,gif} and a still of each (DIR/fig000_video_<run>.png: the record
where the analyzer is tilted most), the table DIR/fig000_videos.h5 and the montage of the
stills DIR/fig000_videos.png.  The runs are computed on all ranks, the videos drawn on rank 0.
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fig000_runs as R  # noqa: E402
import numpy as np  # noqa: E402

from analysis.animate import animate, ffmpeg_available, read_run, write_frame  # noqa: E402
from analysis.figscript import figure_main  # noqa: E402
from toolkit import log  # noqa: E402
from toolkit.io import write_table  # noqa: E402
from toolkit.results import load_result  # noqa: E402

VIDEOS = (("valve_paper", "Video 1 (the paper's pulse)"),
          ("valve_switch", "Video 1 (a pulse that switches)"),
          ("afi_paper", "Video 2 (J_AFI-FM = 0.1 eV)"),
          ("afi_noexch", "Video 3 (J_AFI-FM = 0)"))
_log = log.get_logger("fig000_videos")


def _outputs(outdir: str, gif: bool) -> list[str]:
    ext = ".gif" if gif else ".mp4"
    return [os.path.join(outdir, f"fig000_video_{n}{e}") for n, _ in VIDEOS
            for e in (ext, ".png")]


def _gif(args) -> bool:
    return bool(args.gif or args.quick or not ffmpeg_available())


def clashes(h5, args):
    return [p for p in [h5] + _outputs(args.outdir, _gif(args)) if os.path.exists(p)]


def compute(h5, args, comm):
    files = R.ensure_runs([n for n, _ in VIDEOS], args.quick, args.outdir, comm)
    if comm.getRank() != 0:
        return
    gif = _gif(args)
    ext = ".gif" if gif else ".mp4"
    data, groups = {}, {}
    for n, what in VIDEOS:
        r = load_result(files[n])
        F = R.layer_index(r, "F")
        tilt = R.tilt_deg(r["spins"][:, F, :]).max(axis=1)
        i_still = int(np.argmax(tilt))
        t = r["time"]
        out = os.path.join(args.outdir, f"fig000_video_{n}{ext}")
        kw = {"every": max(1, len(t) // 6)} if args.quick else {}
        series = read_run(files[n])          # the title: the run's own pulse, not the example's
        device = "spin valve" if R.RUNS[n].device == "valve" else "FM/NM/AFI/FM junction"
        V, VD = R.pulse(n, args.quick)
        series.title = f"paper 000 {what}: {device}, {V:g} V / {VD * 1e-3:g} ps pulse"
        info = animate(series, out, overwrite=args.overwrite, **kw)
        still = write_frame(series, os.path.join(args.outdir, f"fig000_video_{n}.png"),
                            float(t[i_still]), overwrite=args.overwrite)
        _log.info(f"{n}: {info.n_frames} frames, {info.writer}, {info.seconds:.0f} s -> "
                  f"{out}", extra={"label": ""})
        data[f"{n}/frame_times"] = (t[info.records], "fs", "time of each frame")
        groups[n] = {"what": what, "video": os.path.abspath(info.path), "writer": info.writer,
                     "n_frames": info.n_frames, "size": list(info.size),
                     "seconds": info.seconds, "still": os.path.abspath(still.path),
                     "still_time_fs": float(t[i_still]), "max_tilt_deg": float(tilt.max()),
                     "run": os.path.abspath(files[n]), "V_H": R.RUNS[n].V,
                     "t_on_fs": R.pulse_window(r)[0], "t_off_fs": R.pulse_window(r)[1]}
    write_table(h5, data, {"note": R.note(args.quick) + " Currents in the animations are "
                           "qcspin's (s = sigma/2 per fs, full rho), not the paper's "
                           "(e/hbar) Tr sigma convention."}, kind="figure", group_attrs=groups,
                overwrite=args.overwrite)


def plot(h5, png):
    from analysis.plots import use_agg

    plt = use_agg()
    r = load_result(h5)
    fig, axes = plt.subplots(2, 2, figsize=(16, 9.6))
    for ax, (n, what) in zip(axes.ravel(), VIDEOS):
        ax.axis("off")
        if n not in r.groups:
            continue
        g = r.group_attrs(n)
        if os.path.exists(g["still"]):
            ax.imshow(plt.imread(g["still"]))
        ax.set_title(f"{what}: {n}, {R.pulse_text(g)}, frame at t = "
                     f"{g['still_time_fs'] * 1e-3:.2f} ps (max analyzer tilt "
                     f"{g['max_tilt_deg']:.0f}°)", fontsize=10, loc="left")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(figure_main("fig000_videos", compute, plot, doc=__doc__, clashes=clashes,
                         quick_help="6 GIF frames of the quick runs (pipeline test)",
                         extra_args={"--gif": {"action": "store_true",
                                               "help": "GIF instead of MP4"}}))
