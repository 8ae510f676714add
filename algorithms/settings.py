"""`Settings`: the base of the validated settings of this package (`PhaseSpec`, `RunConfig`).

A pydantic model, immutable, strict (a bool or a string is not an integer, a string is not a
number) and closed (an unknown field is an error), whose every validation problem is one line
naming the field and what it allows, raised as the subclass's own ValueError (`error`), which
the CLI reports as bad input (exit 2).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    # Set by subclasses: the ValueError subclass raised, what each field allows (for type and
    # range errors pydantic finds itself), and how a field is named in messages.
    error: ClassVar[type[ValueError]] = ValueError
    allowed: ClassVar[dict[str, str]] = {}

    @classmethod
    def field_label(cls, field: str) -> str:
        return field

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as e:
            raise self.error(self._one_line(e)) from None

    @classmethod
    def _one_line(cls, error: ValidationError) -> str:
        """The first problem pydantic found, as one line."""
        first = error.errors()[0]
        if first["type"] == "value_error":  # raised by our validators: already one line
            return str(first["ctx"]["error"])
        field = ".".join(str(part) for part in first["loc"])
        label = cls.field_label(field)
        if first["type"] == "missing":
            return f"{label} is required"
        if first["type"] == "extra_forbidden":
            known = ", ".join(cls.field_label(f) for f in cls.model_fields)
            return f"unknown setting {label!r}; the settings are {known}"
        return f"{label} must be {cls.allowed.get(field, first['msg'].lower())}; got {first.get('input')!r}"

    def fields(self) -> dict[str, Any]:
        """The fields by name, in declaration order."""
        return self.model_dump()

    def replace(self, **changes: Any) -> Any:
        """A copy with `changes`, validated like a new one."""
        return type(self)(**{**self.fields(), **changes})
