"""``qcspin info OUT.h5``: status, history and config summary of a run file (rank 0 reads and
prints).  Registered in pyproject.toml (``qcspin.commands``)."""
from __future__ import annotations

__all__ = ["register", "cmd_info"]


def register(subparsers) -> None:
    """Add ``qcspin info``."""
    i = subparsers.add_parser("info", help="status, history and config summary of a run file")
    i.add_argument("result", help="HDF5 result file of qcspin run")
    i.set_defaults(func=cmd_info)


def cmd_info(args) -> int:
    """Rank 0 reads and prints; an error is raised on every rank."""
    from toolkit.io import ResultFileError, read_status
    from toolkit.parallel import get_comm, on_root

    on_root(lambda: _print_info(args, read_status(args.result)), get_comm(), (ResultFileError,))
    return 0


def _print_info(args, st) -> None:
    from toolkit.cli import result  # the command's result: also with qcspin -q
    from toolkit.io import fmt_history

    result(f"{args.result}: qcspin run file (format {st['format']}), status: {st['status']}"
           + (f" - {st['message']}" if st["message"] else ""))
    import tomllib

    from toolkit.lead_schema import TIGHT_BINDING

    tb = TIGHT_BINDING.schema
    try:
        c = tomllib.loads(st["config"])
        lat = c.get("lattice", {})
        t = c.get("time", {})
        layers = ", ".join(f"{l.get('name')} {l.get('columns')}" for l in c.get("layers", []))
        leads = ", ".join(
            f"{l.get('name') or l.get('side')} ({l.get('model', 'wide-band')}"
            + (f", {l.get('representation', tb['representation'].default)} L = "
               f"{l.get('sites', tb['sites'].default)}"
               if l.get("model") == "tight-binding" else "") + ")"
            for l in c.get("leads", []))
        result(f"  config: {c.get('name', '')!r}, lattice {lat.get('size')}, layers "
               f"{layers or '-'}, leads {leads or 'none'}, dt = {t.get('dt')}, t_end = "
               f"{t.get('t_end')} {st['units']}, bias "
               f"{c.get('bias', {}).get('protocol', 'none')}")
    except tomllib.TOMLDecodeError:
        result("  config: (cannot be read)")
    last = f", last t = {st['t_last']:.6g} {st['units']}" if st["t_last"] is not None else ""
    result(f"  records: {st['n_output']}{last}; created {st['created']}, {st['mpi_size']} "
           f"rank(s)")
    ck = st.get("checkpoint")
    if ck:
        result(f"  checkpoint: step {ck.get('step')}, t = {ck.get('t', ck.get('time')):.6g} "
               f"{st['units']}, {ck.get('n_output')} records")
    else:
        result("  checkpoint: none")
    for k, entry in enumerate(st["history"]):
        result(f"  segment {k}: {fmt_history(entry)}")
        if entry.get("message"):
            result(f"             {entry['message']}")
    v = st["versions"]
    if v:
        result("  versions: " + ", ".join(f"{k} {x}" for k, x in v.items()))
