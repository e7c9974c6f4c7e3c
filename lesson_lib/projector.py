"""Projector mode: one call makes every figure, label, table and status line readable from the back of a room.

    ll.projector()          # big fonts everywhere, from now on (run it first, in the notebook in front of you)
    ll.projector(False)     # back to the laptop sizes

The panels and figures are the same in both modes; only sizes change:

* figures: a plotly template (``plots.lecture_theme``) with large fonts, thick lines and big markers, and a
  little more height for them;
* controls, tables and status lines: ipywidgets draws every widget from a few CSS variables (font size,
  row height, label width); inside the course's panels (``.lesson-panel``) projector mode sets them larger,
  and makes the status line (which carries each panel's answer) big and dark;
* printed output (the tables, verdicts and answers cells print) at 19 px, and the method pictures
  (``ll.diagrams``) up to 900 px wide instead of 640.

Checked in headless Chromium at 1280×720 zoomed to 125 % (``tests/test_browser.py``). A printed table row
(a line indented by two spaces) must then fit ``PRINTED_COLUMNS`` characters, or it wraps and its columns
fall apart: the lessons' rows are kept that short (``tests/test_notebooks.py`` checks every notebook's).
"""

from __future__ import annotations

# Characters of printed text one line of the output area holds at 19 px, on a 1280×720 projector at 125 %
# with JupyterLab's file browser closed (73 measured in headless Chromium); one spare.
PRINTED_COLUMNS = 72

# JupyterLab's own values of the widget variables (laptop mode) and the projector's. A later <style> wins,
# so switching back and forth works by showing the other block.
LAPTOP = {"--jp-widgets-font-size": "13px", "--jp-widgets-inline-height": "28px",
          "--jp-widgets-inline-label-width": "80px", "status": "14px", "table": "13px", "weight": "400",
          "slider": "310px", "printed": "var(--jp-code-font-size, 13px)", "picture": "640px"}
PROJECTOR = {"--jp-widgets-font-size": "20px", "--jp-widgets-inline-height": "40px",
             "--jp-widgets-inline-label-width": "150px", "status": "24px", "table": "20px", "weight": "600",
             "slider": "460px", "printed": "19px", "picture": "900px"}


def css(sizes: dict[str, str]) -> str:
    """The <style> block that gives the panels these sizes."""
    variables = "; ".join(f"{k}: {v}" for k, v in sizes.items() if k.startswith("--"))
    return (
        "<style>"
        f".lesson-panel {{ {variables}; font-size: {sizes['--jp-widgets-font-size']}; }}"
        f".lesson-panel .widget-label, .lesson-panel .widget-readout, .lesson-panel button, "
        f".lesson-panel select {{ font-size: {sizes['--jp-widgets-font-size']} !important; }}"
        f".lesson-panel table {{ font-size: {sizes['table']} !important; }}"
        # a description keeps its whole text, and a dropdown grows to show its choice (both have fixed widths
        # for the laptop, set inline by ipywidgets, hence !important)
        ".lesson-panel .widget-inline-hbox > .widget-label { width: auto !important; max-width: none !important; "
        "min-width: var(--jp-widgets-inline-label-width) !important; }"
        ".lesson-panel button { width: auto !important; }"
        ".lesson-panel .widget-dropdown { width: auto !important; }"
        f".lesson-panel .widget-hslider {{ width: {sizes['slider']} !important; }}"
        ".lesson-panel .widget-dropdown > select { min-width: 6em; }"
        f".lesson-panel .lesson-status {{ font-size: {sizes['status']} !important; "
        f"font-weight: {sizes['weight']} !important; }}"
        # what cells print (tables, verdicts, reveals) in JupyterLab and in Colab / classic Jupyter
        f".jp-OutputArea-output pre, .output_text pre, .output_subarea pre {{ font-size: {sizes['printed']} "
        "!important; line-height: 1.35 !important; }"
        # the method pictures (ll.diagrams) may grow beyond their laptop width of 640 px
        f"svg[role='img'][viewBox] {{ max-width: {sizes['picture']} !important; }}"
        "</style>"
    )


def projector(on: bool = True) -> bool:
    """Switch projector mode on (or off with ``False``) for every figure and panel made or redrawn from now on.

    Returns whether it is on. Call it in the notebook that is on the screen (the style lives in its page).
    """
    from IPython.display import HTML, display

    from . import plots

    plots.lecture_theme(on)
    display(HTML(css(PROJECTOR if on else LAPTOP)))
    return on


def is_on() -> bool:
    """Whether projector mode is on (the lecture template is part of plotly's default)."""
    from . import plots

    return plots.theme_is_on()
