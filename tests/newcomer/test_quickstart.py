"""The README's quick start, run as written in an empty directory: the first minutes of a new user.

The commands come from README.md (tests/newcomer/readme.py), so this test follows the README
when it changes and fails when the README and the program disagree. What it changes, and why:

- `pip install -e .` installs this checkout (`.` is the checkout) into a fresh venv in a temp
  dir; pip's cache is the user's, so it is quick where the suite's own install ran before;
- `abr dev` gets a free ABR_PORT (and RTMP port) instead of 8000, and the README's URLs follow;
- `$KEY` is the key `abr dev` printed, `<id>` the id the upload answered, `movie.mp4` a short
  generated clip of that name;
- `git clone`/`cd` and `apt-get` steps are not run (the checkout and the machine are given).

Any output the README shows for a command is compared line by line with what it printed; a
comment after a command (`# status, progress, playback URLs`) names fields its answer must have.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT, free_port
from tests.media_fixtures import make_clip
from tests.newcomer import readme

pytestmark = pytest.mark.timeout(300)

SKIPPED_STEPS = re.compile(r"^(sudo\s+)?(apt|apt-get|git\s+clone|cd)\b")
KEY = re.compile(r"\babr_[A-Za-z0-9_-]{16,}")


def _env(port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ABR_", "VIRTUAL_ENV", "PYTHON"))}
    # The test's venv is not on PATH: the README's commands name .venv/bin/… themselves.
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(Path(sys.prefix))))
    env.update(ABR_PORT=str(port), ABR_RTMP_PORT=str(free_port()), PIP_DISABLE_PIP_VERSION_CHECK="1",
               PIP_PROGRESS_BAR="off", PYTHONUNBUFFERED="1")
    return env


def _install_step(step: str) -> str:
    """`pip install -e .` (or `.[extra]`) installs the checkout: `.` is REPO_ROOT here."""
    words = shlex.split(step)
    if not any(w.endswith("pip") for w in words[:1]) or "install" not in words:
        return step
    return shlex.join(str(REPO_ROOT) + w[1:] if w == "." or w.startswith(".[") else w for w in words)


def _run(step: str, cwd: Path, env: dict, timeout: float) -> str:
    result = subprocess.run(["bash", "-c", step], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"README step failed ({result.returncode}): {step}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT, wait: float = 25) -> int | None:
    """Ctrl-C, as a newcomer stops `abr dev`; SIGKILL if it does not go (its children then leak: say so)."""
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return None
    return proc.returncode


def test_readme_quick_start_as_written(tmp_path):
    qs = readme.parse((REPO_ROOT / "README.md").read_text())
    port = free_port()
    readme_port = readme.readme_port(qs)
    env = _env(port)
    home = tmp_path / "newcomer"
    home.mkdir()

    # 1. Install, then start `abr dev` (the steps of the command that runs it).
    dev = qs.find("abr dev")
    *install, start = readme.steps(dev.text)
    assert re.search(r"\babr dev\b", start), f"`abr dev` is not the last step of {dev.text!r}"
    began = time.monotonic()
    for step in install:
        if not SKIPPED_STEPS.match(step):
            _run(_install_step(step), home, env, timeout=240)
    install_s = time.monotonic() - began
    assert (home / ".venv" / "bin" / "abr").exists(), "the quick start's install did not make .venv/bin/abr"

    log = home / "dev.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", "-c", f"exec {start}"], cwd=home, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            text = log.read_text()
            # Up when the README's banner lines are all there (or, when it shows none, the URL and a key).
            if dev.output and not readme.match_output(dev.output, text, readme_port=readme_port, port=port):
                break
            if not dev.output and url in text and KEY.search(text):
                break
            assert proc.poll() is None, f"abr dev exited ({proc.returncode}):\n{text[-3000:]}"
            if time.monotonic() > deadline:
                missing = readme.match_output(dev.output, text, readme_port=readme_port, port=port)
                raise AssertionError(f"abr dev's output differs from README.md: missing {missing}\n"
                                     f"printed:\n{text[-3000:]}")
            time.sleep(0.2)
        time.sleep(0.5)  # the rest of the banner
        printed = log.read_text()
        # What the prose says `abr dev` prints (the URL and a key at least: the next commands need them).
        said = readme.about(qs.prose, "abr dev")
        claims = readme.claims(said) | {"url", "key"}
        assert url in printed, printed
        found = KEY.search(printed)
        assert found, f"no API key in abr dev's output:\n{printed}"
        key = found.group(0)
        env_key = dict(env, KEY=key)
        lines = printed.splitlines()
        banner = "\n".join(lines[next(i for i, line in enumerate(lines) if url in line):])  # from the URL on
        if "short" in claims:  # short, and last: nothing but the banner after the URL
            assert len(banner.strip().splitlines()) <= 12, f"README says a short banner:\n{printed}"
        if "docs" in claims:
            assert f"{url}/docs" in banner, f"README says the banner names the API docs:\n{banner}"
        if "rtmp" in claims:
            rtmp = [line for line in banner.splitlines() if "RTMP" in line]
            assert rtmp, f"README says the banner tells whether live push (RTMP) is on:\n{banner}"
            apt = readme.apt_line(said)
            if "apt_hint" in claims and apt and "rtmp://" not in rtmp[0]:
                assert apt in banner, f"README says abr dev prints {apt!r} when RTMP is off:\n{banner}"

        # 2. The README's curl commands: upload, then the asset (status until ready).
        clip_names = {m for c in qs.all("curl") for m in re.findall(r"file=@(\S+?)['\"\s]", c.text + " ")}
        for name in clip_names:
            make_clip(home / name, duration=2, width=320, height=180, fps=15)

        def command(c: readme.Command, asset_id: str | None = None) -> str:
            text = c.text
            if readme_port:
                text = re.sub(rf"(//(?:127\.0\.0\.1|localhost)):{readme_port}\b", rf"\1:{port}", text)
            if asset_id:
                text = text.replace("<id>", asset_id)
            placeholders = re.findall(r"<[^<>\s]+>", text)
            assert not placeholders, f"README command has a placeholder this test cannot fill: {placeholders}"
            return text

        def answer(c: readme.Command, asset_id: str | None = None) -> dict:
            out = _run(command(c, asset_id), home, env_key, timeout=60)
            try:
                body = json.loads(out)
            except ValueError:
                raise AssertionError(f"not JSON from {c.text!r}: {out[:2000]}") from None
            assert set(body) != {"error"}, (c.text, body)  # an error answer, not a resource
            for claim in [w.split()[0] for w in c.comment.split(",") if w.strip()]:
                if re.fullmatch(r"[a-z_]+", claim):
                    assert claim in body, f"README says {c.text!r} answers {claim!r}: {sorted(body)}"
            if c.output:
                missing = readme.match_output(c.output, json.dumps(body, indent=2) + "\n" + out,
                                              readme_port=readme_port, port=port)
                assert not missing, f"{c.text!r} printed {out[:2000]}, README shows {c.output}"
            return body

        uploads = [c for c in qs.all("curl") if "file=@" in c.text]
        assert uploads, "README.md's quick start has no curl upload"
        asset = answer(uploads[0])
        asset_id = asset["id"]
        status = [c for c in qs.all("curl") if "<id>" in c.text]
        assert status, "README.md's quick start has no curl command for one asset (<id>)"
        deadline = time.monotonic() + 120
        while asset["status"] != "ready":
            assert asset["status"] != "errored", asset
            assert time.monotonic() < deadline, f"not ready after 120 s: {asset}\n{log.read_text()[-3000:]}"
            time.sleep(1)
            asset = answer(status[0], asset_id)

        # 3. The player and the dashboard, as the URLs the API and the banner give.
        pid = asset["playback_ids"][0]["id"]
        player = (asset.get("playback") or {}).get("player") or f"{url}/player/{pid}"
        with httpx.Client(timeout=20) as client:
            page = client.get(player)
            assert page.status_code == 200 and "player.js" in page.text, (player, page.status_code)
            master = client.get(asset["playback"]["hls"])
            assert master.status_code == 200 and master.text.startswith("#EXTM3U"), master.text[:300]
            dashboard = client.get(f"{url}/")
            assert dashboard.status_code == 200 and "dashboard.js" in dashboard.text
            for docs in [d for d, claim in (("/docs", "docs"), ("/redoc", "redoc")) if claim in claims]:
                answer_docs = client.get(url + docs)
                assert answer_docs.status_code == 200, (docs, answer_docs.status_code)
                if "offline" in claims:  # nothing from another origin: every script and style is served here
                    foreign = re.findall(r'(?:src|href)=["\'](https?://[^"\']+)', answer_docs.text)
                    assert not [f for f in foreign if not f.startswith(url)], (docs, foreign)
        if "short" in claims:
            after = log.read_text()[len(printed):]
            assert not after.strip(), f"README says the banner comes last; abr dev printed after it:\n{after[:3000]}"
    finally:
        code = _stop(proc)
        shutil.rmtree(home / ".venv", ignore_errors=True)  # ~0.5 GB; pytest keeps the last runs' temp dirs
    assert code == 0, f"abr dev did not stop cleanly on Ctrl-C ({code}):\n{log.read_text()[-3000:]}"
    print(f"install {install_s:.1f} s, total {time.monotonic() - began:.1f} s")
