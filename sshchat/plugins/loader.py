"""Finding, importing and configuring the enabled plugins, once at start.

Outside the chat core on purpose: this is where the outside world (installed
packages, imports of arbitrary modules) comes in. Every way a plugin can
fail here is a ``PluginError`` of one line, which the server prints before
exiting with status 2: an unknown name, an import that fails, something
that is not a plugin, a bad setting, a command that takes a built-in's name.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Mapping, Sequence
from typing import Any

from sshchat.chat.plugin_host import PluginHost
from sshchat.chat.plugins import Plugin, PluginError

GROUP = "sshchat.plugins"


def installed() -> dict[str, importlib.metadata.EntryPoint]:
    """The plugins installed in this Python, by entry-point name."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}


def resolve(name: str) -> object:
    """What ``name`` names: an entry point's object, or ``module:attr``'s."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as e:
            raise PluginError(f"plugin {name}: cannot import {module_name}: {type(e).__name__}: {e}") from None
        target: object = module
        for part in attr.split("."):
            try:
                target = getattr(target, part)
            except AttributeError:
                raise PluginError(f"plugin {name}: {module_name} has no {attr}") from None
        return target
    entry = installed().get(name)
    if entry is None:
        known = ", ".join(sorted(installed())) or "none"
        raise PluginError(f"unknown plugin {name!r} (installed: {known}; or give module:attr)")
    try:
        return entry.load()
    except Exception as e:
        raise PluginError(f"plugin {name}: cannot load {entry.value}: {type(e).__name__}: {e}") from None


def make(name: str, settings: Mapping[str, Any]) -> Plugin:
    """The plugin ``name`` names (a Plugin subclass, or a function making one),
    named and configured with ``settings``."""
    target = resolve(name)
    try:
        plugin = target() if callable(target) else target
    except Exception as e:
        raise PluginError(f"plugin {name}: cannot be made: {type(e).__name__}: {e}") from None
    if not isinstance(plugin, Plugin):
        raise PluginError(f"plugin {name}: {type(plugin).__name__} is not a sshchat.chat.plugins.Plugin")
    plugin.name = name
    try:
        plugin.configure(settings)
    except PluginError:
        raise
    except Exception as e:  # a plugin's own check, worded its way
        raise PluginError(f"plugin {name}: {type(e).__name__}: {e}") from None
    return plugin


def load(
    names: Sequence[str], settings: Mapping[str, Mapping[str, Any]], message_timeout: float, task_timeout: float
) -> PluginHost | None:
    """The host of the plugins ``names`` (None if there are none), each
    configured from ``settings[name]``; PluginError if any cannot be used."""
    unused = set(settings) - set(names)
    if unused:
        raise PluginError(f"settings for plugin {sorted(unused)[0]}, which is not enabled (plugins = [...])")
    if len(set(names)) != len(names):
        raise PluginError("a plugin is enabled twice")
    if not names:
        return None
    plugins = [make(name, settings.get(name, {})) for name in names]
    return PluginHost(plugins, message_timeout, task_timeout)
