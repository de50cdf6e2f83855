"""Inline SVG line charts (no JavaScript, no external resources, printable). Text is XML-escaped."""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from xml.sax.saxutils import escape

PALETTE = ("#1f4e79", "#c0392b", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#2c3e50")


@dataclass(frozen=True)
class Series:
    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    dashed: bool = False
    dotted: bool = False    # a bound rather than a measurement (the certified lower bound)
    hatched: bool = False   # the band low..high is hatched (what is not known) instead of a light fill (a CI)
    color: str = ""         # "" takes the palette's colour of the series' position


def _scales(left, top, pw, ph, xr, yr):
    """Data -> pixel maps of a plot area (x to the right, y upwards)."""
    (x0, x1), (y0, y1) = xr, yr
    return (lambda v: left + (v - x0) / ((x1 - x0) or 1) * pw,
            lambda v: top + (1 - (v - y0) / ((y1 - y0) or 1)) * ph)


def _frame(title: str, width: int, height: int, left: float, top: float, pw: float, ph: float) -> list[str]:
    """The opening of a chart: the svg element, its accessible title, the visible title and the plot frame."""
    return [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
            f"<title>{escape(title)}</title>",
            f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
            f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>']


MARKERS = ("circle", "square", "triangle", "diamond", "cross", "triangle-down")


def marker(i: int, cx: float, cy: float, r: float, color: str, extra: str = "") -> str:
    """The i-th series' marker: shapes differ as well as colours (readable without colour, WCAG 1.4.1)."""
    kind = MARKERS[i % len(MARKERS)]
    tag = f'data-marker="{kind}" fill="{color}"{extra}'
    if kind == "circle":
        return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r}" {tag}/>'
    if kind == "square":
        return f'<rect x="{cx - r:.1f}" y="{cy - r:.1f}" width="{2 * r}" height="{2 * r}" {tag}/>'
    pts = {"triangle": [(0, -1.2), (1.1, 0.9), (-1.1, 0.9)], "triangle-down": [(0, 1.2), (1.1, -0.9), (-1.1, -0.9)],
           "diamond": [(0, -1.3), (1.3, 0), (0, 1.3), (-1.3, 0)],
           "cross": [(-0.4, -1.2), (0.4, -1.2), (0.4, -0.4), (1.2, -0.4), (1.2, 0.4), (0.4, 0.4), (0.4, 1.2),
                     (-0.4, 1.2), (-0.4, 0.4), (-1.2, 0.4), (-1.2, -0.4), (-0.4, -0.4)]}[kind]
    points = " ".join(f"{cx + a * r:.1f},{cy + b * r:.1f}" for a, b in pts)
    return f'<polygon points="{points}" {tag}/>'


def _band(s: Series, color: str, px, py, pattern_id: str) -> list[str]:
    """The area between ``s.low`` and ``s.high``: a light fill (a confidence interval), or hatched in the series'
    colour (the region between a lower bound and a measurement: unknown)."""
    band = [(px(a), py(b)) for a, b in zip(s.x, s.high, strict=False)] + \
           [(px(a), py(b)) for a, b in reversed(list(zip(s.x, s.low, strict=False)))]
    pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in band)
    if not s.hatched:
        return [f'<polygon points="{pts}" fill="{color}" fill-opacity="0.12" stroke="none"/>']
    return [f'<defs><pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
            f'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="{color}" stroke-width="1.5" '
            f'stroke-opacity="0.45"/></pattern></defs>',
            f'<polygon points="{pts}" fill="url(#{pattern_id})" stroke="none" data-band="unknown"/>']


def line_chart(series: list[Series], *, title: str, x_label: str, y_label: str, width: int = 560,
               height: int = 300, y_range: tuple[float, float] = (0.0, 1.0),
               hline: tuple[float, str] | None = None) -> str:
    left, right, top, bottom = 56, 150, 28, 44
    pw, ph = width - left - right, height - top - bottom
    xs = [v for s in series for v in s.x] or [0.0, 1.0]
    x0, x1 = min(min(xs), 0.0), max(xs) or 1.0
    y0, y1 = y_range
    px, py = _scales(left, top, pw, ph, (x0, x1), (y0, y1))
    out = _frame(title, width, height, left, top, pw, ph)
    for i in range(6):
        v = y0 + (y1 - y0) * i / 5
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.0%}</text>')
    ticks = sorted(set(xs))
    if len(ticks) > 8:  # dense data (e.g. reliability bins): evenly spaced ticks instead of every value
        ticks = [x0 + (x1 - x0) * i / 5 for i in range(6)]
    for v in ticks:
        out.append(f'<text x="{px(v):.1f}" y="{top + ph + 16}" text-anchor="middle">{v:.3g}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
               f"{escape(y_label)}</text>")
    if hline is not None:
        v, label = hline
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#999" '
                   f'stroke-dasharray="2 3"/><text x="{left + 4}" y="{py(v) - 4:.1f}" text-anchor="start" '
                   f'fill="#666">{escape(label)}</text>')
    # pattern ids unique among the charts of one page, and among two audits' charts shown in one notebook
    uid = f"{zlib.crc32(repr((title, series)).encode('utf-8')):08x}"
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        if s.low and s.high:
            out.extend(_band(s, color, px, py, f"hatch-{uid}-{i}"))
        pts = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(s.x, s.y, strict=False))
        dash = ' stroke-dasharray="1.5 3"' if s.dotted else ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for a, b in zip(s.x, s.y, strict=False):
            out.append(marker(i, px(a), py(b), 3, color))
        ly = top + 12 + i * 16
        out.append(f'<line x1="{left + pw + 10}" x2="{left + pw + 28}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"{dash}/>')
        out.append(marker(i, left + pw + 19, ly - 4, 3, color))
        out.append(f'<text x="{left + pw + 32}" y="{ly}">{escape(s.label)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def scatter_chart(points: list[tuple[str, float, float, bool]], *, title: str, x_label: str, y_label: str,
                  width: int = 560, height: int = 300) -> str:
    """One labelled point per (label, x, y, highlighted); both axes are proportions zoomed to the data."""
    left, right, top, bottom = 56, 150, 28, 44
    pw, ph = width - left - right, height - top - bottom
    xs, ys = [p[1] for p in points] or [0.0], [p[2] for p in points] or [0.0]
    x0, x1 = max(0.0, min(xs) - 0.05), min(1.0, max(xs) + 0.02)
    y0, y1 = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.05)
    px, py = _scales(left, top, pw, ph, (x0, x1), (y0, y1))
    out = _frame(title, width, height, left, top, pw, ph)
    for i in range(5):
        xv, yv = x0 + (x1 - x0) * i / 4, y0 + (y1 - y0) * i / 4
        out.append(f'<text x="{px(xv):.1f}" y="{top + ph + 16}" text-anchor="middle">{xv:.0%}</text>')
        out.append(f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" text-anchor="end">{yv:.0%}</text>')
    out.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
               f"{escape(y_label)}</text>")
    for i, (label, x, y, hi) in enumerate(points):
        color = PALETTE[i % len(PALETTE)]
        ring = ' stroke="#000" stroke-width="2"' if hi else ""
        out.append(marker(i, px(x), py(y), 6 if hi else 4, color, ring))
        ly = top + 12 + i * 16
        out.append(marker(i, left + pw + 18, ly - 4, 4, color))
        out.append(f'<text x="{left + pw + 28}" y="{ly}">{escape(label + (" (best)" if hi else ""))}</text>')
    out.append("</svg>")
    return "\n".join(out)
