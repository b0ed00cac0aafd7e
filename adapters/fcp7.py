"""Target `fcp7xml`: Final Cut Pro 7 XML (xmeml) for any Premiere and for Resolve, via otio-fcp-adapter.

The adapter writes `target_url` verbatim into `<pathurl>`, so we give it the form FCP7 and Premiere
write (`file://localhost/` + percent-encoded path). By default it declares audio files with an empty
`<media><audio/>`; Premiere then guesses the channel layout and may refuse to link a mono file, so
the `fcp_xml` metadata (which the adapter serializes back into XML) declares one mono channel, the
sample rate and bit depth, and a one-track exploded layout; alternate takes get `<enabled>FALSE`.
"""
from __future__ import annotations

import copy
from pathlib import Path

import opentimelineio as otio

from otio_foley.writeback import NAMESPACE, foley_clips, foley_tracks, media_path


def file_url(path: str) -> str:
    return "file://localhost" + Path(path).as_uri()[len("file://"):]


def for_fcp7(input_otio: otio.schema.Timeline) -> otio.schema.Timeline:
    """A copy of the foley timeline with the FCP7 XML declarations on our tracks and clips."""
    timeline = copy.deepcopy(input_otio)
    for track in foley_tracks(timeline):
        track.metadata["fcp_xml"] = {"@premiereTrackType": "Mono", "@currentExplodedTrackIndex": "0",
                                     "@totalExplodedTrackCount": "1"}
        if not track.enabled:  # the adapter ignores Track.enabled; xmeml mutes with <enabled>
            track.metadata["fcp_xml"]["enabled"] = "FALSE"
    for clip in foley_clips(timeline):
        info = clip.metadata.get(NAMESPACE, {})
        ref = clip.media_reference
        ref.target_url = file_url(media_path(ref.target_url))
        ref.metadata["fcp_xml"] = {"media": {"audio": {
            "samplecharacteristics": {"depth": str(info.get("bit_depth", 24)),
                                      "samplerate": str(info.get("sample_rate", 48000))},
            "channelcount": "1"}}}
        clip.metadata["fcp_xml"] = {"@premiereChannelType": "mono",
                                    "sourcetrack": {"mediatype": "audio", "trackindex": "1"}}
    return timeline


def write_to_string(input_otio: otio.schema.Timeline) -> str:
    return otio.adapters.write_to_string(for_fcp7(input_otio), "fcp_xml")
