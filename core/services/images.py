"""Derived media of a finished (or finishing) asset: images on demand, the static MP4 at the end of a transcode.

Images (`make_image`) are made from the produced segments (see
`core.media.images`) into `media/{asset}/images/{normalised name}` and then
served like segments. Callers bound how many run at once (the web layer's
`ImageGate`) and how many an asset may store (`max_variants`, see
`core.media.image_sizes`); this module only does the work, blocking. The
storyboard is made once, by the transcode (`finish_extras`), never on a
viewer's request.

The MP4 download (`publish_static_mp4`) remuxes the top H.264 rung with the
audio into `media/{asset}/static/download.mp4`.

An encrypted asset's (or recording's) images come from its renditions too:
the concatenated segments are decrypted in this process (PyAV, the mov
demuxer's CENC decryption) into a NUT file in the temporary directory, and
ffmpeg reads that, so the key is on no command line and in no log line (the
original upload may be gone: a recording never had one). The images themselves
are clear pictures, served behind the same token rules as the manifests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
import shutil
import tempfile
from pathlib import Path

import av
from sqlalchemy.engine import Engine

from core import layout
from core.errors import AbrError
from core.media import images, mp4
from core.media.encryption import ContentKey
from core.media.image_sizes import check_variant_budget
from core.media.model import Presentation
from core.media.runner import run_ffmpeg
from core.services.captions import sync_text_tracks
from core.storage import Storage

log = logging.getLogger(__name__)
IMAGE_TIMEOUT_S = 120.0
REMUX_TIMEOUT_S = 1800.0

Plan = images.ThumbnailPlan | images.AnimatedPlan | images.StoryboardPlan


def image_relative(plan: Plan) -> str:
    """Where the image of `plan` lives, relative to the asset's media prefix."""
    return f"{images.IMAGES_DIR}/{plan.name}"


def _concatenate(storage: Storage, asset_id: str, relatives: list[str], dest: Path) -> Path:
    """init + media segments, back to back: a valid fragmented MP4 (or WebM) file ffmpeg can read."""
    with open(dest, "wb") as out:
        for relative in relatives:
            key = layout.media_key(asset_id, relative)
            local = storage.local_path(key)
            if local is not None:
                with open(local, "rb") as part:
                    shutil.copyfileobj(part, out, 1024 * 1024)
            else:
                out.writelines(storage.open_range(key))
    return dest


def decrypt_video(source: Path, dest: Path, key: ContentKey) -> Path:
    """The first video stream of a CENC fMP4 `source`, decrypted and copied (no re-encode) into NUT at `dest`.

    NUT keeps every timestamp as it was, so the images' seeks (from the start of the
    first segment) land where they would in the encrypted file.
    """
    try:
        with av.open(str(source), options={"decryption_key": key.key.hex()}) as src, \
                av.open(str(dest), "w", format="nut") as out:
            video = src.streams.video[0]
            copy = out.add_stream_from_template(video)
            for packet in src.demux(video):
                if packet.dts is None:  # the demuxer's end-of-stream flush packet
                    continue
                packet.stream = copy
                out.mux(packet)
    except (av.FFmpegError, IndexError) as exc:
        raise AbrError(f"the encrypted rendition could not be decrypted ({type(exc).__name__})",
                       code="image_failed") from None
    return dest


def make_image(storage: Storage, *, ffmpeg: str, work_dir: Path, asset_id: str, plan: Plan,
               max_variants: int | None = None, content_key: Callable[[], ContentKey] | None = None) -> str:
    """Run ffmpeg for `plan` unless its image is already stored; return the storage key.

    `max_variants`: refuse (`TooManyImages`) when the asset already stores that many images.
    `content_key`: loads an encrypted asset's key (asked only when an image must be made).
    """
    key = layout.media_key(asset_id, image_relative(plan))
    if storage.exists(key):
        return key
    if max_variants is not None:
        check_variant_budget(storage.list(layout.media_key(asset_id, images.IMAGES_DIR)), max_variants)
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="image-") as tmp:
        tmp_path = Path(tmp)
        suffix = "." + plan.decode.track.init_uri.rsplit(".", 1)[-1]
        source = _concatenate(storage, asset_id, plan.decode.files, tmp_path / f"source{suffix}")
        if plan.decode.encrypted:
            if content_key is None:
                raise AbrError("this asset is encrypted and no key was given to cut its images", code="image_failed")
            source = decrypt_video(source, tmp_path / "source.nut", content_key())
        out = tmp_path / plan.name
        if isinstance(plan, images.ThumbnailPlan):
            argv = images.build_thumbnail_argv(ffmpeg, plan, source, out)
        elif isinstance(plan, images.AnimatedPlan):
            argv = images.build_animated_argv(ffmpeg, plan, source, out)
        else:
            argv = images.build_storyboard_argv(ffmpeg, plan, source, out)
        run_ffmpeg(argv, duration=None, on_progress=None, timeout=IMAGE_TIMEOUT_S)
        if not out.exists() or out.stat().st_size == 0:
            raise AbrError("no picture could be decoded at that time", code="image_failed")
        storage.put_file(key, out, move=True)
    return key


