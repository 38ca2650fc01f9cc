"""A fabricated asset for origin tests: DB rows, playback ids, presentation.json and segment bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.db.models import Asset, PlaybackId, new_id
from core.layout import media_key, presentation_key, source_key
from core.media.model import Presentation
from core.storage import Storage
from tests.core.media.manifests.conftest import build_presentation


@dataclass
class Fabricated:
    asset_id: str
    public_id: str
    signed_id: str
    files: dict[str, bytes] = field(default_factory=dict)  # relative path → bytes


def segment_bytes(relative: str, size: int = 3000) -> bytes:
    unit = (relative + "|").encode()
    return (unit * (size // len(unit) + 1))[:size]


def write_presentation(storage: Storage, asset_id: str, presentation: Presentation) -> None:
    storage.put_bytes(presentation_key(asset_id), json.dumps(presentation.to_dict()).encode())


def fabricate(engine: Engine, storage: Storage, *, presentation: Presentation | None = None,
              segment_size: int = 3000) -> Fabricated:
    presentation = presentation or build_presentation()
    with Session(engine) as session:
        asset = Asset(status="ready", playable=True)
        session.add(asset)
        session.flush()
        public = PlaybackId(id=new_id("", 24), asset_id=asset.id, policy="public")
        signed = PlaybackId(id=new_id("", 24), asset_id=asset.id, policy="signed")
        session.add_all([public, signed])
        session.commit()
        made = Fabricated(asset.id, public.id, signed.id)
    for track in presentation.tracks:
        names = [track.init_uri] + [track.segment_uri(s.number) for s in track.segments]
        for relative in names:
            data = segment_bytes(relative, segment_size)
            storage.put_bytes(media_key(made.asset_id, relative), data)
            made.files[relative] = data
    storage.put_bytes(source_key(made.asset_id), b"the original upload, never served")
    write_presentation(storage, made.asset_id, presentation)
    return made
