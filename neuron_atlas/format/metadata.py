"""Typed footer metadata of atlas files: one pydantic model per kind of file, parsed in one place, so a malformed
value (``stored_top_rate="abc"``, a missing ``filter_rate``) is an AtlasFormatError naming the file and the field
rather than a TypeError in the middle of a query."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from ..errors import AtlasFormatError

Rate = Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)]
Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Count = Annotated[StrictInt, Field(ge=0)]


class _Meta(BaseModel):
    model_config = ConfigDict(extra="allow")


class ShardMeta(_Meta):
    """A counts shard (and the v2 per-language tables): whose statistics it holds. Old shards may lack it all."""

    model: StrictStr | None = None
    lang: StrictStr | None = None
    tokens: Count | None = None


class DerivedMeta(_Meta):
    """``lape``/``ranking``: the languages, rates and thresholds they were derived with (or an importer's sets)."""

    languages: list[StrictStr]
    stored_top_rate: Rate
    imported: StrictBool = False
    tokens: dict[str, Count] | None = None
    filter_rate: Rate | None = None
    bar_ratio: Rate | None = None
    tau_filter: Finite | None = None
    tau_bar: Finite | None = None
    derived: StrictStr | None = None
    source: StrictStr | None = None

    @model_validator(mode="after")
    def _statistics_named(self) -> DerivedMeta:
        if not self.imported:
            missing = [f for f in ("filter_rate", "bar_ratio", "tau_filter", "tau_bar") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"field {missing[0]!r}: required for tables derived from counts")
        return self


class MethodRanksMeta(_Meta):
    """``method_ranks``: the languages ranked against each other, the neurons kept per (method, language), the
    methods ranked."""

    languages: list[StrictStr]
    depth: Count
    methods: list[StrictStr]


class FeaturesMeta(_Meta):
    """A features table: the model and language pair it describes."""

    model: StrictStr | None = None
    src: StrictStr | None = None
    tgt: StrictStr | None = None


_MODELS: dict[str, type[_Meta]] = {"counts": ShardMeta, "activations": ShardMeta, "residual": ShardMeta,
                                   "lape": DerivedMeta, "ranking": DerivedMeta, "method_ranks": MethodRanksMeta,
                                   "features": FeaturesMeta}


def parse(raw: dict[str, Any], kind: str, path: str) -> dict[str, Any]:
    """``raw`` checked against the model of ``kind`` (kinds without one pass as they are); AtlasFormatError naming
    ``path`` and the first wrong field otherwise. Returns the metadata as given (callers read it as a dict)."""
    model = _MODELS.get(kind)
    if model is None:
        return raw
    try:
        model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "metadata"
        got = f", got {first['input']!r}" if "input" in first and not isinstance(first["input"], dict) else ""
        raise AtlasFormatError(f"{path}: footer metadata field {where!r} is invalid ({first['msg']}{got}); "
                               "rebuild the file with neuron-atlas") from None
    return raw
