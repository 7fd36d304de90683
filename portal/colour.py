"""A show's colour settings, resolved against its OCIO config."""

from dataclasses import dataclass

from generation.engine import colour
from portal.models import Show


@dataclass(frozen=True)
class ShowColour:
    config: str
    working_space: str
    display: str
    view: str


def show_colour(show: Show, *, display: str = "", view: str = "") -> ShowColour:
    config = colour.resolve_config_name(show.ocio_config or None)
    default_display, default_view = colour.default_display_view(config)
    display = display or show.display or default_display
    if not view:
        view = show.view if display == (show.display or default_display) and show.view else ""
        view = view or (default_view if display == default_display else colour.displays_and_views(config)[display][0])
    return ShowColour(config=config, working_space=show.working_space, display=display, view=view)
