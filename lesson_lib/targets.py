"""Where a method goes: finding target modules by name, and the changes a method makes to a model.

* ``find_targets(model, patterns)``: the names of the modules a method would wrap. A pattern is one of the
  papers' names ("query", "value", "q_proj", …: ``config.TARGETS`` and ``config.TARGET_ALIASES``), a module
  name or ``.suffix``, or a regular expression. Names are matched as they were before any method was
  added, so a projection that already carries another method is found the same way.
* ``Change``: one module put at one place (``parent.attr``); ``put`` / ``take_out`` apply and undo it.
* ``outermost(model, layer, path)``: the module at ``path`` in a layer, looking through wrappers.

Pure bookkeeping over module names: no training, no state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from .config import canonical_target
from .models import Arch, arch_for, layers_of
from .module import MethodModule


def layer_index(name: str, arch: Arch) -> int | None:
    """The layer a module name lies in ("bert.encoder.layer.3.…" → 3), or None outside the layers."""
    m = re.match(re.escape(arch.layers) + r"\.(\d+)\.", name + ".")
    return int(m.group(1)) if m else None


def layer_ids(model: nn.Module, wanted) -> list[int]:
    """``wanted`` (None: every layer) as a list of layer indices, each checked to exist."""
    n = len(layers_of(model))
    ids = list(range(n)) if wanted is None else list(wanted)
    bad = [i for i in ids if not 0 <= i < n]
    if bad:
        raise ValueError(f"layers {bad} do not exist; this model has layers 0..{n - 1}")
    return ids


def _pattern_regex(pattern: str, arch: Arch) -> re.Pattern:
    """A paper's name ("query", "q_proj") → that path inside any layer; ".suffix" or a plain name → a suffix;
    anything else is a regular expression."""
    canonical = canonical_target(pattern)
    if canonical is not None:
        path = arch.aliases()[canonical]
        return re.compile(re.escape(arch.layers) + r"\.\d+\." + re.escape(path))
    if re.fullmatch(r"\.?[\w.]+", pattern):
        return re.compile(r"(?:.*\.)?" + re.escape(pattern.lstrip(".")))
    return re.compile(pattern)


def plain_names(model: nn.Module) -> dict[str, str]:
    """{real name: plain name} of every module that is not the library's. The plain name is the one the
    module had before any method was added: a wrapper keeps the original at ``.base``, so
    ``….output.dense.base`` (inside an adapter's wrapper) is plainly ``….output.dense``."""
    out: dict[str, str] = {}

    def walk(module: nn.Module, real: str, plain: str) -> None:
        ours = isinstance(module, MethodModule)
        for name, child in module._modules.items():
            if child is None or (ours and name != "base"):
                continue  # a method's own parts (an adapter's down and up) are not targets
            r = f"{real}.{name}" if real else name
            p = plain if ours else (f"{plain}.{name}" if plain else name)
            if not isinstance(child, MethodModule):
                out[r] = p
            walk(child, r, p)

    walk(model, "", "")
    return out


def find_targets(model: nn.Module, patterns, layers=None) -> list[str]:
    """Names of the modules matching ``patterns`` (paper names, module names, ``.suffix`` or regexes).

    When a pattern matches nothing, the error lists the names to choose from.
    """
    arch = arch_for(model)
    patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
    if layers is not None:
        layer_ids(model, layers)  # layers out of range: say so, not "matches no module"
    names = plain_names(model)
    found: list[str] = []
    for pattern in patterns:
        rx = _pattern_regex(pattern, arch)
        hits = [real for real, plain in names.items()
                if rx.fullmatch(plain) and (layers is None or layer_index(real, arch) in layers)]
        if not hits:
            examples = [p for p in names.values() if layer_index(p, arch) == 0][:12]
            raise ValueError(
                f"target {pattern!r} (from {patterns}) matches no module. Use one of {sorted(arch.aliases())}, "
                f"a module name, a suffix or a regex. Module names in layer 0: {examples}"
            )
        found += [h for h in hits if h not in found]
    return found


def outermost(model: nn.Module, layer: int, path: str) -> tuple[nn.Module, str, nn.Module]:
    """(parent, attribute, module) at ``path`` inside layer ``layer``, looking through wrappers' ``.base``."""
    cur = layers_of(model)[layer]
    parent, attr = cur, ""
    for comp in path.split("."):
        while comp not in cur._modules and hasattr(cur, "base"):
            cur = cur.base
        parent, attr, cur = cur, comp, cur._modules[comp]
    return parent, attr, cur


@dataclass
class Change:
    """One module the library puts into a model: ``module`` at ``parent.attr``, replacing ``original``
    (None: a new attribute, e.g. the prefix MLP). ``layer``: the layer it is in (None: outside them)."""

    parent: nn.Module
    attr: str
    module: MethodModule
    original: nn.Module | None
    layer: int | None = None


def put(change: Change) -> None:
    """Make the change: the method module goes in."""
    setattr(change.parent, change.attr, change.module)
    change.module.attached()


def take_out(change: Change) -> None:
    """Undo it: the original module (the very same object) goes back, or the new attribute goes away."""
    change.module.detached()
    if change.original is None:
        delattr(change.parent, change.attr)
    else:
        setattr(change.parent, change.attr, change.original)


def set_path(model: nn.Module, path: str, module: nn.Module) -> None:
    """Put ``module`` at the dotted ``path`` of ``model``."""
    parent, _, attr = path.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)
