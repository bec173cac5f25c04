"""``qcspin animate RUN.h5 [-o OUT.mp4|OUT.gif] [--fps F] [--every N] [--t-min T] [--t-max T]
[--frame T] [--overwrite]``: an animation of every classical moment of a run with the bias and
the spin currents (analysis/animate.py draws it; rank 0 works).  Registered in pyproject.toml
(``qcspin.commands``)."""
from __future__ import annotations

import os

from toolkit.cli_args import add_output_args

__all__ = ["register", "cmd_animate", "default_output"]


def register(subparsers) -> None:
    """Add ``qcspin animate``."""
    p = subparsers.add_parser(
        "animate", help="animate the classical moments of a run (MP4 or GIF)",
        description="An animation of a run file: every classical moment M_i(t) as an arrow at "
                    "its site (3D view, coloured by layer), with time traces of the bias "
                    "V_L(t), the mean M_z of the last magnetic layer and the spin currents "
                    "(right lead; plane in front of that layer) and a cursor at the frame's "
                    "time. MP4 with ffmpeg, otherwise a GIF.")
    p.add_argument("result", metavar="FILE", help="run file written by qcspin run")
    add_output_args(p, "MP4 (.mp4, needs ffmpeg) or GIF (.gif) to write; with --frame a PNG "
                       "(default: FILE name + .mp4, or .gif without ffmpeg; with --frame "
                       "FILE name + _tT.png)",
                    overwrite="replace an existing output file")
    p.add_argument("--fps", type=float, default=None, metavar="F",
                   help="frames per second of the animation (default: 20)")
    p.add_argument("--every", type=int, default=None, metavar="N",
                   help="one frame for every N-th record (default: the smallest N giving at "
                        "most 300 frames)")
    p.add_argument("--t-min", type=float, default=None, metavar="T",
                   help="first time to show (run time units; default: the first record)")
    p.add_argument("--t-max", type=float, default=None, metavar="T",
                   help="last time to show (default: the last record)")
    p.add_argument("--frame", type=float, default=None, metavar="T",
                   help="write only the frame of the record nearest time T, as a PNG")
    p.set_defaults(func=cmd_animate)


def default_output(path: str, frame: float | None, mp4: bool) -> str:
    """FILE name + .mp4 (.gif when ``mp4`` is False), or + _t<T>.png for ``--frame T``."""
    stem = os.path.splitext(path)[0]
    if frame is not None:
        return f"{stem}_t{frame:g}.png"
    return stem + (".mp4" if mp4 else ".gif")


def cmd_animate(args) -> int:
    """Check the options (every rank), read the run and draw on rank 0; an error is raised on
    every rank (the same exit status everywhere)."""
    from analysis.animate import (
        DPI,
        FIGSIZE,
        GIF_DPI,
        ffmpeg_available,
        frame_records,
        nearest_record,
        read_run,
    )
    from toolkit.cli import CommandInputError, say, warn
    from toolkit.cli_args import check_outputs, number
    from toolkit.errors import InputError
    from toolkit.parallel import get_comm, on_root

    comm = get_comm()
    number("--fps", args.fps, gt=0)
    number("--every", args.every, integer=True, ge=1)
    number("--t-min", args.t_min)
    number("--t-max", args.t_max)
    number("--frame", args.frame)
    if args.t_min is not None and args.t_max is not None and args.t_min > args.t_max:
        raise CommandInputError(f"--t-min = {args.t_min:g} is not allowed: expected <= "
                                f"--t-max = {args.t_max:g}")
    if args.frame is not None and (args.fps is not None or args.every is not None):
        raise CommandInputError("--frame writes one PNG: --fps and --every do not apply")
    fps = 20.0 if args.fps is None else args.fps
    out = args.output
    mp4 = ffmpeg_available()
    if out is not None:
        ext = os.path.splitext(out)[1].lower()
        if args.frame is not None and ext != ".png":
            raise CommandInputError(f"-o/--output = {out!r} is not allowed: --frame writes a "
                                    f"PNG; give a .png file")
        if args.frame is None and ext not in (".mp4", ".gif"):
            raise CommandInputError(f"-o/--output = {out!r} is not allowed: expected a .mp4 "
                                    f"or .gif file (a .png with --frame)")
        if args.frame is None and ext == ".mp4" and not mp4:
            raise CommandInputError(f"-o/--output = {out!r} needs ffmpeg for MP4, which is "
                                    f"not installed (Debian: apt-get install ffmpeg); give a "
                                    f".gif file")
    else:
        out = default_output(args.result, args.frame, mp4)
    errors = (InputError, FileExistsError)

    def check():
        """The input first (a missing run, a time range without records), then the output."""
        series = read_run(args.result)
        if args.frame is not None:
            nearest_record(series, args.frame, flag="--frame")
            return series, None
        return series, frame_records(series, every=args.every, t_min=args.t_min,
                                     t_max=args.t_max)
    series, records = on_root(check, comm, errors) or (None, None)
    check_outputs({"-o/--output": out}, args.overwrite, comm)
    if args.frame is not None:
        on_root(lambda: _frame(series, out, args, say), comm, errors)
        return 0
    if out.lower().endswith(".gif") and args.output is None:
        warn("ffmpeg is not installed (Debian: apt-get install ffmpeg): writing a GIF with "
             "Pillow instead of an MP4")

    def work() -> None:
        from analysis.animate import animate
        from toolkit.progress import ProgressBar

        assert series is not None and records is not None   # rank 0 read them
        t = series.t
        gif = out.lower().endswith(".gif")
        dpi = GIF_DPI if gif else DPI
        say(f"animating {len(records)} frames of '{args.result}' (t = {t[records[0]]:g} .. "
            f"{t[records[-1]]:g} {series.time_unit}, every {_step(records)} record(s)) at "
            f"{fps:g} fps, {int(FIGSIZE[0] * dpi)}x{int(FIGSIZE[1] * dpi)}, "
            f"{'GIF (Pillow)' if gif else 'MP4 (ffmpeg, H.264)'}")
        bar = ProgressBar(len(records), enabled=getattr(args, "verbosity", 0) >= 0, label="frame")
        try:
            info = animate(series, out, fps=fps, every=args.every, t_min=args.t_min,
                           t_max=args.t_max, overwrite=args.overwrite,
                           progress=lambda done, total: bar.update(done))
        finally:
            bar.close()
        say(f"wrote {os.path.abspath(info.path)} ({info.n_frames} frames, "
            f"{info.n_frames / fps:.1f} s of video; {info.seconds:.1f} s wall time)")
    on_root(work, comm, errors)
    return 0


def _step(records) -> int:
    return int(records[1] - records[0]) if len(records) > 1 else 1


def _frame(series, out: str, args, say) -> None:
    from analysis.animate import write_frame

    info = write_frame(series, out, args.frame, overwrite=args.overwrite, t_min=args.t_min,
                       t_max=args.t_max)
    t = series.t[int(info.records[0])]
    say(f"wrote {os.path.abspath(info.path)} (record {int(info.records[0])}, t = {t:g} "
        f"{series.time_unit})")
