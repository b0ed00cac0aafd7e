"""Target `otioz`: the Resolve timeline and its stems in one .otioz bundle (Resolve links them on import).

OTIO's own otioz writer bundles every media file of the timeline (the editor's camera originals
too) and fails on any that is not on disk; we bundle only the stems and leave the edit's own media
as the plain absolute paths Resolve conforms against. The layout is OTIO's: version.txt,
content.otio, media/<file>.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import opentimelineio as otio
from opentimelineio.adapters import file_bundle_utils as bundle

from otio_foley.writeback import foley_clips, media_path

from otio_foley.adapters.resolve import for_resolve


def write_to_file(input_otio: otio.schema.Timeline, filepath: str) -> None:
    timeline = for_resolve(input_otio)
    files: dict[str, Path] = {}
    for clip in foley_clips(timeline):
        ref = clip.media_reference
        path = Path(media_path(ref.target_url))
        inner = f"{bundle.BUNDLE_DIR_NAME}/{path.name}"
        if files.setdefault(inner, path) != path:
            raise ValueError(f"two stems share the file name {path.name}: {files[inner]} and {path}")
        ref.target_url = inner
    with zipfile.ZipFile(filepath, mode="x") as archive:
        archive.writestr(bundle.BUNDLE_VERSION_FILE, bundle.BUNDLE_VERSION, zipfile.ZIP_DEFLATED)
        archive.writestr(bundle.BUNDLE_PLAYLIST_PATH, otio.adapters.write_to_string(timeline, "otio_json"),
                         zipfile.ZIP_DEFLATED)
        for inner, path in files.items():
            archive.write(path, inner, zipfile.ZIP_STORED)  # PCM barely compresses; keep it seekable
