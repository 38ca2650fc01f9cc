"""SRT → WebVTT conversion and WebVTT validation (pure)."""

from __future__ import annotations

import pytest

from core.errors import Unprocessable
from core.media.captions import check_language, parse_webvtt, to_webvtt

SRT = (
    "1\r\n00:00:00,500 --> 00:00:02,000\r\n<font color=\"red\">Hello</font> <i>world</i>\r\n\r\n"
    "2\r\n00:00:02,500 --> 00:00:04,250 X1:10 X2:20 Y1:30 Y2:40\r\nA --> B\r\nsecond line\r\n"
)


def test_srt_becomes_webvtt_exactly():
    vtt = to_webvtt(SRT.encode(), "en.srt")
    assert vtt.text == (
        "WEBVTT\n\n"
        "00:00:00.500 --> 00:00:02.000\nHello <i>world</i>\n\n"
        "00:00:02.500 --> 00:00:04.250\nA --&gt; B\nsecond line\n"
    )
    assert [(c.start, c.end) for c in vtt.cues] == [(0.5, 2.0), (2.5, 4.25)]


def test_srt_in_windows_1252_with_bom_less_text():
    vtt = to_webvtt("1\n00:00:01,000 --> 00:00:02,000\nCafé\n".encode("cp1252"))
    assert "Café" in vtt.text


def test_webvtt_is_kept_and_parsed():
    text = "\ufeffWEBVTT - my subs\n\nNOTE a comment\n\nintro\n00:01.000 --> 00:02.000 align:start\nHi\n"
    vtt = to_webvtt(text.encode())
    assert vtt.text.startswith("WEBVTT - my subs\n") and len(vtt.cues) == 1
    assert vtt.cues[0].start == 1.0 and vtt.cues[0].text == "Hi"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        pytest.param(b"", "empty", id="empty"),
        pytest.param(b"\x00\x01\x02binary", "binary", id="binary"),
        pytest.param(b"hello there\nthis is prose", "neither WebVTT", id="prose"),
        pytest.param(b"WEBVTT\n\n00:01.000 -> 00:02.000\nx\n", "expected a timing", id="vtt-bad-arrow"),
        pytest.param(b"WEBVTT\n\n00:03.000 --> 00:02.000\nx\n", "ends before it starts", id="vtt-backwards"),
        pytest.param(b"WEBVTT\n", "no cues", id="vtt-no-cues"),
        pytest.param(b"WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n", "must start with the line 'WEBVTT'", id="vtt-bad-header"),
        pytest.param(b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 00:00:03,000\nbad\n",
                     "SRT line 6", id="srt-bad-timing"),
        pytest.param(b"1\n00:00:01,000 --> 00:00:02,000\n", "no text", id="srt-no-text"),
        pytest.param(b"WEBVTT\n\n00:01.000 --> 00:02.000\n\xff\xfe\n", "UTF-8", id="vtt-not-utf8"),
    ],
)
def test_invalid_text_is_unprocessable_with_a_reason(data, reason):
    with pytest.raises(Unprocessable) as caught:
        to_webvtt(data)
    assert reason in caught.value.message


def test_parse_webvtt_requires_blank_line_after_header():
    with pytest.raises(Unprocessable, match="blank line"):
        parse_webvtt("WEBVTT\n00:01.000 --> 00:02.000\nx\n")


@pytest.mark.parametrize("tag", ["en", "pt-BR", "zh-Hant-TW", "es-419", "fil"])
def test_language_tags_accepted(tag):
    assert check_language(tag) == tag


@pytest.mark.parametrize("tag", ["", "e", "english!", "en_US", "12", "en--US"])
def test_language_tags_refused(tag):
    with pytest.raises(Unprocessable, match="BCP 47"):
        check_language(tag)
