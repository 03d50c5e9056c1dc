"""The plugin machinery: one pluggy manager per workspace, a typed facade, registries.

Built-in plugins are plain module names registered exactly like third-party
ones. Third-party plugins come from the ``siyu`` entry-point group (turn that
off with ``SIYU_DISABLE_PLUGIN_AUTOLOAD=1``) or from ``connect(plugins=[...])``.
A fresh manager per workspace means a plugin registered for one workspace
never leaks into another (the trap of a module-global manager).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

from . import hookspecs
from .errors import NotFound, PluginError

if TYPE_CHECKING:
    pass

ENTRY_POINT_GROUP = "siyu"

#: Modules registered into every workspace, in this order, like any plugin.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "siyu.storage.builtin",
    "siyu.channels.builtin",
    "siyu.services.builtin_rules",
)

T = TypeVar("T")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in {"", "0", "false", "no", "off"}


class _PluginManager(pluggy.PluginManager):
    """Only ``siyu_*`` names can be hooks, so skip pluggy's costly inspection of
    every other attribute (a workspace registers several plugins per connect)."""

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        if not name.startswith("siyu_"):
            return None
        return super().parse_hookimpl_opts(plugin, name)


def make_plugin_manager(plugins: Iterable[object] = ()) -> pluggy.PluginManager:
    """Build the plugin manager of one workspace and validate every hook."""
    pm = _PluginManager("siyu")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if not _truthy(os.environ.get("SIYU_DISABLE_PLUGIN_AUTOLOAD")):
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party package must not look like our bug
            raise PluginError(
                f"loading plugins from the {ENTRY_POINT_GROUP!r} entry-point group failed: {exc!r}; "
                "set SIYU_DISABLE_PLUGIN_AUTOLOAD=1 to start without third-party plugins"
            ) from exc
    if isinstance(plugins, str | bytes) or not isinstance(plugins, Iterable):
        raise PluginError(
            f"plugins must be a list of modules, objects or module names, got {type(plugins).__name__} "
            f"{plugins!r}; e.g. plugins=['myshop.siyu_plugin']"
        )
    for plugin in plugins:
        obj: object = _import_plugin(plugin) if isinstance(plugin, str) else plugin
        if pm.is_registered(obj):
            continue
        try:
            pm.register(obj, name=plugin_name(pm, obj))
        except ValueError as exc:
            raise PluginError(f"plugin {_describe(obj)} could not be registered: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin {_describe(obj)} is invalid: {exc}") from exc
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        known = sorted(name for name in dir(hookspecs) if name.startswith("siyu_"))
        raise PluginError(
            f"{exc}. Known hooks: {', '.join(known)}. Check the spelling of the function name."
        ) from exc
    if _truthy(os.environ.get("SIYU_TRACE_PLUGINS")):
        pm.trace.root.setwriter(lambda message: sys.stderr.write(f"[siyu] {message}"))
        pm.enable_tracing()
    return pm


def _import_plugin(name: str) -> ModuleType:
    """The module a plugin is named by; :class:`~siyu.errors.PluginError` when there is none."""
    if not all(part.isidentifier() for part in name.split(".")):
        raise PluginError(
            f"plugin {name!r} is not a module name; give a dotted module path such as 'myshop.siyu_plugin'"
        )
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise PluginError(
            f"plugin module {name!r} could not be imported ({exc}); check the spelling and that its "
            "package is installed in this environment"
        ) from None
    except Exception as exc:  # the module itself is broken: say whose code failed
        raise PluginError(f"importing plugin module {name!r} failed: {exc!r}") from exc


def plugin_name(pm: pluggy.PluginManager, obj: object) -> str:
    """A readable, stable name for a plugin object (pluggy's default is its ``id()``):
    the module, the class, or for a namespace of functions the functions' module;
    ``#2``, ``#3`` ... when that name is already taken in this workspace."""
    if isinstance(obj, ModuleType):
        base = obj.__name__
    elif isinstance(obj, type):
        base = f"{obj.__module__}.{obj.__qualname__}"
    elif type(obj).__module__ in {"builtins", "types"}:
        hooks = [getattr(obj, n) for n in dir(obj) if n.startswith("siyu_")]
        modules = sorted({getattr(h, "__module__", None) or "plugin" for h in hooks if callable(h)})
        base = modules[0] if modules else "plugin"
    else:
        base = f"{type(obj).__module__}.{type(obj).__qualname__}"
    # The same name the event log gives the plugin's consumer (its checkpoint key).
    base = base.replace(".<locals>", "")
    name, n = base, 2
    while pm.has_plugin(name):
        name, n = f"{base}#{n}", n + 1
    return name


def _describe(obj: object) -> str:
    if isinstance(obj, ModuleType):
        return obj.__name__
    return getattr(obj, "__name__", None) or type(obj).__name__


def plugin_infos(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Name, distribution version and hooks of each registered plugin."""
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        rows.append(
            {
                "name": name,
                "distribution": dist.project_name if dist else ("siyu" if name.startswith("siyu.") else ""),
                "version": dist.version if dist else "",
                "hooks": hooks,
            }
        )
    return rows


class Hooks:
    """Typed, keyword-only facade over ``pm.hook``."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm

    def register_storage_backends(self, *, register: Callable[[type[Any]], None]) -> None:
        self._pm.hook.siyu_register_storage_backends(register=register)

    def register_channels(self, *, register: Callable[[type[Any]], None]) -> None:
        self._pm.hook.siyu_register_channels(register=register)

    def points_rules(self, *, register: Callable[[Any], None]) -> None:
        """Collect points earn rules (built-ins first, so plugins can replace them)."""
        self._pm.hook.siyu_points_rules(register=register)

    def workspace_opened(self, *, workspace: Any) -> None:
        """Tell the plugins a workspace's services are built (see :func:`~siyu.hookspecs.siyu_workspace_opened`)."""
        self._pm.hook.siyu_workspace_opened(workspace=workspace)

    def call(self, name: str, **kwargs: Any) -> Any:
        """Call any hook by name (for hooks added by later siyu modules)."""
        return getattr(self._pm.hook, name)(**kwargs)


class Registry(Generic[T]):
    """Classes registered under a name, with duplicate detection and did-you-mean."""

    def __init__(self, what: str, attribute: str, missing: type[NotFound]) -> None:
        self._what = what
        self._attribute = attribute
        self._missing = missing
        self._items: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> None:
        names = [getattr(cls, self._attribute, None), *getattr(cls, "aliases", ())]
        if not isinstance(names[0], str) or not names[0]:
            raise PluginError(
                f"{cls!r} cannot be registered as a {self._what}: it needs a class attribute "
                f"{self._attribute!r} naming it"
            )
        for name in names:
            existing = self._items.get(name)
            if existing is not None and existing is not cls:
                raise PluginError(
                    f"{self._what} {name!r} is registered twice: by {_qualname(existing)} and by "
                    f"{_qualname(cls)}; uninstall or rename one of them"
                )
        for name in names:
            self._items[name] = cls

    def get(self, name: str) -> type[T]:
        try:
            return self._items[name]
        except KeyError:
            known = sorted(self._items)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise self._missing(
                f"no {self._what} named {name!r}; known: {', '.join(known) or '(none)'}.{hint}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def classes(self) -> list[tuple[str, type[T], list[str]]]:
        """``(name, class, aliases)`` per registered class, by name."""
        primary = {cls: name for name, cls in self._items.items() if getattr(cls, self._attribute, None) == name}
        out = []
        for cls, name in sorted(primary.items(), key=lambda item: item[1]):
            aliases = sorted(n for n, c in self._items.items() if c is cls and n != name)
            out.append((name, cls, aliases))
        return out

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
