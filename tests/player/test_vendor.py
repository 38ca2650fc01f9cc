"""The pinned player libraries: every vendored file matches vendor.lock.json and package-lock.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from player import vendor
from player.site import Site

PLAYER_DIR = Path(vendor.__file__).parent


def copy_player(tmp_path: Path) -> Path:
    root = tmp_path / "player"
    shutil.copytree(PLAYER_DIR, root, ignore=shutil.ignore_patterns("node_modules", "__pycache__"))
    return root


def test_vendored_files_match_the_lock():
    entries = vendor.verify()
    assert set(vendor.ENGINE_FILES.values()) <= set(entries)
    for entry in entries.values():
        assert entry.integrity.startswith("sha384-") and len(entry.sha256) == 64


def test_versions_are_pinned_exactly():
    deps = json.loads((PLAYER_DIR / "package.json").read_text())["dependencies"]
    lock = json.loads((PLAYER_DIR / "vendor.lock.json").read_text())["files"]
    # no ranges: "1.7.4", not "^1.7.4"; the docs bundles are pinned in vendor.PACKED (fetched with `npm pack`)
    assert {e["package"]: e["version"] for e in lock.values()} == {**deps, **vendor.PACKED}
    assert all(v[0].isdigit() for v in vendor.PACKED.values())


def test_docs_bundles_are_locked_and_served_checked(tmp_path):
    entries = vendor.verify()
    assert set(vendor.PACKED_SOURCES) <= set(entries)
    root = copy_player(tmp_path)
    target = root / "vendor" / "redoc.standalone.js"
    data = bytearray(target.read_bytes())
    data[-10] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(vendor.VendorError, match="does not match its checksum"):
        Site(root).get("vendor/redoc.standalone.js")


def test_a_changed_byte_is_refused(tmp_path):
    root = copy_player(tmp_path)
    target = root / "vendor" / vendor.ENGINE_FILES["hls"]
    data = bytearray(target.read_bytes())
    data[100] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(vendor.VendorError, match="does not match its checksum"):
        vendor.verify(root / "vendor.lock.json", root / "package-lock.json")
    with pytest.raises(vendor.VendorError):
        Site(root).get(f"vendor/{vendor.ENGINE_FILES['hls']}")


def test_lock_and_package_lock_must_agree(tmp_path):
    root = copy_player(tmp_path)
    npm = json.loads((root / "package-lock.json").read_text())
    npm["packages"]["node_modules/dashjs"]["version"] = "0.0.1"
    (root / "package-lock.json").write_text(json.dumps(npm))
    with pytest.raises(vendor.VendorError, match="package-lock.json says 0.0.1"):
        vendor.verify(root / "vendor.lock.json", root / "package-lock.json")


def test_cli_verify(capsys):
    assert vendor.main(["verify"]) == 0
    assert "hls.js 1.7.4" in capsys.readouterr().out
