"""What every method's module has in common: a name, and (for most) the original module it wraps.

A method adds small modules to a frozen model in one of two ways:

* it **wraps** an existing module: ``LoRALinear`` wraps a projection, ``AdapterAfter`` an output
  projection, ``PrefixAttention`` a self-attention. The original is kept at ``wrapper.base``, so taking
  the method out is putting ``wrapper.base`` back where the wrapper was;
* it **adds** a module of its own beside the layers: the prefix MLP, the soft prompt.

Everything the library adds derives from ``MethodModule`` (its ``method`` names the method, which is how
``count_params`` sorts the parameters), so the library recognises its own modules by type.
"""

from __future__ import annotations

from torch import nn


class MethodModule(nn.Module):
    """A module the library added to a model. ``method``: "lora", "adapter", "prefix", "prompt", "gate", …"""

    method: str = ""

    def attached(self) -> None:
        """Called when the module goes into the model (a soft prompt starts rewriting the input here)."""

    def detached(self) -> None:
        """Called when the module comes out of the model."""


class Wrapper(MethodModule):
    """A method module around an original module of the model, kept (frozen) at ``.base``."""

    def __init__(self, base: nn.Module):
        super().__init__()
        self.base = base
