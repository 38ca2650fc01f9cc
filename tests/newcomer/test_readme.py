"""tests/newcomer/readme.py reads a quick start exactly (commands, comments, shown output)."""

from __future__ import annotations

from tests.newcomer import readme
from tests.newcomer.readme import Command

SAMPLE = """# project

```bash
# 1. install and start
python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/abr dev
```

It prints:

```text
abr dev is up: http://127.0.0.1:8000
API key: <key>
```

```bash
curl -H "Authorization: Bearer $KEY" -F file=@movie.mp4 \\
     -F 'settings={"codecs":["h264"]}' http://127.0.0.1:8000/v1/assets
curl http://127.0.0.1:8000/v1/assets/<id>     # status, progress, playback URLs
```

```console
$ abr token pb_1   # a signed URL
token: …
```

## Architecture

```bash
not-a-quick-start-command
```
"""


def test_parse_reads_commands_comments_and_output():
    qs = readme.parse(SAMPLE)
    assert qs.commands == [
        Command("python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/abr dev", "",
                ("abr dev is up: http://127.0.0.1:8000", "API key: <key>")),
        Command("""curl -H "Authorization: Bearer $KEY" -F file=@movie.mp4 -F 'settings={"codecs":["h264"]}' """
                "http://127.0.0.1:8000/v1/assets"),
        Command("curl http://127.0.0.1:8000/v1/assets/<id>", "status, progress, playback URLs"),
        Command("abr token pb_1", "a signed URL", ("token: …",)),
    ]
    assert readme.readme_port(qs) == 8000
    assert qs.find("abr dev").text.endswith("abr dev")


def test_steps_split_on_and_and_outside_quotes():
    assert readme.steps("a && b -x 'c && d' && e") == ["a", "b -x 'c && d'", "e"]


def test_comment_needs_a_space_and_no_quotes():
    assert readme.split_comment("curl x#y 'a # b'  # note") == ("curl x#y 'a # b'", "note")


def test_output_templates_match_in_order_with_the_port_swapped():
    printed = "starting\nabr dev is up: http://127.0.0.1:5123  (dashboard …)\nAPI key: abr_xyz\n"
    expected = ("abr dev is up: http://127.0.0.1:8000", "API key: <key>")
    assert readme.match_output(expected, printed, readme_port=8000, port=5123) == []
    assert readme.match_output(expected, printed) == ["abr dev is up: http://127.0.0.1:8000"]
    assert readme.match_output(("API key: <key>", "abr dev is up: …"), printed) == ["abr dev is up: …"]
    assert readme.line_pattern("RTMP ingest:   off (<why>)").pattern == r"RTMP\s+ingest:\s+off\s+\(.*?\)"


def test_claims_follow_the_prose_about_abr_dev():
    prose = readme.parse(PROSE).prose
    said = readme.about(prose, "`abr dev`")
    assert "Unrelated" not in said
    assert readme.claims(said) == {"url", "key", "docs", "redoc", "offline", "rtmp", "apt_hint", "short"}
    assert readme.apt_line(said) == "sudo apt-get install nginx libnginx-mod-rtmp"
    assert readme.claims("`abr dev` prints the URL and an API key.") == {"url", "key"}
    assert readme.apt_line("no apt here") is None


PROSE = """Intro.

`abr dev` migrates the database, starts the API and one worker, and prints
a short banner: the URL, an API key, the API docs (`/docs`, `/redoc`; they
work offline) and whether live push (RTMP) is on. Live push needs nginx's
RTMP module — on Debian/Ubuntu `sudo apt-get install nginx libnginx-mod-rtmp`
turns it on (`abr dev` prints that line when the module is missing).

Unrelated paragraph.
"""
