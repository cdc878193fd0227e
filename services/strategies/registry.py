"""Find a strategy by slug and build it from text params.

The lookup is rebuilt from the catalogue's immutable tuple on each call (it is tiny), so there
is no module-level registry to mutate or to leak between tests.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from types import MappingProxyType

from services.strategies.catalogue import STRATEGIES
from services.strategies.params import StrategyConfigError, params_as_text, parse_params
from services.strategies.sdk import Strategy

__all__ = ["catalogue", "describe", "load_strategy"]


def catalogue() -> Mapping[str, type[Strategy]]:
    """Every known strategy class by slug (read-only)."""
    return MappingProxyType({cls.slug: cls for cls in STRATEGIES})


def load_strategy(slug: str, raw_params: Mapping[str, str]) -> Strategy:
    """Build the strategy `slug` from text params; a wrong slug or param raises StrategyConfigError."""
    known = catalogue()
    cls = known.get(slug)
    if cls is None:
        raise StrategyConfigError(f"unknown strategy '{slug}'; known strategies: {', '.join(sorted(known))}")
    return cls(parse_params(cls.Params, raw_params, owner=slug))


def describe() -> list[dict]:
    """One entry per strategy for a CLI listing and deployment manifests."""
    out = []
    for slug, cls in sorted(catalogue().items()):
        module_doc = inspect.getmodule(cls).__doc__ or ""
        defaults = params_as_text(cls.Params())
        out.append(
            {
                "slug": slug,
                "summary": module_doc.strip().splitlines()[0] if module_doc.strip() else "",
                "timeframes": list(cls.timeframes),
                "decision_timeframe": cls.timeframes[0],
                "interface_version": cls.interface_version,
                "params": defaults,
                "param_types": {f.name: str(f.type) for f in dataclasses.fields(cls.Params)},
            }
        )
    return out
