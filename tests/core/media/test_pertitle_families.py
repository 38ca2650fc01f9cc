"""`analyse_families`: H.264 first, and the AV1 analysis aims at the H.264 table's quality (no ffmpeg run)."""

from __future__ import annotations

from fractions import Fraction

from core.media import analysis
from core.media.ladder import plan_ladder
from core.media.model import Ladder
from core.media.pertitle import QualityMeasurements, RatePoint
from core.media.probe import MediaInfo, VideoInfo
from core.services.quality import analyse_families
from core.storage.local import LocalStorage

R = RatePoint
INFO = MediaInfo("mov", 30.0, 1, None, VideoInfo("h264", 640, 360, 640, 360, 0, Fraction(1), Fraction(30), False,
                                                  "yuv420p", None), None)


def _ladders(*codecs: str) -> list[Ladder]:
    return [plan_ladder(codec=c, display_width=640, display_height=360, frame_rate=Fraction(30)) for c in codecs]


def _fake(calls):
    def analyse(ffmpeg, source, ladder, *, reference=None, **kw):
        calls.append((ladder.codec, reference))
        if ladder.codec == "h264":  # the table's own trials (crf None) and one CRF trial per size
            return QualityMeasurements((R(360, 800_000, 94.0, 90.0, None), R(360, 500_000, 93.0, 89.0, 23.0),
                                        R(240, 400_000, 85.0, 80.0, None)), 2, 4.0)
        return QualityMeasurements((R(360, 600_000, 93.0, 89.0, None),), 2, 4.0,
                                   reference=reference if isinstance(reference, tuple) else ())
    return analyse


def test_av1_aims_at_the_h264_tables_points_measured_first(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(analysis, "analyse", _fake(calls))
    found = analyse_families("ffmpeg", LocalStorage(tmp_path / "store"), "a1", INFO, _ladders("av1", "h264"),
                             source=tmp_path / "src", segment_duration=4.0, work_dir=tmp_path / "w")
    assert [c for c, _ in calls] == ["h264", "av1"]
    assert calls[1][1] == (R(360, 800_000, 94.0, 90.0, None), R(240, 400_000, 85.0, 80.0, None))
    assert set(found) == {"h264", "av1"}
    # A retry reads the stored measurements back (reference included) instead of measuring again.
    monkeypatch.setattr(analysis, "analyse", lambda *a, **kw: (_ for _ in ()).throw(AssertionError("measured")))
    again = analyse_families("ffmpeg", LocalStorage(tmp_path / "store"), "a1", INFO, _ladders("av1", "h264"),
                             source=tmp_path / "src", segment_duration=4.0, work_dir=tmp_path / "w")
    assert again == found and len(again["av1"].reference) == 2


def test_av1_alone_gets_the_h264_table_to_measure(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(analysis, "analyse", _fake(calls))
    analyse_families("ffmpeg", LocalStorage(tmp_path / "store"), "a2", INFO, _ladders("av1"),
                     source=tmp_path / "src", segment_duration=4.0, work_dir=tmp_path / "w")
    ((codec, reference),) = calls
    assert codec == "av1" and isinstance(reference, Ladder) and reference.codec == "h264"
    assert [(r.id, r.bitrate) for r in reference.renditions] == [("h264-360p", 800_000), ("h264-240p", 400_000)]
