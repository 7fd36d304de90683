"""A session's playlist for editorial: OpenTimelineIO, and a CMX 3600 EDL through the OTIO adapter.

One clip per item, in playlist order, referencing the item's media as an image sequence (the released EXRs when
the item was released, else its proxy JPEGs), at the show's rate (24000/1001 for 23.976) over the request's frames.
"""

import os
import re

import opentimelineio as otio

from generation.engine.sequence import to_hashes
from review.exrheader import fps_fraction
from review.models import ReviewSession
from review.sessions import session_summary


def _rate(session: ReviewSession) -> float:
    fps = fps_fraction(session.show.fps)
    return fps.numerator / fps.denominator


def _reference(pattern: str, first: int, last: int, rate: float) -> otio.schema.ImageSequenceReference:
    """``/x/shot_v001.####.exr`` → an image sequence reference: folder URL, prefix, suffix, padding, start."""
    match = re.search(r"#+", to_hashes(pattern))
    pattern = to_hashes(pattern)
    folder, prefix = os.path.split(pattern[:match.start()])
    return otio.schema.ImageSequenceReference(
        target_url_base="file://" + folder + "/", name_prefix=prefix, name_suffix=pattern[match.end():],
        start_frame=first, frame_step=1, rate=rate, frame_zero_padding=len(match.group(0)) if len(match.group(0)) > 1 else 0,
        available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(first, rate),
                                                otio.opentime.RationalTime(last - first + 1, rate)))


def playlist_timeline(session: ReviewSession) -> otio.schema.Timeline:
    rate = _rate(session)
    track = otio.schema.Track(name="dailies", kind=otio.schema.TrackKind.Video)
    for row in session_summary(session)["items"]:
        media = row["media"]
        first, last = media["first"], media["last"]
        source = otio.opentime.TimeRange(otio.opentime.RationalTime(first, rate),
                                         otio.opentime.RationalTime(last - first + 1, rate))
        reference = (_reference(media["pattern"], first, last, rate) if media["pattern"]
                     else otio.schema.MissingReference())
        clip = otio.schema.Clip(name=f"{row['shot']} {media['label']}", media_reference=reference,
                                source_range=source)
        clip.metadata["parallel_track"] = {"item": row["id"], "label": row["label"], "media": media["what"],
                                           "notes": [m["text"] for m in row["marks"] if m["kind"] == "note"]}
        track.append(clip)
    timeline = otio.schema.Timeline(name=session.name)
    timeline.tracks.append(track)
    timeline.metadata["parallel_track"] = {"session": session.pk, "show": session.show.code}
    return timeline


def playlist_otio(session: ReviewSession) -> str:
    return otio.adapters.write_to_string(playlist_timeline(session), "otio_json")


def playlist_edl(session: ReviewSession) -> str:
    """CMX 3600 through the otio-cmx3600-adapter plug-in (OTIO 0.18 ships no EDL adapter of its own)."""
    return otio.adapters.write_to_string(playlist_timeline(session), "cmx_3600")
