"""Reading HTML form posts without a multipart dependency: the dashboard only sends urlencoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs

from fastapi import Request

from signalbeam.domain.errors import Conflict, DomainError, InvalidInput, Malformed, NotFound
from signalbeam.domain.selectors import parse_label

# Errors about what was typed, shown next to the field; a refusal (Forbidden) is a whole page.
FIELD_ERRORS: tuple[type[DomainError], ...] = (InvalidInput, NotFound, Conflict, Malformed)


@dataclass
class Form:
    """Submitted fields (first value of each, and all values) plus errors to show by each field."""

    values: dict[str, list[str]]
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        """The first value of a field, stripped of surrounding blanks."""
        return (self.values.get(name) or [default])[0].strip()

    def all(self, name: str) -> list[str]:
        """Every value submitted for a field (checkboxes, multi-selects)."""
        return [value.strip() for value in self.values.get(name, [])]

    def optional(self, name: str) -> str | None:
        """A field's value, or None when it was left empty."""
        return self.get(name) or None

    def fail(self, name: str, message: str) -> None:
        """Remember an error to show next to `name` (the first one wins)."""
        self.errors.setdefault(name, message)


async def read_form(request: Request) -> Form:
    """The posted form; anything but urlencoded text is refused with a clear message."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise Malformed("send this form as application/x-www-form-urlencoded", field="body")
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as err:
        raise Malformed("the form is not UTF-8 text", field="body") from err
    return Form(parse_qs(text, keep_blank_values=True, max_num_fields=1000))


def parse_labels(text: str, field_name: str = "labels") -> dict[str, str]:
    """`env=prod, site=oslo` (commas or new lines) as a dict; names the first bad entry."""
    labels: dict[str, str] = {}
    for part in text.replace("\n", ",").split(","):
        if part.strip():
            try:
                key, value = parse_label(part.strip())
            except InvalidInput as err:
                raise InvalidInput(err.detail, field=field_name) from err
            labels[key] = value
    return labels
