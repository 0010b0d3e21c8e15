"""The Feast objects of this repository, derived from the signal declarations in `features/`.

Nothing here is written per signal: declaring a `Signal` in `features/` is what adds its Delta
source, its feature view `<name>_v<version>` and its place in the consumer groups' feature
services. `feast apply` finds the objects as module attributes; `repo_objects()` hands the same
objects to code that registers them from Python.
"""

from __future__ import annotations

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.permissions.permission import Permission
from feast.types import Array, Bool, FeastType, Float32, Int64, String

from feature_repo.permissions import read_permissions
from features import ENTITY_NAME, JOIN_KEY, FeatureType, Signal, all_signals, consumer_groups

# Relative to the lake: the offline store joins it to $SIGNALS_LAKE_URI or its `lake_uri`.
SIGNALS_PREFIX = "signals"

_FEAST_TYPES: dict[str, FeastType] = {
    "float": Float32,
    "int": Int64,
    "bool": Bool,
    "string": String,
    "embedding": Array(Float32),
    # Feast (0.67) serves a list of lists as a VALUE_LIST and keeps its inner type in the
    # registry, so time segments are served whole, as the offline table holds them.
    "segments": Array(Array(Float32)),
}


def feast_type(feature: FeatureType) -> FeastType:
    """The Feast type that serves a declared feature type; one table so the two cannot drift."""
    try:
        return _FEAST_TYPES[feature.kind]
    except KeyError:
        raise ValueError(f"no Feast type for feature kind {feature.kind!r}") from None


def feature_fields(signal: Signal) -> list[Field]:
    """The feature view's schema, in declared order; embeddings carry their dimension, and the
    searchable one is marked as Feast marks a vector field (`vector_index`, its metric), which
    is what the vector index and Feast's UI read."""
    search = signal.searchable
    return [
        Field(
            name=name,
            dtype=feast_type(feature),
            description=feature.description,
            vector_length=getattr(feature, "dim", 0) if feature.kind == "embedding" else 0,
            vector_index=search is not None and search.feature == name,
            vector_search_metric=search.metric if search and search.feature == name else None,
        )
        for name, feature in signal.features.items()
    ]


def source_for(signal: Signal) -> FileSource:
    """The signal's Delta table, by lake-relative path so one repository serves any lake."""
    return FileSource(
        name=signal.feature_view_name,
        path=f"{SIGNALS_PREFIX}/{signal.storage_name}",
        file_format=DeltaFormat(),
        timestamp_field="event_timestamp",
        created_timestamp_column="created_timestamp",
        description=f"Delta table of {signal.ref}",
        owner=signal.owner,
    )


def feature_view_for(signal: Signal, entity: Entity) -> FeatureView:
    """The feature view that serves one major version of a signal."""
    return FeatureView(
        name=signal.feature_view_name,
        entities=[entity],
        ttl=signal.ttl,
        schema=feature_fields(signal),
        source=source_for(signal),
        online=True,
        description=signal.description,
        owner=signal.owner,
        tags={
            **signal.tags,
            "signal": signal.ref,
            **({"searchable": signal.searchable.summary()} if signal.searchable else {}),
        },
    )


content = Entity(
    name=ENTITY_NAME,
    join_keys=[JOIN_KEY],
    value_type=ValueType.STRING,
    description="A catalog item: track, episode, audiobook, chapter or video.",
)


def feature_views() -> dict[str, FeatureView]:
    """One feature view per declared signal version, by `name@version`."""
    return {signal.ref: feature_view_for(signal, content) for signal in all_signals()}


def feature_services(views: dict[str, FeatureView]) -> dict[str, FeatureService]:
    """One feature service per consumer group, over the views of the signals it pins."""
    return {
        group: FeatureService(
            name=group,
            features=[views[signal.ref] for signal in signals],
            description=f"Signals for {group}: {', '.join(s.ref for s in signals)}",
            tags={"consumer_group": group},
        )
        for group, signals in consumer_groups().items()
    }


FEATURE_VIEWS = feature_views()
FEATURE_SERVICES = feature_services(FEATURE_VIEWS)
PERMISSIONS = read_permissions(FEATURE_SERVICES)


def repo_objects() -> list[Entity | FeatureView | FeatureService | Permission]:
    """Everything this repository registers, for `FeatureStore.apply` from Python (the jobs):
    built from the declarations as they are now, so a declaration file added to this process
    (`SIGNALS_DECLARATIONS`) after the module was imported is registered too."""
    views = feature_views()
    services = feature_services(views)
    return [content, *views.values(), *services.values(), *read_permissions(services)]


def _expose(objects: list[FeatureView | FeatureService | Permission]) -> None:
    # `feast apply` scans module attributes, not containers; a name clash must not hide an object.
    namespace = globals()
    seen: set[str] = set()
    for obj in objects:
        previous = namespace.get(obj.name)
        stale = isinstance(previous, FeatureView | FeatureService | Permission)  # a reload's
        if obj.name in seen or (previous is not None and not stale):
            raise ValueError(f"definitions: the name '{obj.name}' is taken twice")
        seen.add(obj.name)
        namespace[obj.name] = obj


_expose([*FEATURE_VIEWS.values(), *FEATURE_SERVICES.values(), *PERMISSIONS])
