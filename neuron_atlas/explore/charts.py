"""The explorer's charts as inline SVG strings: large matrices as a pixel image inside the SVG, small ones as shapes.

Colours come from two fixed ramps (white → blue for counts, white → red for overlaps) so zero reads as blank;
interactive tooltips are data attributes read by ``assets/explore.js`` (no script inside the SVG).
"""
from __future__ import annotations

import base64
import struct
import zlib
from html import escape

import numpy as np

BLUES = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"]
REDS = ["#fff7ec", "#fdd49e", "#fc8d59", "#d7301f", "#7f0000"]
# one colour per script group, the nine largest; the bands beside the matrices
GROUP_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f"]
OTHER_COLOUR = "#bab0ac"  # the groups beyond the first nine share grey (their name is in the tooltip)
FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'


def ramp(values: np.ndarray, vmax: float, colours: list[str]) -> np.ndarray:
    """RGB uint8 [..., 3] for values in [0, vmax] along the ramp; zero maps to the first (near-white) colour."""
    anchors = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in colours], dtype=np.float64)
    t = np.clip(np.asarray(values, dtype=np.float64) / (vmax if vmax > 0 else 1.0), 0, 1) * (len(colours) - 1)
    lo = np.minimum(np.floor(t).astype(np.int64), len(colours) - 2)
    frac = (t - lo)[..., None]
    return np.rint(anchors[lo] * (1 - frac) + anchors[lo + 1] * frac).astype(np.uint8)


def png(rgb: np.ndarray) -> bytes:
    """A truecolour PNG of an [h, w, 3] uint8 array (zlib only, no imaging library)."""
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), np.ascontiguousarray(rgb, np.uint8).reshape(h, w * 3)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))


def _legend(ident: str, x: float, y: float, vmax: float, colours: list[str], label: str, fmt: str = "{:.0f}",
            mid: float | None = None) -> str:
    """A colour bar from 0 to ``vmax`` (and the value at its middle, ``mid``, for a non-linear scale)."""
    stops = "".join(f'<stop offset="{i / (len(colours) - 1):.2f}" stop-color="{c}"/>' for i, c in enumerate(colours))
    gid = f"{ident}-ramp"
    return (f'<defs><linearGradient id="{gid}">{stops}</linearGradient></defs>'
            f'<rect x="{x}" y="{y}" width="160" height="10" fill="url(#{gid})" stroke="#999" stroke-width="0.5"/>'
            f'<text x="{x}" y="{y + 22}" font-size="11">0</text>'
            f'<text x="{x + 160}" y="{y + 22}" font-size="11" text-anchor="end">{escape(fmt.format(vmax))}</text>'
            + (f'<text x="{x + 80}" y="{y + 22}" font-size="11" text-anchor="middle">{escape(fmt.format(mid))}</text>'
               if mid is not None else "")
            + f'<text x="{x + 170}" y="{y + 9}" font-size="11">{escape(label)}</text>')


def group_colours(groups: list[str]) -> dict[str, str]:
    """One colour per group (script), the most frequent first, so every chart of a page colours a script alike."""
    counts: dict[str, int] = {}
    for g in groups:
        counts[g] = counts.get(g, 0) + 1
    ranked = sorted(counts, key=lambda g: (-counts[g], g))
    return {g: GROUP_COLOURS[i] if i < len(GROUP_COLOURS) else OTHER_COLOUR for i, g in enumerate(ranked)}


def _bands(groups: list[str], x: float, y: float, step: float, along: str, thickness: float = 8,
           colours: dict[str, str] | None = None) -> str:
    """Coloured runs marking consecutive items of the same group (script), with the group name as tooltip."""
    out, start = [], 0
    colours = colours or group_colours(groups)
    for i in range(1, len(groups) + 1):
        if i == len(groups) or groups[i] != groups[start]:
            colour = colours[groups[start]]
            n = i - start
            tip = escape(f"{groups[start]}: {n} language{'s' if n > 1 else ''}")
            if along == "y":
                out.append(f'<rect x="{x}" y="{y + start * step:.1f}" width="{thickness}" height="{n * step:.1f}" '
                           f'fill="{colour}" data-tip="{tip}"/>')
            else:
                out.append(f'<rect x="{x + start * step:.1f}" y="{y}" width="{n * step:.1f}" height="{thickness}" '
                           f'fill="{colour}" data-tip="{tip}"/>')
            start = i
    return "".join(out)


