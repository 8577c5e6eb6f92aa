"""Labels of a clip and the filter's whole-clip reasons they give: the words of a clip's name, tags and captions
matched against the label rules (:data:`~humanoid_gpt.governance.filter_config.DEFAULT_LABEL_RULES`), and object
data."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from humanoid_gpt.governance.filter_config import OBJECT_RULES, FilterConfig
from humanoid_gpt.governance.filter_decision import Reason
from humanoid_gpt.motion.clip import MotionClip

#: Provenance keys whose text counts as a caption.
CAPTION_KEYS: tuple[str, ...] = ("caption", "captions", "text", "description", "labels")

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def words(text: str) -> list[str]:
    """Lower-case words of a name or caption: camelCase and snake_case split, digits dropped."""
    return [w.lower() for w in re.findall(r"[A-Za-z]+", _CAMEL.sub(" ", text))]


def clip_texts(clip: MotionClip, extra_labels: Sequence[str] = ()) -> list[str]:
    """What the label rules read: the clip name, its file stem, provenance tags and captions, and ``extra_labels``
    (labels a corpus source attaches)."""
    prov = clip.provenance or {}
    texts = [clip.name, *map(str, prov.get("tags") or []), *map(str, extra_labels)]
    if prov.get("path"):
        texts.append(Path(str(prov["path"])).stem)
    for key in CAPTION_KEYS:
        value = prov.get(key)
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, list | tuple):
            texts += [str(v) for v in value]
    return texts


def clip_labels(clip: MotionClip, extra_labels: Sequence[str] = ()) -> list[str]:
    """The clip's labels for the manifest and the card: provenance tags and ``extra_labels``, else the first word of
    its name (``fall_getup`` -> ``fall``), else ``unlabelled``."""
    labels = list(dict.fromkeys([*map(str, (clip.provenance or {}).get("tags") or []), *map(str, extra_labels)]))
    if not labels:
        first = words(clip.name)
        labels = [first[0]] if first else ["unlabelled"]
    return labels


def label_reasons(clip: MotionClip, config: FilterConfig, extra_labels: Sequence[str] = ()) -> list[Reason]:
    """Whole-clip reasons from the label rules and object data."""
    tokens = sorted({w for text in clip_texts(clip, extra_labels) for w in words(text)})
    out: list[Reason] = []
    objects = False
    for rule, pattern in config.label_rules.items():
        rx = re.compile(pattern, re.IGNORECASE)
        hits = [t for t in tokens if rx.fullmatch(t)]
        if hits:
            out.append(Reason(f"label:{rule}", f"'{', '.join(hits)}' in the name, tags or captions"))
            objects |= rule in OBJECT_RULES
    prov = clip.provenance or {}
    if config.drop_objects and (prov.get("has_objects") or objects):
        why = (
            f"object data in the file ({', '.join(prov.get('object_keys') or []) or 'has_objects'})"
            if prov.get("has_objects")
            else "an object label"
        )
        out.append(Reason("objects", f"the motion interacts with an object: {why}"))
    return out
