"""Model factories for ``live_training``: every Train press starts from a freshly loaded base.

``fresh(configs)`` returns a ``ModelFactory``, a small callable object: ``factory()`` loads the base anew
and injects ``configs``; ``factory(top=k)`` puts the method in the top k layers only. Nothing here
creates a widget, so a factory also works in scripts and tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from torch import nn

from .. import fast, inject, surgery
from ..config import GateConfig
from ..models import layers_of, load_base


@dataclass(frozen=True)
class ModelFactory:
    """Load the base, then inject ``configs`` (None: full fine-tuning; "head": only the classifier head).

    ``n_layers`` is how many transformer layers the base has, read from its config without loading it,
    so a panel can offer "top k of n" before any model exists.
    """

    configs: object
    tiny: bool = False
    num_labels: int = 2
    gates: GateConfig | None = None
    seed: int = 0

    def __call__(self, top: int | None = None) -> nn.Module:
        model, _ = load_base(tiny=self.tiny, num_labels=self.num_labels, seed=self.seed)
        layers = None if top is None else fast.top_layers(model, top)
        if self.configs == "head":
            surgery.freeze_base(model)
        elif self.configs is None:
            if layers is not None:
                surgery.freeze_base(model)
                for i in layers:
                    layers_of(model)[i].requires_grad_(True)
        else:
            inject(model, restricted(self.configs, layers), gates=self.gates, seed=self.seed)
        return model

    @property
    def n_layers(self) -> int:
        """How many transformer layers ``load_base`` gives, read from the config (no weights loaded)."""
        if self.tiny:
            from ..tiny import tiny_config

            return tiny_config().num_hidden_layers
        from ..models import offline_model_dir

        return int(json.loads((offline_model_dir() / "config.json").read_text())["num_hidden_layers"])


def fresh(configs, tiny: bool = False, num_labels: int = 2, gates: GateConfig | None = None,
          seed: int = 0) -> ModelFactory:
    """A model factory for ``live_training``: each call loads the base anew and injects ``configs``.

    ``configs=None`` trains the whole model (full fine-tuning); ``"head"`` only the classifier head.
    ``factory(top=k)`` puts the method in the top k layers only (full fine-tuning: trains only those
    layers), so the frozen layers below can be computed once and cached: the fast path of
    ``lesson_lib/fast.py``. Prompt tuning works on the input, below every layer, so it has no top-k form.
    """
    return ModelFactory(configs, tiny=tiny, num_labels=num_labels, gates=gates, seed=seed)


def restricted(configs, layers: tuple[int, ...] | None):
    """``configs`` with ``layers=`` set (None: unchanged); a clear error for a method that has no layers."""
    if layers is None:
        return configs
    many = isinstance(configs, (list, tuple))
    out = []
    for c in configs if many else [configs]:
        if not hasattr(c, "layers"):
            raise ValueError(f"{type(c).__name__} works on the input, below every layer, so it cannot be "
                             "restricted to the top layers: choose 'all layers'")
        out.append(replace(c, layers=layers))
    return out if many else out[0]
