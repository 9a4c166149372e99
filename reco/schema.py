"""The base of every config section: unknown keys are errors, values are checked on assignment.

Each subsystem defines its own section model next to its code (``reco/<area>/config.py``) on
this base, and ``reco.config.Config`` gathers the sections into one schema.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo


class _InputPathMarker:
    """Marks a config field that names an input file or folder (see :data:`InputPath`)."""


# An input's local path or URI. A relative local path written in a config file is resolved
# against that file's folder when the config is loaded (reco.config.load_config), so a shipped
# config works from any working directory; one given with --set is relative to the working directory.
InputPath = Annotated[str, _InputPathMarker()]


def is_input_path(field: FieldInfo) -> bool:
    """Whether a model field is (optionally) an :data:`InputPath`."""
    return _marked(field.metadata) or _annotation_marked(field.annotation)


def _marked(metadata: Any) -> bool:
    return any(isinstance(m, _InputPathMarker) for m in metadata)


def _annotation_marked(annotation: Any) -> bool:
    return _marked(getattr(annotation, "__metadata__", ())) or any(
        _annotation_marked(a) for a in typing.get_args(annotation)
    )


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, values are checked on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def given_input_paths(model: BaseModel, prefix: str = "") -> dict[str, str]:
    """The :data:`InputPath` values a config sets explicitly (in its file or with --set), by dotted key.

    Defaults are left out: a section the config never mentions is one its job does not read.
    """
    out: dict[str, str] = {}
    for name in sorted(model.model_fields_set):
        field, value = type(model).model_fields[name], getattr(model, name)
        if isinstance(value, str) and is_input_path(field):
            out[prefix + name] = value
        elif isinstance(value, BaseModel):
            out.update(given_input_paths(value, f"{prefix}{name}."))
    return out
