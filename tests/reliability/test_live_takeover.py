"""Live stream leases: the takeover pass frees a silent worker's stream exactly once, a claim is atomic,
and a run reloads what a dead run published (core/live/takeover.py), against SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

from sqlmodel import Session

from core import layout
from core.db.models import utcnow
from core.db.models_live import LiveStream
from core.live.plan import LivePlan, plan_from_dict
from core.live.publisher import LivePublisher
from core.live.session import LiveConfig, LiveRun
from core.live.takeover import LeasePolicy, merge_tracks, reclaim, restore_state
from core.media.live_model import RECORDING_PRESENTATION, LivePresentation, Period
from core.media.model import Ladder, Presentation, Rendition, Segment, Track
from core.storage.local import LocalStorage

POLICY = LeasePolicy(heartbeat_interval=1, takeover_after=5)


def _stream(engine, **fields) -> str:
    with Session(engine) as s:
        row = LiveStream(stream_key=f"sk_{utcnow().timestamp()}_{len(fields)}_{id(fields)}", **fields)
        s.add(row)
        s.commit()
        return row.id


def _row(engine, stream_id) -> LiveStream:
    with Session(engine) as s:
        return s.get(LiveStream, stream_id)


def test_reclaim_frees_only_silent_live_streams_once(engine):
    old, now = utcnow() - timedelta(seconds=30), utcnow()
    silent = _stream(engine, status="active", worker_id="dead", heartbeat_at=old)
    reconnecting = _stream(engine, status="reconnecting", worker_id="dead2", heartbeat_at=old)
    alive = _stream(engine, status="active", worker_id="alive", heartbeat_at=now)
    freed_but_lost = _stream(engine, status="active", worker_id=None, heartbeat_at=old)  # its message was lost
    _stream(engine, status="idle", heartbeat_at=old)  # nobody owns an idle stream
    _stream(engine, status="ended", worker_id="done", heartbeat_at=old)
    sent: list[str] = []
    assert sorted(reclaim(engine, sent.append, POLICY)) == sorted([silent, reconnecting, freed_but_lost]) == sorted(sent)
    assert _row(engine, silent).worker_id is None and _row(engine, alive).worker_id == "alive"
    assert reclaim(engine, sent.append, POLICY) == []  # freed, not freed again while the next run claims it


def _run(engine, tmp_path, stream_id) -> LiveRun:
    config = LiveConfig(ffmpeg="ffmpeg", work_dir=tmp_path, rtmp_pull_base="rtmp://127.0.0.1/live", lease=POLICY)
    return LiveRun(engine, LocalStorage(tmp_path / "media"), config, stream_id)


def test_a_fresh_lease_is_kept_and_a_freed_stream_is_claimed_by_one_run(engine, tmp_path):
    stream_id = _stream(engine, status="active", worker_id="owner", heartbeat_at=utcnow())
    assert _run(engine, tmp_path, stream_id)._claim() is None  # the owner is alive
    reclaim(engine, lambda _: None, LeasePolicy(heartbeat_interval=1, takeover_after=1e-3))
    first, second = _run(engine, tmp_path, stream_id), _run(engine, tmp_path, stream_id)
    assert first._claim() is not None and first.previous_worker is None
    assert second._claim() is None  # the message redelivered and the reconciler's: one run only
    assert _row(engine, stream_id).worker_id == first.run_id


def test_a_stale_lease_is_taken_directly_and_the_old_run_learns_it(engine, tmp_path):
    stream_id = _stream(engine, status="active", worker_id="x", heartbeat_at=utcnow() - timedelta(seconds=30))
    old, new = _run(engine, tmp_path, stream_id), _run(engine, tmp_path, stream_id)
    with Session(engine) as s:  # `old` owned it, then stalled past its lease
        row = s.get(LiveStream, stream_id)
        row.worker_id, row.heartbeat_at = old.run_id, utcnow() - timedelta(seconds=30)
        s.add(row)
        s.commit()
    assert new._claim() is not None and new.previous_worker == old.run_id
    assert old._should_stop() and old._superseded  # it stops without ending or recording the stream


def _track(rid: str, numbers: range) -> Track:
    return Track(rendition=Rendition(id=rid, codec="h264", width=320, height=180), codecs="avc1.42c00d",
                 container="mp4", timescale=1000,
                 segments=[Segment(number=n, start=(n - 1) * 1000, duration=1000, size=10) for n in numbers])


def test_merge_extends_the_window_backwards_with_the_recording():
    live = LivePresentation(presentation=Presentation(segment_duration=1, tracks=[_track("v", range(16, 21))]),
                            periods=[Period("p0", 10.0, 1000.0)])
    recorded = Presentation(segment_duration=1, tracks=[_track("v", range(1, 18))], complete=True)
    [track] = merge_tracks(live, recorded)
    assert [s.number for s in track.segments] == list(range(1, 21)) and not track.complete
    [only_live] = merge_tracks(live, None)
    assert [s.number for s in only_live.segments] == list(range(16, 21))


def test_restore_reloads_and_the_publisher_continues_after_the_last_segment(tmp_path):
    storage = LocalStorage(tmp_path)
    live = LivePresentation(presentation=Presentation(segment_duration=1, tracks=[_track("v", range(3, 6))]),
                            periods=[Period("p0", 10.0, 1000.0)])
    key = lambda rel: layout.media_key("ls_x", rel)  # noqa: E731
    storage.put_bytes(key("live.json"), json.dumps(live.to_dict()).encode())
    storage.put_bytes(key(RECORDING_PRESENTATION), json.dumps(
        Presentation(segment_duration=1, tracks=[_track("v", range(1, 4))], complete=True).to_dict()).encode())
    storage.put_bytes(key("v/init.mp4"), b"init")
    published = restore_state(storage, "ls_x")
    assert published is not None and published.inits == {"v": b"init"} and published.periods == live.periods
    publisher = LivePublisher(storage, "ls_x", segment_duration=1, dvr_window=30, record=True)
    publisher.restore(published.tracks, published.periods, published.inits)
    assert publisher.segment_count == 5 and publisher.media_end == 5.0
    # The merged list is written back at once: a second crash loses nothing either.
    rewritten = Presentation.from_dict(json.loads(storage.get_bytes(key(RECORDING_PRESENTATION))))
    assert [s.number for s in rewritten.tracks[0].segments] == [1, 2, 3, 4, 5]
    assert restore_state(LocalStorage(tmp_path / "empty"), "ls_x") is None


def test_plan_round_trips_through_the_row():
    video = Rendition(id="h264-360p", codec="h264", width=640, height=360, bitrate=800_000,
                      frame_rate=Fraction(30000, 1001))
    audio = Rendition(id="audio", codec="aac", channels=2, sample_rate=48000, bitrate=128_000)
    plan = LivePlan(ladder=Ladder(codec="h264", renditions=(video,)), audio=audio, frame_rate=Fraction(30000, 1001))
    stored = {**plan.to_dict(), "frame_plugins": {"lagging": False}}  # the row's plan also carries health
    assert plan_from_dict(json.loads(json.dumps(stored))) == plan


def test_record_write_period_fits_inside_a_short_window(tmp_path: Path):
    """With a window of 3 segments, recording.json is written every 2: the window always overlaps it."""
    publisher = LivePublisher(LocalStorage(tmp_path), "ls_y", segment_duration=2, dvr_window=6, record=True)
    publisher.tracks = {"v": _track("v", range(1, 3))}
    publisher._order = ["v"]
    publisher._since_recording = 2
    publisher.publish()
    assert publisher._since_recording == 0


def test_a_takeover_reloads_the_encrypted_streams_key_never_makes_one(engine, tmp_path):
    """Every run of an encrypted stream (the first, a reconnect's, a takeover's) loads the key made with the
    stream; a missing key stops the stream instead of encrypting later segments under a new one."""
    import pytest

    from core.db.models import PlaybackId
    from core.errors import AbrError, NotFound
    from core.services.content_keys import ensure_content_key, load_content_key

    storage, master = LocalStorage(tmp_path / "media"), bytes(range(32))
    with Session(engine) as s:
        pid = PlaybackId(asset_id=None, policy="encrypted")
        s.add(pid)
        s.commit()
        pid_id = pid.id
    stream_id = _stream(engine, status="active", worker_id="dead", heartbeat_at=utcnow() - timedelta(seconds=30),
                        playback_id=pid_id)
    made = ensure_content_key(storage, master, stream_id)  # what POST /v1/live-streams does
    stored = storage.get_bytes(layout.content_key_key(stream_id))

    def run(loader) -> LiveRun:
        config = LiveConfig(ffmpeg="ffmpeg", work_dir=tmp_path, rtmp_pull_base="rtmp://127.0.0.1/live", lease=POLICY,
                            content_key=loader)
        return LiveRun(engine, storage, config, stream_id)

    loader = lambda sid: load_content_key(storage, master, sid)  # noqa: E731 - the worker's (workers/tasks/live.py)
    first, taker = run(loader), run(loader)
    keys = [r._load_key(_row(engine, stream_id)) for r in (first, taker)]
    assert [(k.kid, k.key) for k in keys] == [(made.kid, made.key)] * 2
    assert storage.get_bytes(layout.content_key_key(stream_id)) == stored  # not rewrapped, not regenerated
    storage.delete(layout.content_key_key(stream_id))
    with pytest.raises(NotFound):
        taker._load_key(_row(engine, stream_id))
    with pytest.raises(AbrError, match="not configured"):
        run(None)._load_key(_row(engine, stream_id))
    # A run that cannot load the key does not run clear: the stream errors with the reason.
    run(None).run()
    row = _row(engine, stream_id)
    assert row.status == "errored" and "not configured" in row.error_message


def test_takeovers_are_counted_within_the_window_only():
    from datetime import UTC, datetime

    from core.live.takeover import count_takeover

    policy = LeasePolicy(max_takeovers=2, takeover_window=600)
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    ago = lambda s: (now - timedelta(seconds=s)).isoformat()  # noqa: E731
    assert count_takeover(None, now, policy) == ([now.isoformat()], True)
    assert count_takeover([ago(30)], now, policy) == ([ago(30), now.isoformat()], True)
    # A third within 10 minutes is over the cap; one 11 minutes ago no longer counts; junk is dropped.
    assert count_takeover([ago(300), ago(30)], now, policy) == ([ago(300), ago(30), now.isoformat()], False)
    assert count_takeover([ago(660), ago(30), "not a time", None], now, policy) == ([ago(30), now.isoformat()], True)
    naive = (now - timedelta(seconds=5)).replace(tzinfo=None).isoformat()  # SQLite hands back naive times
    assert count_takeover([naive], now, policy)[0] == [ago(5), now.isoformat()]


def test_a_stream_that_keeps_killing_its_workers_is_errored_and_still_ends_and_records(engine, tmp_path):
    """The run that would be the (max+1)th takeover within the window does not encode: the stream ends with
    what was published (ENDLIST, the recording made) and is `errored` with `worker_lost`, no source opened."""
    policy = LeasePolicy(heartbeat_interval=1, takeover_after=5, max_takeovers=2, takeover_window=600)
    recent = [(utcnow() - timedelta(seconds=s)).isoformat() for s in (120, 40)]
    stream_id = _stream(engine, status="active", worker_id="dead", heartbeat_at=utcnow() - timedelta(seconds=30),
                        takeovers=recent, settings={"record": True, "segment_duration": 1, "dvr_window": 30})
    storage = LocalStorage(tmp_path / "media")
    key = lambda rel: layout.media_key(stream_id, rel)  # noqa: E731
    live = LivePresentation(presentation=Presentation(segment_duration=1, tracks=[_track("v", range(1, 4))]),
                            periods=[Period("p0", 10.0, 1000.0)])
    storage.put_bytes(key("live.json"), json.dumps(live.to_dict()).encode())
    storage.put_bytes(key("v/init.mp4"), b"init")
    for n in range(1, 4):
        storage.put_bytes(key(f"v/{n:05d}.m4s"), b"x" * 10)
    recordings: list[str] = []
    config = LiveConfig(ffmpeg="/nonexistent/ffmpeg", work_dir=tmp_path, rtmp_pull_base="rtmp://127.0.0.1:9/live",
                        lease=policy, after_recording=recordings.append)
    run = LiveRun(engine, storage, config, stream_id)
    run.run()
    row = _row(engine, stream_id)
    assert row.status == "errored" and row.error_code == "worker_lost", (row.status, row.error_message)
    assert "more than 2 times within 600 s" in row.error_message
    assert len(row.takeovers) == 3 and row.ended_at is not None
    assert LivePresentation.from_dict(json.loads(storage.get_bytes(key("live.json")))).ended
    assert row.recording_asset_id is not None and recordings == [row.recording_asset_id]


def test_a_takeover_under_the_cap_is_recorded_and_the_stream_goes_on(engine, tmp_path):
    stream_id = _stream(engine, status="active", worker_id="dead", heartbeat_at=utcnow() - timedelta(seconds=30),
                        takeovers=[(utcnow() - timedelta(seconds=900)).isoformat()])  # outside the window
    run = _run(engine, tmp_path, stream_id)
    row = run._claim()
    storage = LocalStorage(tmp_path / "media")
    publisher = LivePublisher(storage, stream_id, segment_duration=1, dvr_window=30, record=True)
    assert run._take_over(row, publisher) is True
    after = _row(engine, stream_id)
    assert after.status == "active" and len(after.takeovers) == 1  # the old one forgotten, this one counted