def layer_heatmap(counts: np.ndarray, row_labels: list[str], row_titles: list[str], groups: list[str],
                  links: list[str], caption: str, ident: str, colours: dict[str, str] | None = None) -> str:
    """Neurons per layer (columns) for every language (rows, in the given order) as one image with labelled axes."""
    n_rows, n_layers = counts.shape
    cw, ch, left, top = 20, 11, 190, 56
    width, height = max(left + n_layers * cw + 20, left + 430), top + n_rows * ch + 10  # room for the legend
    vmax = float(max(counts.max(), 1))  # square-root colour scale: a few dense layers must not wash out the rest
    rgb = ramp(np.sqrt(counts), np.sqrt(vmax), BLUES)
    image = base64.b64encode(png(np.repeat(np.repeat(rgb, ch, axis=0), cw, axis=1))).decode()
    values = base64.b64encode(np.ascontiguousarray(counts, dtype="<u4").tobytes()).decode()
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart raster" id="{ident}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" {FONT} data-x0="{left}" data-y0="{top}" data-cw="{cw}" data-ch="{ch}" '
           f'data-nrows="{n_rows}" data-ncols="{n_layers}" data-values="{values}" data-dtype="u4" '
           f'data-rows="{escape(",".join(row_titles))}" data-cols="{",".join(f"layer {i}" for i in range(n_layers))}" '
           f'data-unit="neurons" role="img" aria-label="{escape(caption)}">'),
           _legend(ident, left, 6, vmax, BLUES, "neurons in the layer (square-root scale)", mid=vmax / 4),
           (f'<image x="{left}" y="{top}" width="{n_layers * cw}" height="{n_rows * ch}" preserveAspectRatio="none" '
           f'href="data:image/png;base64,{image}"/>')]
    for j in range(n_layers):
        if n_layers <= 20 or j % 2 == 0:
            out.append(f'<text x="{left + j * cw + cw / 2}" y="{top - 4}" font-size="9" text-anchor="middle">{j}</text>')
    out.append(f'<text x="{left + n_layers * cw / 2}" y="{top - 16}" font-size="11" text-anchor="middle">layer</text>')
    out.append(_bands(groups, 2, top, ch, "y", colours=colours))
    for i, (label, link) in enumerate(zip(row_labels, links)):  # labels: short names, at most ~30 characters
        out.append(f'<a href="{escape(link)}"><text x="{left - 4}" y="{top + i * ch + ch - 2}" font-size="9" '
                   f'text-anchor="end">{escape(label)}</text></a>')
    out.append("</svg>")
    return "".join(out)


def similarity_map(matrix: np.ndarray, labels: list[str], titles: list[str], groups: list[str], caption: str,
                   ident: str, cell: int, links: list[str] | None = None, colours: dict[str, str] | None = None,
                   unit: str = "Jaccard", legend: str = "Jaccard overlap") -> str:
    """A symmetric [0, 1] matrix in the given order; labels drawn when cells are large enough to read them."""
    n = matrix.shape[0]
    show = cell >= 9
    left = 180 if show else 16
    top = 80 if show else 40
    size = n * cell
    width, height = left + size + (300 if show else 20), top + size + 10
    vmax = float(max(np.max(matrix[~np.eye(n, dtype=bool)]) if n > 1 else 1.0, 1e-9))
    image = base64.b64encode(png(np.repeat(np.repeat(ramp(matrix, vmax, REDS), cell, axis=0), cell, axis=1))).decode()
    values = base64.b64encode(np.ascontiguousarray(np.rint(matrix * 10000), dtype="<u2").tobytes()).decode()
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart raster" id="{ident}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" {FONT} data-x0="{left}" data-y0="{top}" data-cw="{cell}" data-ch="{cell}" '
           f'data-nrows="{n}" data-ncols="{n}" data-values="{values}" data-dtype="u2" data-scale="10000" '
           f'data-rows="{escape(",".join(titles))}" data-cols="{escape(",".join(titles))}" data-unit="{escape(unit)}" '
           f'role="img" aria-label="{escape(caption)}">'),
           _legend(ident, left + size + 16 if show else left + 12, top if show else 4, vmax, REDS, legend,
                   "{:.2f}"),
           (f'<image x="{left}" y="{top}" width="{size}" height="{size}" preserveAspectRatio="none" '
           f'href="data:image/png;base64,{image}"/>'),
           _bands(groups, 2 if not show else left - 10, top, cell, "y", 8 if show else 10, colours),
           _bands(groups, left, top - 10 if show else 26, cell, "x", 8 if show else 10, colours)]
    if show:
        for i, label in enumerate(labels):
            text = escape(label)
            ref = links[i] if links else None
            y_lab = f'<text x="{left - 14}" y="{top + i * cell + cell - 3}" font-size="{min(cell - 2, 11)}" text-anchor="end">{text}</text>'
            x_lab = (f'<text transform="translate({left + i * cell + cell - 3},{top - 14}) rotate(-60)" '
                     f'font-size="{min(cell - 2, 11)}">{escape(label.rsplit(" ", 1)[-1])}</text>')  # the tag
            out.append(f'<a href="{escape(ref)}">{y_lab}</a>' if ref else y_lab)
            out.append(x_lab)
    out.append("</svg>")
    return "".join(out)


