"""The lessons, one module per notebook, in reading order."""

from . import (
    n00_start_here,
    n01_why_efficient,
    n02_adapters,
    n03_lora,
    n04_inside_delta_w,
    n05_prefix_and_prompt,
    n06_compare_and_combine,
    n07_what_comes_next,
)

LESSONS = {
    "00_start_here": n00_start_here.CELLS,
    "01_why_efficient": n01_why_efficient.CELLS,
    "02_adapters": n02_adapters.CELLS,
    "03_lora": n03_lora.CELLS,
    "04_inside_delta_w": n04_inside_delta_w.CELLS,
    "05_prefix_and_prompt": n05_prefix_and_prompt.CELLS,
    "06_compare_and_combine": n06_compare_and_combine.CELLS,
    "07_what_comes_next": n07_what_comes_next.CELLS,
}
