"""The ``[[leads]]`` config schema: the keys every lead has and each lead model's own keys.

This is the one declaration of the lead keys, their constraints and defaults.  The TOML parser
(toolkit/config.py) and ``operators.leads.leads_from_config`` both check a table with
:func:`validate_lead_table`, and each model class of operators/leads.py takes its ``schema``
from :data:`LEAD_SCHEMAS` (its constructor checks Python arguments with the same keys).  A new
lead model is its class, its entry here and its tests.

    >>> validate_lead_table("leads[0]", {"side": "left", "gamma": 0.5})["gamma"]
    0.5
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .schema import ConfigError, Key, Schema, fail, integer

__all__ = ["COMMON", "LEAD_SCHEMAS", "LeadSchema", "validate_lead_table", "N_POLES_LIMIT",
           "check_n_poles", "LEAD_COMMON_KEYS"]

# Padé poles: operators/pade.py diagonalises a dense 2N x 2N matrix with eigenvectors, 32 N^2
# bytes (measured: N = 2000 in 2 s and 210 MB, N = 4000 in 10 s; N = 30 serves paper 004).
N_POLES_LIMIT = 2000


def check_n_poles(key: str, v: Any, exc: type[Exception] = ConfigError) -> int:
    """A number of Padé poles, 1 .. N_POLES_LIMIT (``key``: the name in messages)."""
    n = integer(key, v, minimum=1, exc=exc)
    if n > N_POLES_LIMIT:
        fail(key, v,
             f"expected 1 <= n_poles <= {N_POLES_LIMIT}: the poles come from a dense {2 * n} x "
             f"{2 * n} eigenproblem that would need {32 * n * n / 2**30:.3g} GiB and a time "
             f"growing like n_poles^2 to ^3 (n_poles = {N_POLES_LIMIT}: 0.12 GiB, ~2 s); "
             f"30 poles give f(eps) to 1e-8 for |eps - mu| <= 10 at T = 0.025", exc)
    return n


#: keys of every lead (``n_poles`` and ``name`` have extra checks in validate_lead_table)
COMMON = Schema((
    Key("side", "str", "the face the lead is attached to", required=True,
        choices=("left", "right")),
    Key("name", "str", "names the lead's state components and datasets (no '/' or ':'); "
        "default: side"),
    Key("model", "str", "the lead model", default="wide-band"),
    Key("mu", "real", "chemical potential before any bias [E0]", default=0.0),
    Key("temperature", "real", "k_B T of the reservoir [E0]", default=0.025, positive=True),
    Key("n_poles", "int", "Padé poles of the lead's Fermi function in the time domain "
        "(default: electrons.n_poles)", minimum=1),
))
LEAD_COMMON_KEYS = COMMON.names


@dataclass(frozen=True)
class LeadSchema:
    """A lead model's own keys, which of them only choose its time-domain representation, and
    an optional check across keys (``check(section, values)``, ConfigError)."""

    model: str
    schema: Schema
    time_domain: tuple[str, ...] = ()
    check: Callable[[str, Mapping[str, Any]], None] | None = None


def _tb_check(section: str, v: Mapping[str, Any]) -> None:
    sites = v.get("sites", TIGHT_BINDING.schema["sites"].default)
    if v.get("absorbing", 0) > sites:
        fail(f"config key '{section}.absorbing'", v["absorbing"], f"expected at most sites = "
             f"{sites} (the absorbing columns are the outermost of the explicit ones)",
             ConfigError)


WIDE_BAND = LeadSchema("wide-band", Schema((
    Key("gamma", "reals", "broadening Gamma [E0]: one number > 0 for every spinor orbital of "
        "the face, or one value >= 0 per orbital (both spins of each face site, in site order)",
        required=True),
)))

TIGHT_BINDING = LeadSchema("tight-binding", Schema((
    Key("hopping", "real", "t_L on the lead's bonds [E0] (default: lattice.hopping)",
        positive=True),
    Key("onsite", "real", "spin-independent on-site energy eps_0 of the lead [E0]", default=0.0),
    Key("coupling", "real", "t_c on the lead-face bonds [E0] (default: hopping; only t_c^2 "
        "enters)", positive=True),
    Key("representation", "str", "time domain: explicit sites with absorbers, the same "
        "self-energy as auxiliary modes, or a Lorentzian fit", default="extended",
        choices=("extended", "modes", "lorentzian")),
    Key("sites", "int", "explicit lead columns L ('extended', 'modes')", default=60, minimum=1),
    Key("absorbing", "int", "outermost columns n with absorbers (default: sites)", minimum=1),
    Key("absorber_gamma", "real", "Gamma_max of the graded absorber [E0] (default: hopping)",
        positive=True),
    Key("absorber_power", "real", "p of Gamma_k = Gamma_max (k/n)^p", default=4.0,
        positive=True),
    Key("lorentzians", "int", "Lorentzians N_L of the fit ('lorentzian')", default=60,
        minimum=1),
    Key("lorentzian_width", "real", "lower bound of the Lorentzian widths, in units of t_L",
        default=1.0, positive=True),
)), time_domain=("representation", "sites", "absorbing", "absorber_gamma", "absorber_power",
                 "lorentzians", "lorentzian_width"), check=_tb_check)

#: ``[[leads]] model`` -> its schema (operators.leads.LEAD_MODELS has one class per entry)
LEAD_SCHEMAS: dict[str, LeadSchema] = {s.model: s for s in (WIDE_BAND, TIGHT_BINDING)}


def validate_lead_table(section: str, table: Any, n_interface: int | None = None
                        ) -> dict[str, Any]:
    """One ``[[leads]]`` table checked against :data:`COMMON` and its model's schema: the given
    keys validated, ``model`` filled in (ConfigError naming ``section.key``, the value and what
    is allowed).  ``n_interface``: spinor orbitals of the face, for per-orbital values."""
    if not isinstance(table, Mapping):
        fail(f"config key '{section}'", table, "expected a table", ConfigError)
    model = table.get("model", "wide-band")
    if not isinstance(model, str) or model not in LEAD_SCHEMAS:
        fail(f"config key '{section}.model'", model, f"expected one of {list(LEAD_SCHEMAS)}",
             ConfigError)
    own = LEAD_SCHEMAS[model]
    allowed = COMMON.names + own.schema.names
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        other = [m for m, s in LEAD_SCHEMAS.items() if unknown[0] in s.schema.names]
        why = (f"a key of model {other[0]!r} leads, not of model {model!r}" if other
               else f"unknown key in [{section}]")
        fail(f"config key '{section}.{unknown[0]}'", table[unknown[0]],
             f"{why}; allowed keys are {sorted(allowed)}", ConfigError)
    out = COMMON.validate(section, table)
    out["model"] = model
    if "name" in out and (not out["name"] or "/" in out["name"] or ":" in out["name"]):
        fail(f"config key '{section}.name'", out["name"], "expected a non-empty name without "
             "'/' or ':' (it names the lead's state components in checkpoints)", ConfigError)
    if "n_poles" in out:
        out["n_poles"] = check_n_poles(f"config key '{section}.n_poles'", out["n_poles"])
    # the model's keys ('reals' keys hold one number or one value per interface orbital)
    values = own.schema.validate(section, {k: v for k, v in table.items()
                                           if k in own.schema.names}, length=n_interface)
    if own.check is not None:
        own.check(section, values)
    out.update(values)
    return out
