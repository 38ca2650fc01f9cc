"""The pinned third-party player libraries: copy them from npm, record and verify their checksums.

The minified dist files live in `player/vendor/` (committed, so `pip install`
plus `abr dev` needs no npm); `player/vendor.lock.json` records, per file,
the npm package, its exact version and tarball integrity (as in
`package-lock.json`), and the file's sha256 and sha384. The server checks the
sha256 before it serves a file, and the player page loads each file with a
Subresource Integrity `integrity="sha384-…"` so the browser checks it too.

    cd player && npm ci --ignore-scripts && python3 vendor.py sync   # after bumping package.json
    python3 player/vendor.py sync-docs                                # after bumping PACKED (docs pages)
    python3 player/vendor.py verify                                   # CI: files match the lock

Standard library only: it runs before the project is installed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENDOR_DIR = ROOT / "vendor"
LOCK_FILE = ROOT / "vendor.lock.json"
NPM_LOCK_FILE = ROOT / "package-lock.json"

# vendor file name -> (npm package, path inside the package). One file per engine.
SOURCES: dict[str, tuple[str, str]] = {
    "hls.min.js": ("hls.js", "dist/hls.min.js"),
    "dash.all.min.js": ("dashjs", "dist/modern/umd/dash.all.min.js"),  # with the protection (EME) module
    "shaka-player.compiled.js": ("shaka-player", "dist/shaka-player.compiled-es2021.js"),
}
ENGINE_FILES = {"hls": "hls.min.js", "dash": "dash.all.min.js", "shaka": "shaka-player.compiled.js"}

# The API docs pages (/docs, /redoc): self-contained bundles taken from one npm tarball each
# (`npm pack`), exact versions pinned here. Installing them like the player libraries would
# pull redoc's whole dependency tree (hundreds of packages) for one prebuilt file.
PACKED: dict[str, str] = {"swagger-ui-dist": "5.35.0", "redoc": "2.5.4"}  # redoc 3 is an ES module; FastAPI's page loads v2
PACKED_SOURCES: dict[str, tuple[str, str]] = {
    "swagger-ui-bundle.js": ("swagger-ui-dist", "swagger-ui-bundle.js"),
    "swagger-ui.css": ("swagger-ui-dist", "swagger-ui.css"),
    "redoc.standalone.js": ("redoc", "bundles/redoc.standalone.js"),
}


class VendorError(Exception):
    """A vendored file is missing or does not match vendor.lock.json."""


@dataclass(frozen=True)
class VendorFile:
    name: str
    package: str
    version: str
    sha256: str  # hex
    integrity: str  # SRI: "sha384-<base64>"
    path: Path


def sri_sha384(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


def load_lock(lock_file: Path = LOCK_FILE) -> dict[str, VendorFile]:
    entries = json.loads(lock_file.read_text())["files"]
    return {name: VendorFile(name=name, package=e["package"], version=e["version"], sha256=e["sha256"],
                             integrity=e["sha384"], path=lock_file.parent / "vendor" / name)
            for name, e in entries.items()}


def check_file(entry: VendorFile) -> None:
    """Raise VendorError unless the file on disk has the locked sha256 and sha384."""
    try:
        data = entry.path.read_bytes()
    except OSError as exc:
        raise VendorError(f"player library {entry.name} ({entry.package} {entry.version}) is missing: {exc}") from exc
    check_bytes(entry, data)


def check_bytes(entry: VendorFile, data: bytes) -> None:
    if hashlib.sha256(data).hexdigest() != entry.sha256 or sri_sha384(data) != entry.integrity:
        raise VendorError(f"player library {entry.name} does not match its checksum in vendor.lock.json "
                          f"({entry.package} {entry.version}); run `python3 player/vendor.py sync` after `npm ci`")


def verify(lock_file: Path = LOCK_FILE, npm_lock_file: Path = NPM_LOCK_FILE) -> dict[str, VendorFile]:
    """Every vendored file matches the lock, and the lock matches package-lock.json's versions."""
    entries = load_lock(lock_file)
    npm = json.loads(npm_lock_file.read_text())["packages"]
    for name, (package, _) in SOURCES.items():
        if name not in entries:
            raise VendorError(f"vendor.lock.json has no entry for {name}")
        pinned = npm.get(f"node_modules/{package}", {})
        if pinned.get("version") != entries[name].version:
            raise VendorError(f"{name}: vendor.lock.json says {package} {entries[name].version}, "
                              f"package-lock.json says {pinned.get('version')}")
        check_file(entries[name])
    for name, (package, _) in PACKED_SOURCES.items():
        if name not in entries:
            raise VendorError(f"vendor.lock.json has no entry for {name}")
        if entries[name].version != PACKED[package]:
            raise VendorError(f"{name}: vendor.lock.json says {package} {entries[name].version}, "
                              f"vendor.PACKED says {PACKED[package]}")
        check_file(entries[name])
    return entries


