"""`abr token PLAYBACK_ID [--expires-in S]`: print a playback token for a signed playback id."""

from __future__ import annotations

import argparse
import sys

from core.config import get_settings


def cmd_token(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from core.db.engine import make_engine
    from core.errors import AbrError
    from core.services.playback import SigningKeys, create_playback_token

    settings = get_settings()
    keys = SigningKeys.from_settings(settings.signing_key, settings.signing_keys_previous, settings.signing_key_id)
    engine = make_engine(settings.resolved_database_url)
    try:
        with Session(engine) as session:
            token, expires_at = create_playback_token(
                session, playback_id=args.playback_id, expires_in=args.expires_in, keys=keys)
    except AbrError as exc:
        print(f"abr token: {exc.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(token)
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    print(f"expires {expires_at.isoformat().replace('+00:00', 'Z')}; "
          f"{base}/play/{args.playback_id}/master.m3u8?token={token}", file=sys.stderr)
    return 0
