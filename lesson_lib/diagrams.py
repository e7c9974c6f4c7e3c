"""Pictures of the four methods, with the shapes of *your* model written on them.

    import lesson_lib as ll
    ll.diagrams.lora()                  # a notebook cell ending in this shows the picture
    model, tok = ll.load_base()
    ll.diagrams.adapter(model)          # d, heads, layers read from model.config
    ll.diagrams.prefix(length=20).save("prefix.svg")

Every picture uses the same code:

* grey boxes are **frozen**: the pretrained weights, never updated by training;
* coloured boxes with a thick border are **trained**: LoRA blue, adapter orange, prefix green and the UniPELT
  gates purple (the colours of ``lesson_lib.plots``);
* white boxes hold no weights at all (softmax, GELU, the activations flowing through the layer).

The pictures are SVG text built right here (no drawing library). They are at most 640 px wide and scale down
to fit a narrow output (a projector), and grey versus light-with-a-thick-border still reads in black and white.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

__all__ = ["Diagram", "Shapes", "shapes_of", "adapter", "lora", "prefix", "unipelt", "feedback"]

WIDTH = 640  # every picture's width in SVG units (px when shown at full size)
FONT = "Arial, Helvetica, 'Liberation Sans', 'DejaVu Sans', sans-serif"
INK = "#202124"   # text: near black on every fill
LINE = "#3c4043"  # arrows and outlines
MUTED = "#5f6368"

# kind → (fill, stroke, stroke width). Frozen is a mid grey; trained is a light fill with a thick dark border,
# so the two still differ when printed in black and white.
STYLES = {
    "frozen": ("#a9aeb4", "#5f6368", 1.5),
    "plain": ("#ffffff", "#5f6368", 1.5),
    "lora": ("#d6e6f7", "#1f5fa8", 3.0),
    "adapter": ("#fde3c8", "#b85400", 3.0),
    "prefix": ("#d7efd7", "#1e7b34", 3.0),
    "gate": ("#eadff7", "#6a3d9a", 2.5),
    "merged": ("#a9aeb4", "#1f5fa8", 3.0),
}
COLORS = {"ink": LINE, "lora": "#1f5fa8", "adapter": "#b85400", "prefix": "#1e7b34", "gate": "#6a3d9a"}


# ---------------------------------------------------------------------------------------------------------------
# the shapes of a model


@dataclass(frozen=True)
class Shapes:
    """The sizes a picture writes on itself. The defaults are all-MiniLM-L6-v2's.

    d       hidden size: every token is a vector of d numbers between the layers
    heads   attention heads; each works on d / heads numbers of every token
    ffn     the feed-forward's inner width (4·d in BERT-like models)
    layers  Transformer blocks stacked on top of each other
    """

    d: int = 384
    heads: int = 12
    ffn: int = 1536
    layers: int = 6

    @property
    def head_dim(self) -> int:
        return self.d // self.heads


def _first(cfg, *names: str, default=None):
    for name in names:
        value = getattr(cfg, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    if default is None:
        raise TypeError(f"model.config has none of {', '.join(names)}; pass a BERT-like transformers model "
                        "(e.g. lesson_lib.load_base()[0]) or None for MiniLM's shapes.")
    return default


def shapes_of(model=None) -> Shapes:
    """``Shapes`` read from ``model.config`` (a transformers model, or its config); MiniLM's when ``model`` is None."""
    if model is None:
        return Shapes()
    cfg = getattr(model, "config", model)
    d = _first(cfg, "hidden_size", "dim", "d_model")
    heads = _first(cfg, "num_attention_heads", "n_heads")
    return Shapes(d=d, heads=heads, ffn=_first(cfg, "intermediate_size", "hidden_dim", default=4 * d),
                  layers=_first(cfg, "num_hidden_layers", "n_layers"))


def _width(text: str, size: float) -> float:
    """A generous guess of how wide ``text`` is drawn (Arial-like widths, a little extra for wider fonts)."""
    narrow, wide = set("iljtfr.,:;·()[]' |"), set("mwMW@%")
    em = sum(0.32 if ch in narrow else 0.85 if ch in wide else 0.68 if ch.isupper() else 0.58 for ch in text)
    return em * size * 1.08