def sync(node_modules: Path = ROOT / "node_modules") -> None:
    """Copy the dist files out of node_modules (after `npm ci`) and rewrite vendor.lock.json."""
    npm = json.loads(NPM_LOCK_FILE.read_text())["packages"]
    VENDOR_DIR.mkdir(exist_ok=True)
    files = {}
    for name, (package, source) in SOURCES.items():
        pkg_dir = node_modules / package
        version = json.loads((pkg_dir / "package.json").read_text())["version"]
        locked = npm[f"node_modules/{package}"]
        if locked["version"] != version:
            raise VendorError(f"node_modules has {package} {version}, package-lock.json {locked['version']}: "
                              "run `npm ci --ignore-scripts` first")
        data = (pkg_dir / source).read_bytes()
        (VENDOR_DIR / name).write_bytes(data)
        license_file = next(pkg_dir / n for n in ("LICENSE", "LICENSE.md", "LICENSE.txt") if (pkg_dir / n).exists())
        shutil.copyfile(license_file, VENDOR_DIR / f"{package}.LICENSE.txt")
        files[name] = {"package": package, "version": version, "source": source,
                       "npm_integrity": locked["integrity"], "license": locked.get("license"),
                       "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "sha384": sri_sha384(data)}
    _write_lock(files)


def _write_lock(files: dict) -> None:
    old = json.loads(LOCK_FILE.read_text())["files"] if LOCK_FILE.exists() else {}
    merged = {**old, **files}  # `sync` and `sync-docs` each rewrite their own entries
    lock = {"comment": "Written by `python3 player/vendor.py sync` / `sync-docs`; checked by the server and "
                       "`vendor.py verify`.", "files": merged}
    LOCK_FILE.write_text(json.dumps(lock, indent=2) + "\n")


def sync_docs(work: Path | None = None) -> None:
    """`npm pack` each PACKED tarball, check it against the registry's integrity, copy its files out.

    The tarball's sha512 must equal what `npm view <pkg>@<version> dist.integrity` says
    (npm pack checks it too); an entry already in the lock must keep its integrity, so a
    republished tarball is noticed rather than silently taken.
    """
    import subprocess
    import tarfile
    import tempfile

    old = json.loads(LOCK_FILE.read_text())["files"]
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = work or Path(tmp)
        for package, version in PACKED.items():
            spec = f"{package}@{version}"
            packed = json.loads(subprocess.run(["npm", "pack", spec, "--json", "--pack-destination", str(work)],
                                               check=True, capture_output=True, text=True).stdout)[0]
            tarball = work / packed["filename"]
            integrity = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
            registry = subprocess.run(["npm", "view", spec, "dist.integrity"], check=True, capture_output=True,
                                      text=True).stdout.strip()
            if integrity != registry or integrity != packed["integrity"]:
                raise VendorError(f"{spec}: tarball integrity {integrity} does not match the registry's {registry}")
            with tarfile.open(tarball) as tar:
                meta = json.loads(tar.extractfile("package/package.json").read())
                license_data = tar.extractfile("package/LICENSE").read()
                if "package/NOTICE" in tar.getnames():  # Apache-2.0: the NOTICE travels with the files
                    license_data += b"\n\n" + tar.extractfile("package/NOTICE").read()
                for name, (pkg, source) in PACKED_SOURCES.items():
                    if pkg != package:
                        continue
                    previous = old.get(name, {})
                    if previous.get("version") == version and previous.get("npm_integrity") != integrity:
                        raise VendorError(f"{spec} changed on the registry since it was locked")
                    data = tar.extractfile(f"package/{source}").read()
                    (VENDOR_DIR / name).write_bytes(data)
                    files[name] = {"package": package, "version": version, "source": source,
                                   "npm_integrity": integrity, "license": meta.get("license"), "bytes": len(data),
                                   "sha256": hashlib.sha256(data).hexdigest(), "sha384": sri_sha384(data)}
            (VENDOR_DIR / f"{package}.LICENSE.txt").write_bytes(license_data)
    _write_lock(files)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "verify"
    try:
        if command == "sync":
            sync()
            print(f"wrote {LOCK_FILE.name}")
        elif command == "sync-docs":
            sync_docs()
            print(f"wrote {LOCK_FILE.name}")
        elif command == "verify":
            for entry in verify().values():
                print(f"ok  {entry.name:28} {entry.package} {entry.version}  {entry.integrity}")
        else:
            print("usage: vendor.py [sync|sync-docs|verify]", file=sys.stderr)
            return 2
    except VendorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
