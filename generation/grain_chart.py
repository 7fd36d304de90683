"""A plate's grain profile as a small chart for the shot page: amplitude against intensity per channel (log-log),
and the spectrum's shape. Numbers in, SVG polyline points out; no torch, no image I/O."""

import math

WIDTH, HEIGHT = 180, 64
CHANNELS = (("R", "#d55"), ("G", "#5a5"), ("B", "#58d"))


def _scale(values: list[float], size: float) -> list[float]:
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return [(v - low) / span * size for v in values]


def _points(xs: list[float], ys: list[float]) -> str:
    px, py = _scale(xs, WIDTH - 4), _scale(ys, HEIGHT - 4)
    return " ".join(f"{2 + x:.1f},{HEIGHT - 2 - y:.1f}" for x, y in zip(px, py, strict=True))


def grain_chart(profile: dict | None) -> dict:
    """``{"state": "unmeasured" | "none" | "measured", "curves": [...], "spectra": [...], "relative": "1.2 %"}``."""
    if profile is None:
        return {"state": "unmeasured"}
    channels = profile.get("channels") or []
    if not channels:
        return {"state": "none"}
    every_x = [math.log10(max(v, 1e-6)) for c in channels for v in c["intensity"]]
    every_y = [math.log10(max(v, 1e-7)) for c in channels for v in c["amplitude"]]
    curves, spectra = [], []
    for (name, colour), c in zip(CHANNELS, channels, strict=False):
        xs = [math.log10(max(v, 1e-6)) for v in c["intensity"]]
        ys = [math.log10(max(v, 1e-7)) for v in c["amplitude"]]
        # one scale for all three channels, so their curves compare
        pts = _points(xs + [min(every_x), max(every_x)], ys + [min(every_y), max(every_y)]).split()[:-2]
        curves.append({"name": name, "colour": colour, "points": " ".join(pts)})
        spectra.append({"name": name, "colour": colour,
                        "points": _points(list(range(len(c["spectrum"]))), [math.log10(max(v, 1e-4))
                                                                             for v in c["spectrum"]])})
    green = channels[1] if len(channels) > 1 else channels[0]
    relative = sorted(a / i for a, i in zip(green["amplitude"], green["intensity"], strict=True) if i > 0)
    median = relative[len(relative) // 2] if relative else 0.0
    return {"state": "measured", "curves": curves, "spectra": spectra, "relative": f"{100 * median:.1f} %",
            "width": WIDTH, "height": HEIGHT}