def _size(value, what: str, hint: str) -> int:
    """A positive whole number (a rank, a bottleneck, a length), or a ValueError that says what to pass."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}. {hint}")
    return int(value)


def _c(value: float) -> str:
    """A coordinate for the SVG text: 120.0 → '120', 303.456 → '303.5'."""
    return f"{round(float(value), 1):g}"


def _n(value: float) -> str:
    """12345 → '12,345'; 2.0 → '2'; 0.5 → '0.5'."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.3g}"


# ---------------------------------------------------------------------------------------------------------------
# the picture


class Diagram:
    """One picture: ``.svg`` is its SVG text; a notebook cell ending in a Diagram shows it.

    ``save("lora.svg")`` writes the file (open it in a browser, or put it on a slide).
    """

    def __init__(self, svg: str, title: str):
        self.svg = svg
        self.title = title

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_html_(self) -> str:
        # JupyterLab shows image/svg+xml as an <img>, which ignores the picture's max-width and stretches it
        # to the whole output width; the same SVG inline (text/html, which JupyterLab prefers) keeps ≤ 640 px.
        return self.svg

    def save(self, path: str | Path) -> Path:
        """Write the SVG to ``path`` and return the path."""
        path = Path(path)
        path.write_text(self.svg, encoding="utf-8")
        return path

    def __repr__(self) -> str:
        return f"<Diagram: {self.title} ({len(self.svg):,} characters of SVG; .save('x.svg') writes it)>"


_SUB = re.compile(r"_(\{[^}]*\}|[^\s{])")


def _rich(text: str, size: float) -> str:
    """Escape ``text`` for SVG; ``W_q`` and ``g_{AB}`` become subscripts."""
    out, pos, shifted = [], 0, False
    sub = max(13, size - 2)
    for m in _SUB.finditer(text):
        plain = escape(text[pos:m.start()])
        if plain:
            out.append(f'<tspan dy="-4">{plain}</tspan>' if shifted else plain)
            shifted = False
        body = m.group(1).strip("{}")
        out.append(f'<tspan dy="4" font-size="{_c(sub)}">{escape(body)}</tspan>')
        shifted, pos = True, m.end()
    rest = escape(text[pos:])
    if rest:
        out.append(f'<tspan dy="-4">{rest}</tspan>' if shifted else rest)
    return "".join(out)


