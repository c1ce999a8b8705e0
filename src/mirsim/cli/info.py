"""``mirsim info``: what mirsim knows (data sets, features, models, protocols, losses...)."""

from __future__ import annotations

import json

import typer

import mirsim
from mirsim.cli.common import fail_cleanly, out


def _defaults(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "no parameters"


@fail_cleanly
def info(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """List data sets, features, models, protocols, losses, miners, distances and samplers
    (with their parameters and defaults), and where the Cyberlioz data is."""
    from mirsim.datasets.locations import find_cyberlioz
    from mirsim.registries import (DATASETS, DISTANCES, FEATURES, LOSSES, MINERS, MODELS,
                                   PROTOCOLS, SAMPLERS)

    registries = {"data sets": DATASETS, "features": FEATURES, "models": MODELS,
                  "protocols": PROTOCOLS, "losses": LOSSES, "miners": MINERS,
                  "distances": DISTANCES, "samplers": SAMPLERS}
    found = find_cyberlioz()
    if as_json:
        print(json.dumps({"version": mirsim.__version__,
                          "cyberlioz": None if found is None else str(found),
                          **{kind: {n: {"summary": e.summary, "params": e.params}
                                    for n, e in reg.catalogue().items()}
                             for kind, reg in registries.items()}}))
        return
    out.print(f"mirsim {mirsim.__version__}")
    out.print(f"cyberlioz: {found if found else 'not found (set MIRSIM_CYBERLIOZ_DIR or run `mirsim data fetch cyberlioz`)'}",
              highlight=False, soft_wrap=True)
    for kind in ("data sets", "features", "models", "protocols"):
        extra = ", or a folder / CSV manifest" if kind == "data sets" else ""
        out.print(f"{kind}: {', '.join(registries[kind].names())}{extra}", highlight=False,
                  soft_wrap=True)
    for kind in ("losses", "miners", "distances", "samplers"):
        out.print(f"{kind}:", highlight=False)
        for name, e in sorted(registries[kind].catalogue().items()):
            out.print(f"  {name}: {e.summary} ({_defaults(e.params)})", highlight=False,
                      soft_wrap=True)
