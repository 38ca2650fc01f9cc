"""The example plugin package under examples/: its own tests pass, it declares its entry point, and it runs."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np

from core.media import plugins
from tests.plugins.test_encode_plugins import frames_of, run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "frame-plugin-example"


def test_its_own_tests_pass():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXAMPLE), str(EXAMPLE.parents[1])]))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
                            cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_it_registers_in_the_entry_point_group():
    project = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert project["project"]["entry-points"][plugins.GROUP] == {"grayscale": "abr_example_plugin:Grayscale"}


def test_it_runs_in_the_pipeline(ffmpeg, clip, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    found = dict(plugins.installed())
    found["grayscale"] = plugins._load("grayscale", "abr_example_plugin:Grayscale")
    monkeypatch.setattr(plugins, "installed", lambda: found)
    import core.media.framepipe as framepipe

    monkeypatch.setattr(framepipe, "installed", lambda: found)
    assert plugins.validate_chain([{"name": "grayscale"}]) == [{"name": "grayscale", "options": {"strength": 1.0}}]
    tracks, recorder, _ = run(ffmpeg, clip("grey", duration=1.0), tmp_path / "grey", [{"name": "grayscale"}],
                              max_rungs=1)
    frame = frames_of(recorder.files[tracks[0].id])[10].astype(int)
    assert np.abs(frame[..., 0] - frame[..., 1]).max() < 8 and np.abs(frame[..., 1] - frame[..., 2]).max() < 8