class _Canvas:
    """Collects SVG elements in layers (panels, lines, shapes, text) and renders them in that order."""

    def __init__(self, height: int, title: str, subtitle: str = ""):
        self.height = height
        self.title = title
        self.layers: dict[str, list[str]] = {"back": [], "lines": [], "shapes": [], "text": []}
        self.text(WIDTH / 2, 28, title, size=18, bold=True)
        if subtitle:
            self.text(WIDTH / 2, 51, subtitle, size=14, color=MUTED)

    # -- primitives
    def text(self, x: float, y: float, s: str, size: float = 14, anchor: str = "middle", bold: bool = False,
             color: str = INK, rotate: float = 0) -> None:
        """Text whose baseline is at y."""
        attrs = f'x="{_c(x)}" y="{_c(y)}" font-size="{_c(size)}" text-anchor="{anchor}" fill="{color}"'
        if bold:
            attrs += ' font-weight="bold"'
        if rotate:
            attrs += f' transform="rotate({_c(rotate)} {_c(x)} {_c(y)})"'
        self.layers["text"].append(f"<text {attrs}>{_rich(s, size)}</text>")

    def rect(self, x: float, y: float, w: float, h: float, kind: str = "plain", layer: str = "shapes",
             dashed: bool = False, rx: float = 6) -> None:
        fill, stroke, width = STYLES[kind]
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        self.layers[layer].append(
            f'<rect x="{_c(x)}" y="{_c(y)}" width="{_c(w)}" height="{_c(h)}" rx="{_c(rx)}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{_c(width)}"{dash}/>'
        )

    def box(self, x: float, y: float, w: float, h: float, lines: list[str], kind: str = "frozen",
            size: float = 14) -> None:
        """A rectangle with centred lines of text: the first bold, the rest one pixel smaller."""
        self.rect(x, y, w, h, kind)
        sizes = [size] + [max(13, size - 1)] * (len(lines) - 1)
        gaps = [s * 1.25 for s in sizes]
        if len(lines) > 1 and _SUB.search(lines[0]):
            gaps[0] += 3  # room for the subscript
        top = y + h / 2 - sum(gaps) / 2
        for i, (line, s) in enumerate(zip(lines, sizes)):
            baseline = top + sum(gaps[:i]) + gaps[i] / 2 + 0.36 * s
            self.text(x + w / 2, baseline, line, size=s, bold=(i == 0))

    def arrow(self, *points: tuple[float, float], color: str = "ink", width: float = 1.8, dashed: bool = False,
              head: bool = True) -> None:
        """A polyline through ``points``; with ``head`` an arrowhead whose tip is the last point.

        The head is a triangle drawn here rather than an SVG <marker>: markers are found by id, and several
        pictures on one notebook page (some of them hidden) would share those ids.
        """
        points = [(float(x), float(y)) for x, y in points]
        color = COLORS[color]
        tip_shape = ""
        if head:
            (x1, y1), (x2, y2) = points[-2], points[-1]
            length = math.hypot(x2 - x1, y2 - y1) or 1.0
            ux, uy = (x2 - x1) / length, (y2 - y1) / length
            bx, by = x2 - 10 * ux, y2 - 10 * uy
            corners = [(x2, y2), (bx - 4.5 * uy, by + 4.5 * ux), (bx + 4.5 * uy, by - 4.5 * ux)]
            tip_shape = (f'<polygon points="{" ".join(f"{_c(x)},{_c(y)}" for x, y in corners)}" '
                         f'fill="{color}"/>')
            points[-1] = (x2 - 8 * ux, y2 - 8 * uy)  # the line stops inside the head, not past its tip
        pts = " ".join(f"{_c(x)},{_c(y)}" for x, y in points)
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        self.layers["lines"].append(
            f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="{_c(width)}" '
            f'stroke-linejoin="round"{dash}/>{tip_shape}'
        )

    def add(self, cx: float, cy: float, r: float = 11) -> None:
        """⊕: a circle with a plus, drawn with lines (no font needed)."""
        a = r * 0.55
        self.layers["shapes"].append(
            f'<circle cx="{_c(cx)}" cy="{_c(cy)}" r="{_c(r)}" fill="#ffffff" stroke="{LINE}" stroke-width="1.8"/>'
            f'<path d="M{_c(cx - a)},{_c(cy)} H{_c(cx + a)} M{_c(cx)},{_c(cy - a)} V{_c(cy + a)}" '
            f'stroke="{LINE}" stroke-width="2"/>'
        )

    def gate(self, cx: float, cy: float, name: str, r: float = 17) -> None:
        """A UniPELT gate: a small purple circle labelled g_name."""
        fill, stroke, width = STYLES["gate"]
        self.layers["shapes"].append(
            f'<circle cx="{_c(cx)}" cy="{_c(cy)}" r="{_c(r)}" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{_c(width)}"/>'
        )
        if name:
            self.text(cx - 1, cy + 3, f"g_{name}", size=15, bold=True)

    def legend(self, y: float, items: list[tuple[str, str]], x: float = 20) -> None:
        """Swatches with their meaning, left to right from x (the caller keeps the row under 640 px)."""
        for kind, label in items:
            if kind == "gate":
                self.gate(x + 11, y, "", r=9)
            else:
                self.rect(x, y - 8, 22, 16, kind, rx=3)
            self.text(x + 30, y + 5, label, size=13, anchor="start")
            x += 30 + _width(label, 13) + 20

    # -- output
    def render(self) -> Diagram:
        body = "\n".join(line for layer in self.layers.values() for line in layer)
        svg = (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {self.height}" width="100%" '
            f'style="max-width:{WIDTH}px;height:auto;font-family:{FONT}" font-family="{FONT}" '
            f'role="img" aria-label="{escape(self.title, {chr(34): "&quot;"})}">\n'
            f"<title>{escape(self.title)}</title>\n"
            f'<rect width="{WIDTH}" height="{self.height}" fill="#ffffff"/>\n{body}\n</svg>'
        )
        return Diagram(svg, self.title)


# ---------------------------------------------------------------------------------------------------------------
# the four methods