def publish_static_mp4(storage: Storage, *, ffmpeg: str, work_dir: Path, asset_id: str,
                       presentation: Presentation) -> str | None:
    """Remux the top H.264 rung + audio into `static/download.mp4`; None when there is no H.264 rung."""
    key = layout.media_key(asset_id, mp4.DOWNLOAD_RELATIVE)
    picked = mp4.download_tracks(presentation)
    if picked is None:
        log.info("asset %s: no complete H.264 rendition, so no MP4 download", asset_id)
        return None
    video, audio = picked
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="mp4-") as tmp:
        tmp_path = Path(tmp)
        video_file = _concatenate(storage, asset_id, mp4.track_files(video), tmp_path / "video.mp4")
        audio_file = _concatenate(storage, asset_id, mp4.track_files(audio), tmp_path / "audio.mp4") \
            if audio is not None else None
        out = tmp_path / mp4.DOWNLOAD_NAME
        run_ffmpeg(mp4.build_remux_argv(ffmpeg, video_file, audio_file, out), duration=None, on_progress=None,
                   timeout=REMUX_TIMEOUT_S)
        storage.put_file(key, out, move=True)
    return key


def finish_extras(engine: Engine, storage: Storage, *, asset_id: str, presentation: Presentation, ffmpeg: str,
                  work_dir: Path, mp4_support: bool, content_key: ContentKey | None = None) -> None:
    """Called by the transcode after its last family, before the final `presentation.json` write.

    Text tracks uploaded while it ran are taken into the presentation; the
    storyboard is made (every segment is published by now) unless the encode
    stored it already (`core.media.images.StoryboardTap`); the MP4 download
    is made when asked for. A failed storyboard or remux is logged, not fatal:
    the stream is what the asset is for, and they 404 until a re-run.
    """
    sync_text_tracks(engine, asset_id, presentation)
    publish_storyboard(storage, ffmpeg=ffmpeg, work_dir=work_dir, asset_id=asset_id, presentation=presentation,
                       content_key=(lambda: content_key) if content_key is not None else None)
    if not mp4_support:
        return
    try:
        publish_static_mp4(storage, ffmpeg=ffmpeg, work_dir=work_dir, asset_id=asset_id, presentation=presentation)
    except AbrError as exc:
        log.warning("asset %s: the MP4 download could not be made: %s", asset_id, exc.message)


def publish_storyboard(storage: Storage, *, ffmpeg: str, work_dir: Path, asset_id: str,
                       presentation: Presentation, content_key: Callable[[], ContentKey] | None = None,
                       made: Path | None = None) -> str | None:
    """Make the storyboard sheet the origin's `storyboard.vtt` points into; None when it could not be made.

    `made`: a sheet the encode cut already (moved into storage when its name is the plan's, else
    left alone and the sheet is cut from the finished rung).
    """
    try:
        plan = images.plan_storyboard(presentation)
        if made is not None and made.name == plan.name:
            key = layout.media_key(asset_id, image_relative(plan))
            storage.put_file(key, made, move=True)
            return key
        if made is not None:
            log.info("asset %s: the encode's storyboard %s is not the planned %s; cutting it again",
                     asset_id, made.name, plan.name)
        return make_image(storage, ffmpeg=ffmpeg, work_dir=work_dir, asset_id=asset_id, plan=plan,
                          content_key=content_key)
    except AbrError as exc:  # NotFound: no complete video rung (audio only); FFmpegError
        log.info("asset %s: no storyboard: %s", asset_id, exc.message)
        return None


def storyboard_of_recording(storage: Storage, *, ffmpeg: str, work_dir: Path, asset_id: str,
                            content_key: Callable[[], ContentKey] | None = None) -> str | None:
    """A live recording's storyboard: it becomes an asset without a transcode, so without `finish_extras`."""
    try:
        data = storage.get_bytes(layout.presentation_key(asset_id))
    except AbrError as exc:
        log.warning("recording %s: no presentation for a storyboard: %s", asset_id, exc.message)
        return None
    return publish_storyboard(storage, ffmpeg=ffmpeg, work_dir=work_dir, asset_id=asset_id,
                              presentation=Presentation.from_dict(json.loads(data)), content_key=content_key)
