"""Records and messages as pydantic models, to and from Flower's ``RecordDict``.

A :class:`RecordModel` is one Flower record (a ``ConfigRecord`` or a ``MetricRecord``)
whose keys are the model's field aliases; a :class:`WireMessage` is one message's
content, whose fields are its records (the alias is the record's name). Reading
validates: an unknown record or key, a wrong type, NaN or infinity where a number is
required, an oversized text or list all raise :class:`~common.errors.WireError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from flwr.app import ArrayRecord, ConfigRecord, MetricRecord, RecordDict
from pydantic import BaseModel, ConfigDict, ValidationError

from common.errors import WireError
from common.wire.privacy import Privacy

# The longest validation message kept as an exclusion reason.
MAX_REASON = 400


class RecordModel(BaseModel):
    """One Flower record; ``METRIC`` says whether it is a MetricRecord."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, strict=True, allow_inf_nan=False
    )
    METRIC: ClassVar[bool] = False

    def to_record(self) -> ConfigRecord | MetricRecord:
        data = self.model_dump(by_alias=True, exclude_none=True)
        return MetricRecord(data) if self.METRIC else ConfigRecord(data)

    @classmethod
    def fields(cls) -> Iterator[tuple[str, Privacy, str]]:
        """(key, privacy class, protection) of every field."""
        for info in cls.model_fields.values():
            extra = info.json_schema_extra
            assert isinstance(extra, dict), info  # every field is declared with wire_field
            yield str(info.alias), Privacy(str(extra["privacy"])), str(info.description)


class WireMessage(BaseModel):
    """One message's content: its fields are records, each under its alias."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, frozen=True, arbitrary_types_allowed=True
    )
    # Records of arrays (model updates) and the class and protection of their values.
    ARRAYS: ClassVar[dict[str, tuple[Privacy, str]]] = {}
    TITLE: ClassVar[str] = ""

    def to_content(self) -> RecordDict:
        content = {}
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if value is not None:
                content[str(info.alias)] = (
                    value if isinstance(value, ArrayRecord) else (value.to_record())
                )
        return RecordDict(content)

    @classmethod
    def read(cls, content: RecordDict, context: dict[str, Any] | None = None) -> WireMessage:
        """Validate ``content`` against this contract; raise WireError if it does not hold."""
        fields = {str(info.alias): info for info in cls.model_fields.values()}
        data: dict[str, Any] = {}
        for name, record in content.items():
            info = fields.get(name)
            if info is None:
                raise WireError(f"{cls.TITLE}: unknown record {name!r}")
            model = _record_model(info.annotation)
            if isinstance(record, ArrayRecord):
                data[name] = record
            elif isinstance(record, MetricRecord | ConfigRecord):
                wanted = MetricRecord if model is not None and model.METRIC else ConfigRecord
                if not isinstance(record, wanted):
                    raise WireError(f"{cls.TITLE}: record {name!r} is not a {wanted.__name__}")
                data[name] = dict(record)
        try:
            return cls.model_validate(data, context=context or {})
        except ValidationError as error:
            raise WireError(f"{cls.TITLE}: {describe(error)}") from None

    @classmethod
    def records(cls) -> Iterator[tuple[str, type[RecordModel]]]:
        for info in cls.model_fields.values():
            model = _record_model(info.annotation)
            if model is not None:
                yield str(info.alias), model


def _record_model(annotation: Any) -> type[RecordModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, RecordModel):
            return candidate
    return None


def describe(error: ValidationError) -> str:
    """The validation errors in one short line: where and what, no input echoed."""
    parts = []
    for item in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in item["loc"])
        parts.append(f"{where}: {item['msg']}" if where else item["msg"])
    text = "; ".join(parts)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."
