"""Contracts for tools outside the project: JSON Schema for a row, Open Data Contract Standard YAML.

Both are made from a contract document (`contract_doc.contract_document`), so what a data catalog
or `datacontract-cli` reads is exactly what review compares and every write is validated against.
"""

from __future__ import annotations

from typing import Any

from features.standard import JOIN_KEY

ODCS_API_VERSION = "v3.1.0"
# A feature kind's type name: JSON Schema's and ODCS's logical types agree on these.
_TYPES = {"float": "number", "int": "integer", "bool": "boolean", "string": "string"}
_STANDARD_JSON = {
    "string": {"type": "string"},
    "timestamp[us, tz=UTC]": {"type": "string", "format": "date-time"},
}


def _standard_schema(column: dict[str, Any]) -> dict[str, Any]:
    schema = dict(_STANDARD_JSON[column["arrow_type"]])
    return {"anyOf": [schema, {"type": "null"}]} if column["nullable"] else schema


def _feature_schema(column: dict[str, Any]) -> dict[str, Any]:
    checks = column["checks"]
    if column["kind"] == "embedding":
        schema: dict[str, Any] = {
            "type": "array",
            "items": {"type": "number"},
            "minItems": checks["dim"],
            "maxItems": checks["dim"],
        }
    elif column["kind"] == "segments":  # sorted and non-overlapping: the Pandera check's part
        second: dict[str, Any] = {"type": "number", "minimum": 0}
        if checks.get("max_s") is not None:
            second["maximum"] = checks["max_s"]
        pair = {"type": "array", "items": second, "minItems": 2, "maxItems": 2}
        schema = {"type": "array", "items": pair}
    else:
        schema = {"type": _TYPES[column["kind"]]}
        if "ge" in checks:
            schema["minimum"] = checks["ge"]
        if "le" in checks:
            schema["maximum"] = checks["le"]
        if "isin" in checks:
            schema["enum"] = list(checks["isin"])
    if column["nullable"]:
        schema = {"anyOf": [schema, {"type": "null"}]}
    if column["description"]:
        schema["description"] = column["description"]
    return schema


def json_schema(contract: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema (2020-12) of one row of the signal's table, as it passes the contract."""
    standard = contract["standard_columns"]
    properties = {n: _standard_schema(c) for n, c in standard.items()}
    properties.update({n: _feature_schema(c) for n, c in contract["features"].items()})
    columns = {**standard, **contract["features"]}
    required = [n for n, c in columns.items() if not c["nullable"]]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"content-signals/{contract['name']}/v{contract['version']}",
        "title": f"{contract['name']}@{contract['version']}",
        "description": contract["description"],
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def answer_schema(contract: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema of the features alone, every one required: what a model must answer.

    The LLM extractor sends it as the response format and validates each answer against it, so
    an answer that passes is one the signal's contract accepts (the same enums and bounds).
    """
    features = contract["features"]
    return {
        "type": "object",
        "properties": {n: _feature_schema(c) for n, c in features.items()},
        "required": list(features),
        "additionalProperties": False,
    }


def _odcs_property(name: str, column: dict[str, Any]) -> dict[str, Any]:
    checks = column["checks"]
    prop: dict[str, Any] = {
        "name": name,
        "physicalType": column["arrow_type"],
        "required": not column["nullable"],
    }
    if column["description"]:
        prop["description"] = column["description"]
    if column["kind"] == "embedding":
        prop["logicalType"] = "array"
        prop["items"] = {"name": "element", "logicalType": "number", "physicalType": "float"}
        prop["logicalTypeOptions"] = {"minItems": checks["dim"], "maxItems": checks["dim"]}
    elif column["kind"] == "segments":
        prop["logicalType"] = "array"
        prop["items"] = {
            "name": "segment",
            "logicalType": "array",
            "logicalTypeOptions": {"minItems": 2, "maxItems": 2},
            "items": {"name": "seconds", "logicalType": "number", "physicalType": "float"},
        }
    else:
        prop["logicalType"] = _TYPES[column["kind"]]
        bounds = {"minimum": checks.get("ge"), "maximum": checks.get("le")}
        if any(v is not None for v in bounds.values()):
            prop["logicalTypeOptions"] = {k: v for k, v in bounds.items() if v is not None}
    if "isin" in checks:
        prop["quality"] = [
            {
                "name": f"{name}_allowed_values",
                "type": "custom",
                "engine": "pandera",
                "implementation": f"Check.isin({list(checks['isin'])!r})",
            }
        ]
    return prop


def odcs(contract: dict[str, Any]) -> dict[str, Any]:
    """The contract as an Open Data Contract Standard v3.1 document (dump it as YAML)."""
    name, version = contract["name"], contract["version"]
    standard = [
        {
            "name": column,
            "physicalType": c["arrow_type"],
            "logicalType": "date" if c["arrow_type"].startswith("timestamp") else "string",
            "required": not c["nullable"],
            **({"primaryKey": True, "primaryKeyPosition": 1} if column == JOIN_KEY else {}),
        }
        for column, c in contract["standard_columns"].items()
    ]
    features = [_odcs_property(n, c) for n, c in contract["features"].items()]
    return {
        "apiVersion": ODCS_API_VERSION,
        "kind": "DataContract",
        "id": f"content-signals.{name}.v{version}",
        "name": f"{name}@{version}",
        "version": f"{version}.0.0",
        "status": "active",
        "domain": "content-signals",
        "description": {"purpose": contract["description"]},
        "schema": [
            {
                "name": f"{name}_v{version}",
                "physicalName": f"signals/{name}/v{version}",
                "physicalType": "table",
                "logicalType": "object",
                "description": contract["description"],
                "properties": standard + features,
            }
        ],
        "tags": [f"{k}:{v}" for k, v in contract["tags"].items()],
        "customProperties": [
            {"property": "owner", "value": contract["owner"]},
            {"property": "consumers", "value": contract["consumers"]},
            {"property": "extractor", "value": contract["extractor"]},
            {"property": "extractorVersion", "value": contract["extractor_version"]},
            {"property": "ttlSeconds", "value": contract["ttl_seconds"]},
        ],
    }