def adapter(model=None, bottleneck: int = 64) -> Diagram:
    """Adapters (Houlsby et al. 2019): a small trained bottleneck after each sub-layer of a frozen block.

    Each Transformer block gets two adapters: one on the attention's output and one on the feed-forward's
    output, each *before* the residual add. An adapter squeezes a token's d numbers down to m (the
    bottleneck, m ≪ d), applies a nonlinearity, expands back to d and adds its input again (its own skip
    connection). Its up-projection starts at zero, so at the start of training every adapter is the identity
    and the model computes exactly what the pretrained one did; training then learns a small correction.

    ``model``: read d, heads and layers from its config (None: all-MiniLM-L6-v2). ``bottleneck``: m.
    """
    s = shapes_of(model)
    d, m, L = s.d, _size(bottleneck, "bottleneck", "Try 64."), s.layers
    per = 2 * d * m + m + d
    c = _Canvas(600, "Adapters: small trained bottlenecks in a frozen block",
                f"Houlsby et al. 2019 · 2 adapters in each of the {L} layers · d = {d}, m = {m}")
    x0, w, cx = 40, 230, 155
    c.text(cx, 84, f"x: n × {d} (n tokens)")
    c.arrow((cx, 90), (cx, 106))
    rows = [  # (top, height, lines, kind)
        (106, 44, ["self-attention", f"{s.heads} heads × {s.head_dim} · frozen"], "frozen"),
        (166, 44, ["output projection", f"{d} × {d} · frozen"], "frozen"),
        (226, 44, ["adapter", f"{d} → {m} → {d} · trained"], "adapter"),
        (286, 34, ["add & LayerNorm"], "frozen"),
        (340, 44, ["feed-forward", f"{d} → {s.ffn} → {d} · frozen"], "frozen"),
        (400, 44, ["adapter", f"{d} → {m} → {d} · trained"], "adapter"),
        (460, 34, ["add & LayerNorm"], "frozen"),
    ]
    for i, (top, h, lines, kind) in enumerate(rows):
        c.box(x0, top, w, h, lines, kind)
        if i + 1 < len(rows):
            c.arrow((cx, top + h), (cx, rows[i + 1][0]))
    # the two residual connections, each around one sub-layer and its adapter
    c.arrow((cx, 96), (22, 96), (22, 303), (x0, 303))
    c.arrow((cx, 330), (22, 330), (22, 477), (x0, 477))
    c.arrow((cx, 494), (cx, 512))
    c.text(cx, 528, f"n × {d} → next block")
    c.text(cx, 547, f"({L} blocks, {2 * L} adapters)", size=13, color=MUTED)

    # inside one adapter, zoomed in from the first one
    px, py, pw, ph, pc = 318, 96, 308, 416, 468
    c.rect(px, py, pw, ph, "plain", layer="back", dashed=True, rx=10)
    c.arrow((x0 + w, 226), (px, py), color="adapter", width=1.2, dashed=True, head=False)
    c.arrow((x0 + w, 270), (px, py + ph), color="adapter", width=1.2, dashed=True, head=False)
    c.text(pc, 120, "inside one adapter", size=15, bold=True)
    c.text(pc, 146, f"h: n × {d} (the sub-layer's output)", size=13)
    c.arrow((pc, 152), (pc, 172))
    c.box(pc - 110, 172, 220, 44, ["down-projection", f"{d} → {m} · trained"], "adapter")
    c.arrow((pc, 216), (pc, 232))
    c.box(pc - 110, 232, 220, 34, ["GELU (nonlinearity)"], "plain")
    c.arrow((pc, 266), (pc, 282))
    c.box(pc - 110, 282, 220, 44, ["up-projection", f"{m} → {d} · trained"], "adapter")
    c.arrow((pc, 326), (pc, 347))
    c.add(pc, 358)
    c.arrow((pc, 162), (598, 162), (598, 358), (pc + 11, 358))
    c.text(612, 260, "skip connection", size=13, rotate=90)
    c.arrow((pc, 369), (pc, 386))
    c.text(pc, 402, "h + up(GELU(down(h)))", size=14, bold=True)
    c.text(pc, 430, "up starts at 0: the adapter starts", size=13)
    c.text(pc, 448, "as the identity: output = h", size=13)
    c.text(pc, 476, f"per adapter: 2·d·m + m + d = {_n(per)}", size=13)
    c.text(pc, 495, f"all {2 * L}: {_n(2 * L * per)} trained numbers", size=13)

    c.legend(580, [("frozen", "frozen (pretrained, not updated)"), ("adapter", "trained"),
                   ("plain", "no weights")])
    return c.render()