def stacked_bars(rows: list[str], parts: list[tuple[str, str, list[int]]], total: int, caption: str) -> str:
    """Horizontal bars, one per row, split into parts (name, colour, values); a legend on top."""
    left, bar_h, gap, top, width = 150, 20, 8, 34, 420
    height = top + len(rows) * (bar_h + gap) + 6
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{left + width + 70}" height="{height}" '
           f'viewBox="0 0 {left + width + 70} {height}" {FONT} role="img" aria-label="{escape(caption)}">')]
    x = left
    for name, colour, _ in parts:
        out.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/>'
                   f'<text x="{x + 16}" y="16" font-size="11">{escape(name)}</text>')
        x += 24 + 7 * len(name)
    for i, row in enumerate(rows):
        y = top + i * (bar_h + gap)
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 6}" font-size="12" text-anchor="end">{escape(row)}</text>')
        x = float(left)
        for name, colour, values in parts:
            w = width * values[i] / max(total, 1)
            if w > 0:
                out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}" '
                           f'data-tip="{escape(f"{row}: {values[i]} languages {name}")}"/>')
                if w > 26:
                    out.append(f'<text x="{x + w / 2:.1f}" y="{y + bar_h - 6}" font-size="11" text-anchor="middle" '
                               f'fill="#fff" pointer-events="none">{values[i]}</text>')
            x += w
    out.append("</svg>")
    return "".join(out)


def layer_grid(rows: list[str], counts: np.ndarray, caption: str) -> str:
    """Small per-layer count table as coloured cells with the count written in each (rows: variants)."""
    n_rows, n_layers = counts.shape
    cw, ch, left, top = 24, 20, 150, 22
    width, height = left + n_layers * cw + 60, top + n_rows * ch + 4
    vmax = float(max(counts.max(), 1))
    rgb = ramp(counts, vmax, BLUES)
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" {FONT} role="img" aria-label="{escape(caption)}">')]
    for j in range(n_layers):
        out.append(f'<text x="{left + j * cw + cw / 2}" y="{top - 6}" font-size="10" text-anchor="middle">{j}</text>')
    out.append(f'<text x="{left + n_layers * cw + 8}" y="{top - 6}" font-size="10">total</text>')
    for i, row in enumerate(rows):
        y = top + i * ch
        out.append(f'<text x="{left - 6}" y="{y + ch - 6}" font-size="11" text-anchor="end">{escape(row)}</text>')
        for j in range(n_layers):
            v = int(counts[i, j])
            fill = "#{:02x}{:02x}{:02x}".format(*rgb[i, j])
            ink = "#fff" if v > vmax * 0.55 else "#222"
            out.append(f'<rect x="{left + j * cw}" y="{y}" width="{cw - 1}" height="{ch - 1}" fill="{fill}" '
                       f'data-tip="{escape(f"{row}, layer {j}: {v} neurons")}"/>')
            if v:
                out.append(f'<text x="{left + j * cw + cw / 2}" y="{y + ch - 6}" font-size="9" text-anchor="middle" '
                           f'fill="{ink}" pointer-events="none">{v}</text>')
        out.append(f'<text x="{left + n_layers * cw + 8}" y="{y + ch - 6}" font-size="11">{int(counts[i].sum())}</text>')
    out.append("</svg>")
    return "".join(out)


def share_bars(labels: list[str], titles: list[str], values: list[float], links: list[str], caption: str) -> str:
    """Horizontal bars of shares in [0, 1], one per labelled row linking to its page."""
    left, bar_h, gap, top, width = 210, 16, 5, 8, 360
    height = top + len(labels) * (bar_h + gap) + 20
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{left + width + 60}" height="{height}" '
           f'viewBox="0 0 {left + width + 60} {height}" {FONT} role="img" aria-label="{escape(caption)}">')]
    for i, (label, title, v, link) in enumerate(zip(labels, titles, values, links)):
        y = top + i * (bar_h + gap)
        out.append(f'<a href="{escape(link)}"><text x="{left - 6}" y="{y + bar_h - 4}" font-size="12" '
                   f'text-anchor="end">{escape(label)}</text></a>'
                   f'<rect x="{left}" y="{y}" width="{max(width * v, 1):.1f}" height="{bar_h}" fill="#d7301f" '
                   f'data-tip="{escape(f"{title}: {v:.0%}")}"/>'
                   f'<text x="{left + width * v + 4:.1f}" y="{y + bar_h - 4}" font-size="11">{v:.0%}</text>')
    y = top + len(labels) * (bar_h + gap) + 12
    for t in (0, 0.5, 1):
        out.append(f'<text x="{left + width * t}" y="{y}" font-size="10" text-anchor="middle">{t:.0%}</text>')
    out.append("</svg>")
    return "".join(out)
