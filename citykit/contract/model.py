"""The base every citykit input model shares: camelCase keys in YAML, unknown keys rejected."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        use_attribute_docstrings=True,
    )