def lora(model=None, r: int = 8, alpha: float = 16.0) -> Diagram:
    """LoRA (Hu et al. 2021): beside a frozen weight W, a trained low-rank branch B·A.

    The layer computes h = W x + (α/r)·B A x. A (r × d) squeezes x to r numbers, B (d × r) brings them back
    to d. A starts random and B starts at zero, so B·A = 0 and the model begins exactly as the pretrained one;
    training moves only A and B: 2·d·r numbers instead of W's d·d. After training, ΔW = (α/r)·B·A can be added
    into W once (merging): the model is one d × d matrix again and runs as fast as before.

    ``model``: read d and layers from its config (None: all-MiniLM-L6-v2). ``r``: the rank; ``alpha``: α.
    """
    s = shapes_of(model)
    d, L = s.d, s.layers
    r = _size(r, "LoRA rank r", "Try r=8.")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a number > 0, got {alpha!r}. Try alpha = 2 * r.")
    scale = alpha / r
    per = 2 * d * r
    c = _Canvas(548, "LoRA: a trained side branch beside a frozen W",
                f"h = W x + (α/r)·B A x · d = {d}, r = {r}, α = {_n(alpha)}")
    # x, split into the frozen path (top) and the trained branch (bottom)
    c.box(16, 163, 70, 44, ["x", f"n × {d}"], "plain")
    c.arrow((86, 185), (112, 185), (112, 125), (180, 125))
    c.arrow((112, 185), (112, 250), (140, 250), color="lora")
    c.box(180, 70, 110, 110, ["W", f"{d} × {d}", "frozen"], "frozen")
    c.arrow((290, 125), (528, 125))
    c.text(410, 116, "W x")
    c.add(540, 125, r=12)
    c.arrow((552, 125), (596, 125))
    c.text(612, 131, "h", size=16, bold=True)
    c.text(592, 150, f"n × {d}", size=13)
    # the low-rank branch: A is short and wide (r × d), B tall and thin (d × r)
    c.box(140, 234, 120, 32, [f"A ({r} × {d})"], "lora")
    c.arrow((260, 250), (310, 250), color="lora")
    c.text(285, 241, f"r = {r}", size=13, color="#1f5fa8", bold=True)
    c.box(310, 200, 30, 100, ["B"], "lora")
    c.text(348, 216, f"{d} × {r}", size=13, anchor="start")
    c.arrow((340, 250), (410, 250), color="lora")
    c.box(410, 234, 90, 32, ["× α/r"], "plain")
    c.text(455, 286, f"α/r = {_n(scale)}", size=13)
    c.arrow((500, 250), (540, 250), (540, 137), color="lora")
    c.text(550, 200, "(α/r)·B A x", size=13, anchor="start", color="#1f5fa8")
    c.text(200, 290, "A: random init", size=13)
    c.text(325, 320, "B: zeros at init → ΔW = 0", size=13)
    c.text(WIDTH / 2, 354, f"trained: 2·d·r = 2 · {d} · {r} = {_n(per)} per matrix", size=15, bold=True)
    c.text(WIDTH / 2, 375, f"W: {d} · {d} = {_n(d * d)} frozen · LoRA on W_q and W_v in all {L} layers: "
           f"{_n(2 * L * per)}", size=13, color=MUTED)
    # after training: merge
    c.layers["back"].append(f'<line x1="20" y1="394" x2="620" y2="394" stroke="{MUTED}" stroke-width="1"/>')
    c.text(20, 420, "merge: W′ = W + (α/r)·B·A, no extra latency", size=15, bold=True, anchor="start")
    c.box(30, 436, 50, 50, ["W"], "frozen")
    c.text(98, 467, "+", size=20, bold=True)
    c.rect(116, 436, 50, 50, "lora")
    c.text(141, 466, "ΔW", size=14, bold=True)
    c.text(184, 467, "=", size=20, bold=True)
    c.box(202, 436, 50, 50, ["W′"], "merged")
    c.text(55, 504, f"{d} × {d}", size=13)
    c.text(141, 504, "(α/r)·B·A", size=13)
    c.text(227, 504, f"{d} × {d}", size=13)
    c.text(280, 452, "after training, add ΔW into W once:", size=13, anchor="start")
    c.text(280, 471, "one d × d matrix again, as fast as the", size=13, anchor="start")
    c.text(280, 490, "base model (W = W′ − ΔW undoes it)", size=13, anchor="start")
    c.legend(532, [("frozen", "frozen"), ("lora", "trained"), ("merged", "merged"), ("plain", "no weights")])
    return c.render()


