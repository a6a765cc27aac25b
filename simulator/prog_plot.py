"""The per-layer PNG of ``lego sim --model M --design DIR``: cycles (log scale) and utilization per layer.

Drawn with Pillow (a dependency of matplotlib; ~20 ms to import where matplotlib's pyplot takes ~0.5 s of a
~2 s run): two bar panels over the layer index, decade grid lines on the cycles panel, quarter lines on the
utilization panel, the layer index every few bars. Pure: ``render`` returns the image, ``write`` saves it.
"""
from __future__ import annotations

import math
from pathlib import Path

WIDTH_PER_LAYER, MIN_WIDTH, HEIGHT = 12, 800, 600
LEFT, RIGHT, TOP, BOTTOM, GAP = 78, 16, 34, 44, 16      # margins around / between the two panels (pixels)
BLUE, ORANGE = (31, 119, 180), (255, 127, 14)           # matplotlib's tab:blue and tab:orange
INK, GRID, WHITE = (0, 0, 0), (210, 210, 210), (255, 255, 255)
UTIL_MAX = 1.05


def _panels(width: int) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) of the cycles panel and of the utilization panel (y grows downwards)."""
    h = (HEIGHT - TOP - BOTTOM - GAP) // 2
    return ((LEFT, TOP, width - RIGHT, TOP + h), (LEFT, TOP + h + GAP, width - RIGHT, TOP + 2 * h + GAP))


def _decades(values: list[int]) -> tuple[int, int]:
    lo = math.floor(math.log10(max(1, min(values))))
    hi = math.ceil(math.log10(max(values)))
    return lo, max(hi, lo + 1)


def _vtext(img, draw, xy: tuple[int, int], text: str, font) -> None:
    """``text`` turned 90 degrees anticlockwise, centred vertically on ``xy[1]``, left edge at ``xy[0]``."""
    from PIL import Image, ImageDraw
    l, t, r, b = draw.textbbox((0, 0), text, font=font)
    tile = Image.new("RGB", (r - l + 2, b - t + 2), WHITE)
    ImageDraw.Draw(tile).text((1 - l, 1 - t), text, fill=INK, font=font)
    tile = tile.rotate(90, expand=True)
    img.paste(tile, (xy[0], xy[1] - tile.height // 2))


def render(rows: list[dict], total: dict):
    """The figure of ``rows`` (each with ``cycles`` and ``utilization``) as a PIL image."""
    from PIL import Image, ImageDraw, ImageFont
    n = len(rows)
    width = max(MIN_WIDTH, n * WIDTH_PER_LAYER + LEFT + RIGHT)
    img = Image.new("RGB", (width, HEIGHT), WHITE)
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=12)
    (cx0, cy0, cx1, cy1), (ux0, uy0, ux1, uy1) = _panels(width)
    slot = (cx1 - cx0) / n
    lo, hi = _decades([r["cycles"] for r in rows])
    # grid lines and y labels
    for e in range(lo, hi + 1):
        for m in ((1, 2, 5) if hi - lo <= 3 else (1,)):
            if e == hi and m > 1:
                break
            y = round(cy1 - (e + math.log10(m) - lo) / (hi - lo) * (cy1 - cy0))
            d.line([(cx0, y), (cx1, y)], fill=GRID)
            d.text((cx0 - 4, y), f"{m}e{e}", fill=INK, font=font, anchor="rm")
    for q in (0, 0.25, 0.5, 0.75, 1.0):
        y = round(uy1 - q / UTIL_MAX * (uy1 - uy0))
        d.line([(ux0, y), (ux1, y)], fill=GRID)
        d.text((ux0 - 4, y), f"{q:g}", fill=INK, font=font, anchor="rm")
    # bars: the cycles panel from its floor (10^lo), the utilization panel from 0
    for i, r in enumerate(rows):
        a, b = round(cx0 + (i + 0.1) * slot), max(round(cx0 + (i + 0.9) * slot) - 1, round(cx0 + (i + 0.1) * slot))
        yc = round(cy1 - (math.log10(max(1, r["cycles"])) - lo) / (hi - lo) * (cy1 - cy0))
        if yc < cy1:
            d.rectangle([a, yc, b, cy1 - 1], fill=BLUE)
        yu = round(uy1 - min(r["utilization"], UTIL_MAX) / UTIL_MAX * (uy1 - uy0))
        if yu < uy1:
            d.rectangle([a, yu, b, uy1 - 1], fill=ORANGE)
    # frames, x ticks every few layers, titles
    for box in ((cx0, cy0, cx1, cy1), (ux0, uy0, ux1, uy1)):
        d.rectangle(box, outline=INK)
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 10**9) if n / s <= 20)
    for i in range(0, n, step):
        x = round(cx0 + (i + 0.5) * slot)
        d.line([(x, uy1), (x, uy1 + 4)], fill=INK)
        d.text((x, uy1 + 6), str(i), fill=INK, font=font, anchor="mt")
    d.text(((ux0 + ux1) // 2, HEIGHT - 6), "layer index", fill=INK, font=font, anchor="mb")
    d.text(((cx0 + cx1) // 2, 8), f"{total['model']} on the programmable {total['array']} design "
                                  "(exact program timing)", fill=INK, font=font, anchor="mt")
    _vtext(img, d, (6, (cy0 + cy1) // 2), "cycles", font)
    _vtext(img, d, (6, (uy0 + uy1) // 2), "MACs / (R*C*cycles)", font)
    return img


def write(rows: list[dict], total: dict, path: Path) -> None:
    render(rows, total).save(path, format="PNG", optimize=False)
