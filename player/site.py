"""The static side of the player and dashboard: files, content-hashed URLs, page templates.

Every file is named in pages by `/static/{name}?v={hash}`, so a URL names one
exact content and can be cached for a year; a new release changes the hash.
Vendored player libraries are checked against `vendor.lock.json` before they
are served (a mismatch is an error, never a silent swap), and pages load them
with their SRI hash. Files are re-read when they change on disk, so editing
`web/` needs no restart. Framework-free: the API's router does the HTTP.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from core.origin.conditional import compress
from player import vendor

ROOT = Path(__file__).resolve().parent
WEB_DIR = ROOT / "web"
CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
_NAME = re.compile(r"^(?:vendor/)?[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.(?:js|css|svg|txt)$")
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z]+)(?::([a-z0-9._/-]+))?\s*\}\}")


@dataclass(frozen=True)
class StaticFile:
    name: str
    data: bytes
    content_type: str
    version: str  # first 16 hex digits of the sha256: in URLs and the ETag
    integrity: str | None = None  # SRI of a vendored library
    _encoded: dict = field(default_factory=dict, compare=False, repr=False)

    def encoded(self, coding: str | None) -> tuple[bytes, str]:
        """(body, strong ETag) in `coding` (None: identity), compressed once and kept."""
        if coding is None:
            return self.data, f'"{self.version}"'
        if coding not in self._encoded:
            self._encoded[coding] = compress(self.data, coding)
        return self._encoded[coding], f'"{self.version}-{coding}"'


class Site:
    """The player's and dashboard's files under `root` (the `player/` package by default)."""

    def __init__(self, root: Path = ROOT) -> None:
        self.web_dir = root / "web"
        self.vendor_dir = root / "vendor"
        self.locked = vendor.load_lock(root / "vendor.lock.json")
        self._files: dict[str, tuple[tuple[int, int], StaticFile]] = {}
        self._lock = threading.Lock()

    def _path(self, name: str) -> Path | None:
        if not _NAME.match(name) or ".." in name:
            return None
        if name.startswith("vendor/"):
            base = name.removeprefix("vendor/")
            if base not in self.locked and not base.endswith(".LICENSE.txt"):
                return None
            return self.vendor_dir / base
        return self.web_dir / name

    def get(self, name: str) -> StaticFile | None:
        """The file named `name` (`player.js`, `vendor/hls.min.js`), or None.

        Raises vendor.VendorError if a vendored library differs from its lock.
        """
        path = self._path(name)
        if path is None:
            return None
        try:
            st = path.stat()
        except OSError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        cached = self._files.get(name)
        if cached and cached[0] == key:
            return cached[1]
        data = path.read_bytes()
        integrity = None
        locked = self.locked.get(name.removeprefix("vendor/")) if name.startswith("vendor/") else None
        if locked is not None:
            vendor.check_bytes(locked, data)  # the bytes served are the bytes checked
            integrity = locked.integrity
        file = StaticFile(name=name, data=data, content_type=CONTENT_TYPES[path.suffix],
                          version=hashlib.sha256(data).hexdigest()[:16], integrity=integrity)
        with self._lock:
            self._files[name] = (key, file)
        return file

    def url(self, name: str) -> str:
        file = self.get(name)
        if file is None:
            raise FileNotFoundError(f"no static file {name}")
        return f"/static/{name}?v={file.version}"

    def engines(self) -> dict[str, dict[str, str]]:
        """What the player needs to load each engine: URL, SRI hash, version."""
        out = {}
        for engine, name in vendor.ENGINE_FILES.items():
            file = self.get(f"vendor/{name}")
            assert file is not None and file.integrity is not None, name
            out[engine] = {"src": f"/static/vendor/{name}?v={file.version}", "integrity": file.integrity,
                           "version": self.locked[name].version}
        return out

    def render(self, template: str, **values: object) -> str:
        """Fill `{{static:name}}` with a hashed URL and `{{json:key}}` with `values[key]` as inline JSON."""
        text = (self.web_dir / template).read_text()

        def fill(m: re.Match) -> str:
            kind, arg = m.group(1), m.group(2)
            if kind == "static":
                return self.url(arg)
            if kind == "json":
                return inline_json(values[arg])
            if kind == "text":
                return escape_html(str(values[arg]))
            raise KeyError(m.group(0))

        return _PLACEHOLDER.sub(fill, text)


def inline_json(value: object) -> str:
    """JSON safe inside `<script type="application/json">` (no `</script>`, no `<!--`)."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")


def escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") \
        .replace("'", "&#39;")