def prefix(model=None, length: int = 10) -> Diagram:
    """Prefix tuning (Li & Liang 2021): P learned keys and values added to every attention layer.

    In each layer the n tokens make queries, keys and values with the frozen W_q, W_k, W_v. Prefix tuning
    puts P extra key vectors and P extra value vectors in front of the tokens' own: trained numbers that no
    token computed. Every query now attends over P + n positions, so the prefix can steer what each layer
    reads, while every weight of the model stays frozen. Prompt tuning is the small cousin: P vectors in
    front of the word embeddings at the input only, not in every layer.

    ``model``: read d, heads and layers from its config (None: all-MiniLM-L6-v2). ``length``: P.
    """
    s = shapes_of(model)
    d, P, L = s.d, _size(length, "prefix length P", "Try 10."), s.layers
    c = _Canvas(642, "Prefix tuning: learned keys and values in every layer",
                f"one attention layer · d = {d} = {s.heads} heads × {s.head_dim} · P = {P} prefix positions")
    c.box(140, 66, 360, 34, [f"x: n × {d}, the n tokens' hidden states"], "plain")
    c.arrow((320, 100), (320, 112), head=False)
    c.arrow((95, 112), (565, 112), head=False)
    for x in (95, 340, 565):
        c.arrow((x, 112), (x, 128))
    c.box(30, 128, 130, 42, ["W_q", f"{d} × {d}"], "frozen")
    c.box(280, 128, 120, 42, ["W_k", f"{d} × {d}"], "frozen")
    c.box(505, 128, 120, 42, ["W_v", f"{d} × {d}"], "frozen")
    for x in (95, 340, 565):
        c.arrow((x, 170), (x, 198))
    c.text(235, 192, "learned", size=13, bold=True, color="#1e7b34")
    c.text(460, 192, "learned", size=13, bold=True, color="#1e7b34")
    c.box(30, 198, 130, 44, ["Q", f"n × {d}"], "plain")
    c.box(190, 198, 90, 44, ["P_K", f"{P} × {d}"], "prefix")
    c.box(280, 198, 120, 44, ["K", f"n × {d}"], "plain")
    c.box(415, 198, 90, 44, ["P_V", f"{P} × {d}"], "prefix")
    c.box(505, 198, 120, 44, ["V", f"n × {d}"], "plain")
    c.text(95, 261, f"queries: n × {d}", size=13)
    c.text(295, 261, f"keys: (P + n) × {d}", size=13)
    c.text(520, 261, f"values: (P + n) × {d}", size=13)
    for x in (95, 295, 520):
        c.arrow((x, 268), (x, 292))
    # attention, with a small picture of the score matrix: n rows, P + n columns
    c.rect(30, 292, 595, 112, "plain")
    c.text(45, 316, f"attention in each of the {s.heads} heads", size=14, bold=True, anchor="start")
    c.text(45, 338, f"scores = softmax(Q Kᵀ / √{s.head_dim}): n × (P + n)", size=13, anchor="start")
    c.text(45, 360, "every query attends to P + n positions", size=13, anchor="start")
    c.text(45, 382, f"output = scores · V: n × {d}", size=13, anchor="start")
    gx, gy, cell = 470, 330, 14
    for row in range(4):
        for col in range(8):
            fill = "#d7efd7" if col < 3 else "#ffffff"
            c.layers["shapes"].append(
                f'<rect x="{gx + col * cell}" y="{gy + row * cell}" width="{cell}" height="{cell}" fill="{fill}" '
                f'stroke="{MUTED}" stroke-width="1"/>'
            )
    c.layers["shapes"].append(
        f'<rect x="{gx}" y="{gy}" width="{3 * cell}" height="{4 * cell}" fill="none" stroke="#1e7b34" '
        f'stroke-width="2.5"/>'
    )
    c.text(gx + 1.5 * cell, gy - 6, "P", size=13, bold=True, color="#1e7b34")
    c.text(gx + 5.5 * cell, gy - 6, "n", size=13, bold=True)
    c.text(gx - 8, gy + 2 * cell + 5, "n", size=13, bold=True, anchor="end")
    c.arrow((320, 404), (320, 420))
    c.text(320, 436, f"n × {d} → output projection (frozen) → rest of the layer", size=13)
    c.text(320, 466, f"trained: only P_K and P_V, 2 · P · d = 2 · {P} · {d} = {_n(2 * P * d)} per layer",
           size=15, bold=True)
    c.text(320, 486, f"× {L} layers = {_n(2 * P * d * L)}; every W and the tokens' own K and V stay frozen",
           size=13, color=MUTED)
    # prompt tuning, for contrast
    c.layers["back"].append(f'<line x1="20" y1="504" x2="620" y2="504" stroke="{MUTED}" stroke-width="1"/>')
    c.text(20, 528, "prompt tuning: P vectors at the input only", size=15, bold=True, anchor="start")
    for i in range(3):
        c.rect(30 + i * 20, 544, 18, 26, "prefix", rx=2)
    for i in range(5):
        c.rect(96 + i * 20, 544, 18, 26, "plain", rx=2)
    c.text(58, 590, "P", size=13, bold=True, color="#1e7b34")
    c.text(144, 590, "n words", size=13)
    c.arrow((200, 557), (232, 557))
    c.box(232, 540, 140, 34, [f"frozen, {L} layers"], "frozen")
    c.text(388, 552, "prepended to the word embeddings", size=13, anchor="start")
    c.text(388, 570, f"once: P · d = {_n(P * d)} trained", size=13, anchor="start")
    c.legend(624, [("frozen", "frozen"), ("prefix", "trained (learned prefix)"), ("plain", "no weights")])
    return c.render()


