"""Registry of simulator apps: vendor modules register a factory ``(org, clock) -> App`` under a name."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sandbox.app import App
from sandbox.clock import SimClock

if TYPE_CHECKING:
    from sandbox.org import Organisation

log = logging.getLogger(__name__)

AppFactory = Callable[["Organisation", SimClock], App]
_FACTORIES: dict[str, AppFactory] = {}
_BUILTIN_MODULES = ("sandbox.control",)


def register_app(name: str) -> Callable[[AppFactory], AppFactory]:
    """Decorator: make `factory` startable by `python -m sandbox serve` under `name`."""

    def decorate(factory: AppFactory) -> AppFactory:
        existing = _FACTORIES.get(name)
        if existing is not None and existing is not factory:
            raise ValueError(f"simulator app {name!r} is already registered by {existing.__module__}")
        _FACTORIES[name] = factory
        return factory

    return decorate


def load_apps() -> dict[str, AppFactory]:
    """Import the built-in apps and every module of `sandbox.vendors`; return the registered factories."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
    vendors = importlib.import_module("sandbox.vendors")
    for info in sorted(pkgutil.iter_modules(vendors.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"sandbox.vendors.{info.name}")
    return dict(sorted(_FACTORIES.items()))


def build_apps(org: Organisation, clock: SimClock, names: Iterable[str] | None = None) -> dict[str, App]:
    """Build the named apps (default: all registered), all sharing one organisation and one clock."""
    factories = load_apps()
    wanted = list(names) if names is not None else list(factories)
    unknown = sorted(set(wanted) - set(factories))
    if unknown:
        raise KeyError(f"unknown simulator apps {unknown}; registered: {sorted(factories)}")
    return {name: factories[name](org, clock) for name in wanted}
