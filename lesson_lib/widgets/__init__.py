"""Interactive panels for the lessons: move a slider, see the consequence.

Each panel is built in one notebook cell, from a model the notebook made, and returned as a widget
(the cell's last expression shows it; nothing here calls ``display()``):

    parameter_explorer(model)                   methods, r, α, targets, m, P in; parameter counts, memory out
    live_training(model_factory, task)          a training curve that grows, a Stop button, a results table
    delta_w_explorer(model, split)              ΔW spectra and heatmaps, accuracy at a truncated rank k
    gate_board(model, split)                    UniPELT gates, and the accuracy when you set them by hand
    switchboard(model, tasks)                   two task adapters on one frozen base, switched live

Every panel keeps what it shows in ``panel.values`` and reports any error of a callback in its own
output area, so nothing fails silently. Figures are live FigureWidgets or static figures (``figures.py``;
``use_figure_widget(True | False)`` or ``LESSON_FIGURES=widget|static`` chooses).

What each file holds (the plain-logic files create no widget and can be used and tested on their own):

    figures.py      how a figure is drawn: FigureView, the figure mode, resync (plotly's private state)
    panel.py        the Panel base class and its slider / row helpers
    tables.py       HTML tables (plain)
    build.py        fresh(...): model factories for live training (plain)
    counts.py       the parameter explorer's numbers, by formula (plain)
    explorer.py     panel 1, parameter_explorer
    runs.py         RunLog and the row of a finished run (plain)
    training.py     panel 2, live_training
    delta_state.py  ΔW, spectra, accuracy by rank, the background warm-up (plain)
    delta_w.py      panel 3, delta_w_explorer
    gate_state.py   UniPELT gates: find, set, measure (plain)
    gate_board.py   panel 4, gate_board
    switchboard.py  panel 5, switchboard
"""

from __future__ import annotations

from .build import ModelFactory, fresh
from .counts import METHODS, SPECS, TARGETS, explorer_configs, explorer_numbers
from .delta_state import DeltaState
from .delta_w import DeltaWExplorer, delta_w_explorer
from .explorer import ParameterExplorer, parameter_explorer
from .figures import FigureView, figure_mode, figure_widget_available, resync, use_figure_widget
from .gate_board import GateBoard, gate_board
from .gate_state import GateState
from .panel import Panel
from .runs import RunLog, run_row
from .switchboard import EXAMPLES, Switchboard, switchboard
from .training import TrainingPanel, live_training

__all__ = [
    "EXAMPLES", "METHODS", "SPECS", "TARGETS", "DeltaState", "DeltaWExplorer", "FigureView", "GateBoard", "GateState",
    "ModelFactory", "Panel", "ParameterExplorer", "RunLog", "Switchboard", "TrainingPanel", "delta_w_explorer",
    "explorer_configs", "explorer_numbers", "figure_mode", "figure_widget_available", "fresh", "gate_board",
    "live_training", "parameter_explorer", "resync", "run_row", "switchboard", "use_figure_widget",
]