def unipelt(model=None, r: int = 8, bottleneck: int = 64, length: int = 10) -> Diagram:
    """UniPELT (Mao et al. 2022): prefix, LoRA and an adapter in one block, each behind its own learned gate.

    Each branch's contribution is multiplied by a gate g = σ(W_g x), a number between 0 and 1 computed from
    the branch's input by one small trained layer W_g (d → 1). A gate near 0 switches its method off in that
    layer, near 1 keeps it fully; so training itself picks which method helps where. The prefix gate g_P
    scales the attention the queries pay to P_K, P_V; g_L scales LoRA's update on W_q and W_v; g_A scales the
    adapter's output after the feed-forward.

    ``model``: read d, heads and layers from its config (None: all-MiniLM-L6-v2); ``r``, ``bottleneck`` and
    ``length`` are the three methods' sizes.
    """
    s = shapes_of(model)
    d, L = s.d, s.layers
    r = _size(r, "LoRA rank r", "Try r=8.")
    bottleneck = _size(bottleneck, "bottleneck", "Try 64.")
    length = _size(length, "prefix length P", "Try 10.")
    c = _Canvas(720, "UniPELT: three methods, each behind a learned gate",
                f"g = σ(W_g x) ∈ (0, 1): one small trained layer per branch · d = {d}")
    c.text(320, 76, f"x: n × {d}")
    c.arrow((320, 82), (320, 96), head=False)
    c.arrow((70, 96), (570, 96), head=False)
    for x in (70, 210, 320, 430, 570):
        c.arrow((x, 96), (x, 110), color="lora" if x in (70, 570) else "ink")
    # LoRA on W_q and W_v, gated
    c.box(12, 110, 116, 42, ["LoRA on W_q", f"B·A, r = {r}"], "lora")
    c.box(512, 110, 116, 42, ["LoRA on W_v", f"B·A, r = {r}"], "lora")
    c.box(165, 110, 90, 42, ["W_q", f"{d} × {d}"], "frozen")
    c.box(275, 110, 90, 42, ["W_k", f"{d} × {d}"], "frozen")
    c.box(385, 110, 90, 42, ["W_v", f"{d} × {d}"], "frozen")
    for x, plus in ((70, 210), (570, 430)):
        c.arrow((x, 152), (x, 168), color="lora")
        c.gate(x, 185, "L")
        side = 1 if plus > x else -1
        c.arrow((x + side * 17, 185), (plus - side * 11, 185), color="lora")
        c.arrow((plus, 152), (plus, 174))
        c.add(plus, 185)
    c.arrow((210, 196), (210, 232))
    c.arrow((320, 152), (320, 232))
    c.arrow((430, 196), (430, 232))
    for x, name in ((210, "Q"), (320, "K"), (430, "V")):
        c.text(x + 8, 220, name, size=13, bold=True, anchor="start")
    # prefix into attention, gated
    c.box(12, 232, 120, 44, ["prefix P_K, P_V", f"{length} × {d} each"], "prefix")
    c.arrow((132, 254), (149, 254), color="prefix")
    c.gate(166, 254, "P")
    c.arrow((183, 254), (200, 254), color="prefix")
    c.box(200, 232, 240, 44, ["softmax attention", f"{s.heads} heads, over P + n keys"], "plain")
    c.arrow((320, 276), (320, 294))
    c.box(200, 294, 240, 42, ["output projection", f"{d} × {d}"], "frozen")
    c.arrow((320, 336), (320, 352))
    c.box(200, 352, 240, 34, ["add & LayerNorm"], "frozen")
    c.arrow((320, 386), (320, 404))
    c.box(200, 404, 240, 44, ["feed-forward", f"{d} → {s.ffn} → {d}"], "frozen")
    # the adapter after the feed-forward, gated
    c.arrow((320, 448), (320, 509))
    c.arrow((320, 470), (470, 470), color="adapter")
    c.box(470, 448, 150, 44, ["adapter", f"{d} → {bottleneck} → {d}"], "adapter")
    c.arrow((545, 492), (545, 503), color="adapter")
    c.gate(545, 520, "A")
    c.arrow((528, 520), (331, 520), color="adapter")
    c.add(320, 520)
    c.arrow((320, 531), (320, 548))
    c.box(200, 548, 240, 34, ["add & LayerNorm"], "frozen")
    c.arrow((320, 582), (320, 600))
    c.text(320, 616, f"n × {d} → next block ({L} blocks)")
    c.text(320, 648, f"each gate: W_g is {d} → 1 ({_n(d + 1)} numbers), trained with its branch", size=13)
    c.text(320, 668, "g near 0 switches a branch off in that layer, g near 1 keeps it", size=13)
    c.legend(700, [("frozen", "frozen"), ("lora", "LoRA"), ("prefix", "prefix"), ("adapter", "adapter"),
                   ("gate", "gate"), ("plain", "no weights")], x=14)
    return c.render()


