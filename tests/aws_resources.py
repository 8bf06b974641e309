"""The calls table for tests, built from the deployment template so tests and production share one schema."""

from __future__ import annotations

from typing import Any

from emulator.local_aws import load_template, resolve, table_arguments


def create_calls_table(dynamodb: Any, name: str) -> None:
    """Create ``CallsTable`` as deploy/merge-template.json defines it, under the table name ``name``."""
    template = load_template()
    properties = resolve(
        template["Resources"]["CallsTable"]["Properties"], template=template, stage="dev", arns={}
    )
    create, ttl = table_arguments(properties)
    dynamodb.create_table(**{**create, "TableName": name})
    if ttl is not None:
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
