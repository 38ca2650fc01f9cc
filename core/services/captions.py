"""Text tracks of an asset: upload (WebVTT or SRT), list, delete. Stateless; `session` first.

The database row is the record; the WebVTT file goes to `media/{asset}/text/{id}.vtt`
(so it is deleted with the asset and served by the origin); `presentation.json`
carries the list for the manifests and is rewritten from the rows after every
change. A transcode that is still running rewrites `presentation.json` from
its own copy, so it re-reads the rows once more when it finishes
(`sync_text_tracks`).
"""

from __future__ import annotations

import json
import logging
import re

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from core import layout
from core.db.models import Asset
from core.db.models_media import TextTrackRow
from core.errors import Conflict, NotFound
from core.media.captions import check_language, to_webvtt
from core.media.model import Presentation, TextTrack
from core.storage import Storage

log = logging.getLogger(__name__)
MAX_TRACKS_PER_ASSET = 50
TRACK_ID = re.compile(r"^tt_[a-z0-9]{1,37}$")


def text_key(asset_id: str, track_id: str) -> str:
    return layout.media_key(asset_id, TextTrack(track_id, "und", "").uri)


def as_text_track(row: TextTrackRow) -> TextTrack:
    return TextTrack(id=row.id, language=row.language, name=row.name, default=row.is_default)


def list_text_tracks(session: Session, asset_id: str) -> list[TextTrackRow]:
    return list(session.exec(select(TextTrackRow).where(TextTrackRow.asset_id == asset_id)
                             .order_by(TextTrackRow.created_at, TextTrackRow.id)).all())


def get_text_track(session: Session, asset_id: str, track_id: str) -> TextTrackRow:
    row = session.get(TextTrackRow, track_id)
    if row is None or row.asset_id != asset_id:
        raise NotFound(f"no text track {track_id} on asset {asset_id}")
    return row


def add_text_track(session: Session, storage: Storage, *, asset_id: str, data: bytes, filename: str,
                   language: str, name: str | None, default: bool) -> TextTrackRow:
    """Validate (422 with the reason), convert SRT, store the WebVTT, record the row, update the manifests."""
    if session.get(Asset, asset_id) is None:
        raise NotFound(f"no asset {asset_id}")
    language = check_language(language)
    vtt = to_webvtt(data, filename)
    count = session.exec(select(func.count()).select_from(TextTrackRow)
                         .where(TextTrackRow.asset_id == asset_id)).one()
    if count >= MAX_TRACKS_PER_ASSET:
        raise Conflict(f"an asset holds at most {MAX_TRACKS_PER_ASSET} text tracks; delete one first")
    is_srt = not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"WEBVTT")
    row = TextTrackRow(asset_id=asset_id, language=language, name=(name or "").strip()[:200] or language,
                       is_default=default, source_format="srt" if is_srt else "vtt", cues=len(vtt.cues))
    if default:  # one default per asset: the newest wins
        for other in list_text_tracks(session, asset_id):
            if other.is_default:
                other.is_default = False
                session.add(other)
    # The file goes in before the row commits: a crash leaves an orphan file, never a row without one.
    storage.put_bytes(text_key(asset_id, row.id), vtt.text.encode(), content_type="text/vtt")
    session.add(row)
    session.commit()
    session.refresh(row)
    update_presentation(session, storage, asset_id)
    return row


def delete_text_track(session: Session, storage: Storage, *, asset_id: str, track_id: str) -> None:
    row = get_text_track(session, asset_id, track_id)
    session.delete(row)
    session.commit()
    update_presentation(session, storage, asset_id)
    storage.delete(text_key(asset_id, track_id))


def update_presentation(session: Session, storage: Storage, asset_id: str) -> None:
    """Rewrite `presentation.json`'s text tracks from the rows; nothing to do before it exists."""
    key = layout.presentation_key(asset_id)
    if not storage.exists(key):
        return  # the transcode writes it, and reads the rows when it finishes
    presentation = Presentation.from_dict(json.loads(storage.get_bytes(key)))
    presentation.text_tracks = [as_text_track(r) for r in list_text_tracks(session, asset_id)]
    data = json.dumps(presentation.to_dict(), separators=(",", ":")).encode()
    storage.put_bytes(key, data, content_type="application/json")


def sync_text_tracks(engine: Engine, asset_id: str, presentation: Presentation) -> None:
    """Set `presentation.text_tracks` from the rows (the transcode calls this before its last write)."""
    with Session(engine) as session:
        presentation.text_tracks = [as_text_track(r) for r in list_text_tracks(session, asset_id)]