# ---------------------------------------------------------------------------------------------------------------
# what comes after PEFT (lesson 07)


def feedback() -> Diagram:
    """Learning from human preferences (InstructGPT, Ouyang et al. 2022) in three steps, and lesson 07's part.

    1. Supervised fine-tuning: people write good answers to prompts; the generator is fine-tuned on them.
    2. A reward model: people compare two answers to the same prompt; a model r(text) is trained so that the
       preferred one scores higher (the Bradley–Terry loss −log σ(r⁺ − r⁻)).
    3. PPO: the generator writes answers, the reward model scores them, and reinforcement learning (PPO)
       changes the generator to score higher, with a penalty for drifting far from step 1's model (KL).

    Lesson 07 builds step 2 on MiniLM, with pairs taken from labels instead of people, and replaces step 3 by
    best-of-n: it keeps the highest-scoring of n existing texts. Dashed boxes are not built in the lesson.
    """
    c = _Canvas(440, "Learning from preferences: three steps, and what lesson 07 builds",
                "InstructGPT (Ouyang et al. 2022) · dashed: not built here")
    xs, w, top, h = (16, 228, 440), 184, 80, 118
    steps = [
        (["1. fine-tuning (SFT)", "people write good", "answers to prompts;", "the generator learns", "to copy them"],
         "plain", True),
        (["2. reward model", "people compare two", "answers; r(text) learns", "to score the preferred", "one higher"],
         "lora", False),
        (["3. PPO", "the generator writes,", "r scores, PPO updates", "the generator (a KL", "penalty keeps it close)"],
         "plain", True),
    ]
    for x, (lines, kind, dashed) in zip(xs, steps):
        c.rect(x, top, w, h, kind, dashed=dashed)
        for i, line in enumerate(lines):
            c.text(x + w / 2, top + 26 + i * 21, line, size=15 if i == 0 else 13, bold=(i == 0))
    for a, b in ((xs[0] + w, xs[1]), (xs[1] + w, xs[2])):
        c.arrow((a, top + h / 2), (b, top + h / 2))
    # the miniature, under the step it stands for
    c.text(320, 240, "this lesson, in miniature (each under the step it stands for)", size=15, bold=True)
    mini = [
        (xs[0], ["part 1: instruction", "tuning (a cousin:", "yes/no, not writing)"], "lora"),
        (xs[1], ["MiniLM + LoRA +", "a scalar head; pairs", "from labels, not people"], "lora"),
        (xs[2], ["best-of-n: keep the", "highest-scoring of n", "existing tweets"], "plain"),
    ]
    for x, lines, kind in mini:
        c.rect(x, 256, w, 84, kind)
        for i, line in enumerate(lines):
            c.text(x + w / 2, 282 + i * 21, line, size=13)
    c.text(320, 372, "left out: text generation, human labellers, PPO and its KL penalty,", size=13, color=MUTED)
    c.text(320, 392, "and reward hacking (a generator that learns to fool r)", size=13, color=MUTED)
    c.legend(420, [("lora", "trained in this lesson"), ("plain", "nothing trained")], x=170)
    return c.render()
