"""Frame plugins: discovery (the `abr.frame_plugins` entry points), option validation, the chain's format.

The built-ins are registered by this project's own entry points, and are also
listed here so that a source checkout that was never `pip install`ed finds them.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points

from pydantic import BaseModel, ValidationError

from core.media.plugins.base import PIX_FMTS, FramePlugin

log = logging.getLogger(__name__)
GROUP = "abr.frame_plugins"
BUILTINS = {
    "watermark": "core.media.plugins.watermark:Watermark",
    "timecode": "core.media.plugins.timecode:Timecode",
    "blur_faces": "core.media.plugins.blur_faces:BlurFaces",
}
MAX_CHAIN = 8


class PluginSettingsError(ValueError):
    """A `frame_plugins` setting that cannot be honoured (unknown name, bad options, no common format)."""


@dataclass(frozen=True)
class Installed:
    name: str
    cls: type[FramePlugin] | None
    missing: tuple[str, ...]  # modules it needs that are not installed
    error: str | None = None  # why it could not be loaded

    @property
    def available(self) -> bool:
        return self.cls is not None and not self.missing and self.error is None


def _load(name: str, target: str) -> Installed:
    module, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module)
        cls = getattr(obj, attr)
    except Exception as exc:  # a broken third-party package must not break the listing
        log.warning("frame plugin %s (%s) cannot be loaded: %s", name, target, exc)
        return Installed(name, None, (), f"cannot be loaded: {exc}")
    if not (isinstance(cls, type) and issubclass(cls, FramePlugin)):
        return Installed(name, None, (), f"{target} is not a FramePlugin")
    missing = tuple(m for m in cls.requires if importlib.util.find_spec(m) is None)
    return Installed(name, cls, missing)



@lru_cache(maxsize=1)
def installed() -> dict[str, Installed]:
    """Every plugin this process can see, by name (built-ins first; an entry point may not shadow one)."""
    found = {name: _load(name, target) for name, target in BUILTINS.items()}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue
        found[ep.name] = _load(ep.name, ep.value)
    return found


def describe() -> list[dict]:
    """What `GET /v1/frame-plugins` lists: name, description, formats, batch size, option schema."""
    out = []
    for p in installed().values():
        item = {"name": p.name, "available": p.available}
        if p.cls is not None:
            item.update(description=p.cls.description, pix_fmts=list(p.cls.pix_fmts), batch_size=p.cls.batch_size,
                        options_schema=p.cls.Options.model_json_schema())
        if p.missing:
            item["unavailable_reason"] = f"needs {', '.join(p.missing)} (pip install 'abr-origin[vision]')"
        elif p.error:
            item["unavailable_reason"] = p.error
        out.append(item)
    return out


def validate_chain(specs: list[dict]) -> list[dict]:
    """Check names and options; return the specs with options normalised (defaults filled in)."""
    if len(specs) > MAX_CHAIN:
        raise PluginSettingsError(f"at most {MAX_CHAIN} frame plugins")
    out = []
    for i, spec in enumerate(specs):
        name = spec.get("name")
        plugin = installed().get(name)
        if plugin is None:
            known = ", ".join(sorted(installed())) or "none"
            raise PluginSettingsError(f"frame_plugins.{i}.name: no frame plugin {name!r} is installed "
                                      f"(installed: {known})")
        if not plugin.available:
            raise PluginSettingsError(f"frame_plugins.{i}.name: {name} is installed but unavailable: "
                                      f"{describe_reason(plugin)}")
        options = parse_options(plugin.cls, spec.get("options") or {}, where=f"frame_plugins.{i}.options")
        out.append({"name": name, "options": options.model_dump(mode="json")})
    chain_format([installed()[s["name"]].cls for s in out])
    return out


def describe_reason(plugin: Installed) -> str:
    return f"needs {', '.join(plugin.missing)}" if plugin.missing else (plugin.error or "unavailable")


def parse_options(cls: type[FramePlugin], options: dict, *, where: str = "options") -> BaseModel:
    try:
        return cls.Options.model_validate(options)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise PluginSettingsError(f"{where}{'.' + loc if loc else ''}: {first['msg']}") from exc


def chain_format(classes: list[type[FramePlugin]]) -> str:
    """The pixel format the whole chain works in: the first plugin's preferred one that all accept."""
    if not classes:
        return "yuv420p"
    common = [f for f in classes[0].pix_fmts if f in PIX_FMTS and all(f in c.pix_fmts for c in classes[1:])]
    if not common:
        names = ", ".join(f"{c.name} ({'/'.join(c.pix_fmts)})" for c in classes)
        raise PluginSettingsError(f"frame_plugins: no pixel format every plugin accepts: {names}")
    return common[0]
