"""Validate an MPD against the ISO/IEC 23009-1 schema (for any test that writes one).

The schema is vendored in `tests/dash_schema/` (provenance and checksums in
its PROVENANCE.md): `DASH-MPD.xsd` imports `xlink.xsd` from the same folder
(an offline copy, no network), so a fresh clone validates. A missing schema
is a failure, never a skip: a skip here would silently cut off the rest of
every end-to-end test that checks an MPD on its way.

lxml (libxml2) is used rather than xmlschema: both compile this schema and
reject the same broken MPDs (missing @bandwidth, bad @codecs / @frameRate /
@sar patterns, elements out of order, wrong namespace), but lxml compiles it
in milliseconds instead of ~150 ms. The XSD declares its regex building
blocks as internal DTD entities; lxml's default parser expands internal
entities, and nothing had to be changed in the schema.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

REPO_ROOT = Path(__file__).resolve().parents[4]
SCHEMA_DIR = REPO_ROOT / "tests" / "dash_schema"
SCHEMA_PATH = SCHEMA_DIR / "DASH-MPD.xsd"


@functools.cache
def _schema() -> etree.XMLSchema:
    # no_network: the xlink import must resolve to the local copy, never the W3C site.
    parser = etree.XMLParser(no_network=True)
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH), parser))


def validate_mpd(xml_text: str) -> None:
    """Fail the calling test with every schema error (or when the vendored schema is missing)."""
    assert SCHEMA_PATH.is_file(), f"the vendored DASH MPD schema is missing: {SCHEMA_PATH}"
    schema = _schema()
    document = etree.fromstring(xml_text.encode("utf-8"), etree.XMLParser(no_network=True))
    if not schema.validate(document):
        errors = "\n".join(f"line {e.line}: {e.message}" for e in schema.error_log)
        raise AssertionError(f"MPD does not validate against {SCHEMA_PATH.name}:\n{errors}")
