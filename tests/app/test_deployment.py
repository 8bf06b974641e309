"""Deployment artefacts: `chalice package --merge-template` must give a lint-clean, least-privilege stack.

Packaging copies exactly what Chalice ships (app.py, chalicelib/, vendor/, requirements.txt, .chalice/*.json)
into a temporary project, so the repository never gains a .chalice/deployments cache. Chalice downloads the
Linux wheels for requirements.txt from PyPI, so these tests need that one network path.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STAGES = ("dev", "prod")
FUNCTIONS = {
    "OnMeetingStarted": "on_meeting_started",
    "OnMeetingEnded": "on_meeting_ended",
    "OnAttendeeEvent": "on_attendee_event",
    "SweepCalls": "sweep_calls",
}
EVENT_HANDLERS = ("OnMeetingStarted", "OnMeetingEnded", "OnAttendeeEvent")
NEEDED_ACTIONS = {
    "chime:CreateAttendee",
    "chime:DeleteAttendee",
    "chime:GetMeeting",
    "sqs:SendMessage",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:Query",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
# boto3 client methods the control plane may call, and the IAM action each needs.
CLIENT_CALL_ACTIONS = {
    "create_attendee": "chime:CreateAttendee",
    "delete_attendee": "chime:DeleteAttendee",
    "get_meeting": "chime:GetMeeting",
    "send_message": "sqs:SendMessage",
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
}
# Inside transact_write_items each element is authorised as its own action (DynamoDB developer guide,
# "Using IAM with DynamoDB transactions").
TRANSACTION_ELEMENT_ACTIONS = {
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
}
# A concrete account and region stand in for the deploy target when checking the policies' ARN patterns.
REGION, ACCOUNT = "eu-west-1", "123456789012"
MEETING_ID = "87654321-4321-4321-1234-111122223333"

Template = dict[str, Any]


def _package_env() -> dict[str, str]:
    # Module-scoped fixtures run before the per-test environment scrub, so build a clean one here.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_"))}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }
    )
    return env


def _copy_chalice_inputs(project: Path) -> None:
    (project / ".chalice").mkdir(parents=True)
    for name in ("config.json", *(f"policy-{stage}.json" for stage in STAGES)):
        shutil.copy2(ROOT / ".chalice" / name, project / ".chalice" / name)
    shutil.copy2(ROOT / "app.py", project / "app.py")
    shutil.copy2(ROOT / "requirements.txt", project / "requirements.txt")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package_dir in ("chalicelib", "vendor"):
        if (ROOT / package_dir).is_dir():
            shutil.copytree(ROOT / package_dir, project / package_dir, ignore=ignore)


def package_stages(tmp_path_factory: pytest.TempPathFactory, stages: tuple[str, ...]) -> dict[str, Path]:
    """`chalice package --merge-template` for each stage; returns stage -> sam.json path."""
    project = tmp_path_factory.mktemp("project")
    _copy_chalice_inputs(project)
    outputs: dict[str, Path] = {}
    for stage in stages:
        out = tmp_path_factory.mktemp(f"package-{stage}")
        result = subprocess.run(
            [
                str(BIN / "chalice"),
                "--project-dir",
                str(project),
                "package",
                "--stage",
                stage,
                "--merge-template",
                str(ROOT / "deploy" / "merge-template.json"),
                str(out / "build"),
            ],
            capture_output=True,
            text=True,
            env=_package_env(),
            check=False,
            timeout=600,
        )
        assert result.returncode == 0, (
            f"chalice package --stage {stage} failed:\n{result.stdout}{result.stderr}"
        )
        outputs[stage] = out / "build" / "sam.json"
    return outputs


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return package_stages(tmp_path_factory, STAGES)


@pytest.fixture(scope="module")
def templates(packaged: dict[str, Path]) -> dict[str, Template]:
    return {stage: json.loads(path.read_text(encoding="utf-8")) for stage, path in packaged.items()}


def _resources_of_type(template: Template, resource_type: str) -> dict[str, Any]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == resource_type}


def _name(template: Template, logical_id: str, key: str, stage: str) -> str:
    """A physical name the template builds with Fn::Sub from the Stage parameter."""
    value = template["Resources"][logical_id]["Properties"][key]
    return str(value["Fn::Sub"]).replace("${Stage}", stage)


def _policy(stage: str) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(
        (ROOT / ".chalice" / f"policy-{stage}.json").read_text(encoding="utf-8")
    )
    return policy


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allowed(policy: dict[str, Any], action: str, resource_arn: str) -> bool:
    """IAM matching for this policy's shape: Allow statements, `*`/`?` wildcards, no conditions."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        if action in _as_list(statement["Action"]) and any(
            fnmatchcase(resource_arn, pattern) for pattern in _as_list(statement["Resource"])
        ):
            return True
    return False


# --- the packaged template ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_packaged_template_passes_cfn_lint(packaged: dict[str, Path], stage: str) -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint"), "--", str(packaged[stage])],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, f"cfn-lint ({stage}):\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("stage", STAGES)
def test_chalice_functions_are_the_four_handlers(templates: dict[str, Template], stage: str) -> None:
    functions = _resources_of_type(templates[stage], "AWS::Serverless::Function")
    assert set(functions) == set(FUNCTIONS)
    for logical_id, python_name in FUNCTIONS.items():
        properties = functions[logical_id]["Properties"]
        assert properties["Handler"] == f"app.{python_name}"
        assert properties["Tracing"] == "Active"
        # The name is what the policy's log-group ARN pattern relies on.
        assert (
            _name(templates[stage], logical_id, "FunctionName", stage)
            == f"chime-dialout-{stage}-{python_name}"
        )


def test_event_rules_are_the_patterns_chalicelib_defines(templates: dict[str, Template]) -> None:
    from chalicelib.events import ATTENDEE_EVENTS_PATTERN, MEETING_ENDED_PATTERN, MEETING_STARTED_PATTERN

    functions = _resources_of_type(templates["dev"], "AWS::Serverless::Function")
    wanted = {
        "OnMeetingStarted": MEETING_STARTED_PATTERN,
        "OnMeetingEnded": MEETING_ENDED_PATTERN,
        "OnAttendeeEvent": ATTENDEE_EVENTS_PATTERN,
    }
    for logical_id, expected in wanted.items():
        (event,) = functions[logical_id]["Properties"]["Events"].values()
        assert event["Type"] == "CloudWatchEvent"
        pattern = event["Properties"]["Pattern"]
        assert pattern == expected
        assert pattern["source"] == ["aws.chime"]
        # Other aws.chime events (media pipelines, channel flows) share the source: detail-type splits them.
        assert pattern["detail-type"] == ["Chime Meeting State Change"]
        assert pattern["detail"]["eventType"]
        assert all(t.startswith("chime:") for t in pattern["detail"]["eventType"])


def test_sweeper_runs_every_minute(templates: dict[str, Template]) -> None:
    (event,) = templates["dev"]["Resources"]["SweepCalls"]["Properties"]["Events"].values()
    assert event == {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)"}}


@pytest.mark.parametrize("stage", STAGES)
def test_functions_read_table_and_queue_from_the_stack(templates: dict[str, Template], stage: str) -> None:
    template = templates[stage]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CALLS_TABLE"] == {"Ref": "CallsTable"}
    assert variables["DIAL_QUEUE_URL"] == {"Ref": "DialQueue"}
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    for logical_id in FUNCTIONS:
        own = template["Resources"][logical_id]["Properties"]["Environment"]["Variables"]
        # A function-level value would shadow the Globals reference with a hand-copied string.
        assert "CALLS_TABLE" not in own
        assert "DIAL_QUEUE_URL" not in own
        assert own["POWERTOOLS_SERVICE_NAME"] == "control-plane"
        assert own["POWERTOOLS_METRICS_NAMESPACE"] == "ChimeDialout"
        assert own["DIAL_PLAN"] == config["stages"][stage]["environment_variables"]["DIAL_PLAN"]
        assert all(isinstance(value, str) for value in own.values())


def test_failed_meeting_events_are_parked_not_dropped(templates: dict[str, Template]) -> None:
    resources = templates["dev"]["Resources"]
    for logical_id in EVENT_HANDLERS:
        invoke = resources[logical_id]["Properties"]["EventInvokeConfig"]
        assert invoke["DestinationConfig"]["OnFailure"] == {
            "Type": "SQS",
            "Destination": {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]},
        }


def test_dial_queue_is_encrypted_and_redrives_to_its_dlq(templates: dict[str, Template]) -> None:
    resources = templates["dev"]["Resources"]
    queue = resources["DialQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] >= 360
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DialDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 5,
    }
    dlq = resources["DialDeadLetterQueue"]["Properties"]
    assert dlq["SqsManagedSseEnabled"] is True
    # A standard queue's DLQ keeps the original enqueue time: it must outlive the source queue's retention.
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600 > queue["MessageRetentionPeriod"]
    assert resources["FailedEventsQueue"]["Properties"]["SqsManagedSseEnabled"] is True


def test_calls_table_matches_the_registry_schema(templates: dict[str, Template]) -> None:
    table = templates["dev"]["Resources"]["CallsTable"]
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    indexes = {
        index["IndexName"]: (
            [(k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]],
            index["Projection"],
        )
        for index in properties["GlobalSecondaryIndexes"]
    }
    assert indexes == {
        "meeting-index": ([("meeting_id", "HASH"), ("pk", "RANGE")], {"ProjectionType": "ALL"}),
        "state-index": ([("state", "HASH"), ("updated_at", "RANGE")], {"ProjectionType": "ALL"}),
    }
    assert {a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]} == {
        "pk": "S",
        "meeting_id": "S",
        "state": "S",
        "updated_at": "S",
    }
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def test_alarms_cover_dead_letters_create_attendee_errors_and_every_handler(
    templates: dict[str, Template],
) -> None:
    template = templates["dev"]
    alarms = _resources_of_type(template, "AWS::CloudWatch::Alarm")
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]

    dlq_alarm = alarms["DialDeadLetterQueueNotEmptyAlarm"]["Properties"]
    assert dlq_alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq_alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DialDeadLetterQueue", "QueueName"]}}
    ]
    assert (dlq_alarm["Threshold"], dlq_alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")

    # observability.count() puts the all-codes total in a blob dimensioned by `service` alone.
    errors_alarm = alarms["CreateAttendeeErrorsAlarm"]["Properties"]
    assert (errors_alarm["Namespace"], errors_alarm["MetricName"]) == ("ChimeDialout", "CreateAttendeeErrors")
    assert errors_alarm["Dimensions"] == [{"Name": "service", "Value": "control-plane"}]
    assert errors_alarm["Statistic"] == "Sum"

    watched = {
        alarm["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for alarm in alarms.values()
        if alarm["Properties"].get("Namespace") == "AWS/Lambda"
        and alarm["Properties"]["MetricName"] == "Errors"
    }
    assert watched == set(FUNCTIONS)

    topic = template["Resources"]["AlarmTopic"]["Properties"]
    # CloudWatch cannot use the AWS-managed alias/aws/sns key: the topic's key policy must let it in.
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key_statements = template["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert any(s["Principal"] == {"Service": "cloudwatch.amazonaws.com"} for s in key_statements)


def test_outputs_name_the_queue_and_table(templates: dict[str, Template]) -> None:
    outputs = templates["dev"]["Outputs"]
    assert outputs["DialQueueUrl"]["Value"] == {"Ref": "DialQueue"}
    assert outputs["CallsTableName"]["Value"] == {"Ref": "CallsTable"}


# --- IAM: the policy files against the template ------------------------------------------------------------


@pytest.mark.parametrize("stage", STAGES)
def test_every_role_carries_exactly_the_stage_policy(templates: dict[str, Template], stage: str) -> None:
    roles = _resources_of_type(templates[stage], "AWS::IAM::Role")
    function_roles = {f"{logical_id}Role" for logical_id in FUNCTIONS}
    # The media worker's two roles are checked in test_deployment_worker.py.
    assert set(roles) == function_roles | {"WorkerExecutionRole", "WorkerTaskRole"}
    for name in function_roles:
        role = roles[name]
        (policy,) = role["Properties"]["Policies"]
        assert policy["PolicyDocument"] == _policy(stage)
        assert "ManagedPolicyArns" not in role["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_policy_grants_only_the_needed_actions(stage: str) -> None:
    policy = _policy(stage)
    actions = [a for s in policy["Statement"] for a in _as_list(s["Action"])]
    assert not [a for a in actions if "*" in a or "?" in a]
    assert set(actions) == NEEDED_ACTIONS
    for statement in policy["Statement"]:
        if "*" in _as_list(statement["Resource"]):
            # X-Ray has no resource-level permissions; nothing else may use a bare "*".
            assert {a.split(":")[0] for a in _as_list(statement["Action"])} == {"xray"}


def _actions_the_code_needs() -> set[str]:
    needed: set[str] = set()
    for path in [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr in CLIENT_CALL_ACTIONS:
                needed.add(CLIENT_CALL_ACTIONS[node.func.attr])
            elif node.func.attr == "transact_write_items":
                needed.update(
                    TRANSACTION_ELEMENT_ACTIONS[key.value]
                    for inner in ast.walk(node)
                    if isinstance(inner, ast.Dict)
                    for key in inner.keys
                    if isinstance(key, ast.Constant) and key.value in TRANSACTION_ELEMENT_ACTIONS
                )
            elif node.func.attr.startswith(("transact_", "batch_", "scan")):
                needed.add(f"unmapped client call {node.func.attr}: extend CLIENT_CALL_ACTIONS")
    return needed


@pytest.mark.parametrize("stage", STAGES)
def test_policy_covers_every_call_the_code_makes_and_no_more(stage: str) -> None:
    granted = {a for s in _policy(stage)["Statement"] for a in _as_list(s["Action"])}
    runtime = {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert _actions_the_code_needs() == granted - runtime


@pytest.mark.parametrize("stage", STAGES)
def test_policy_arns_match_the_template_names(templates: dict[str, Template], stage: str) -> None:
    template, policy = templates[stage], _policy(stage)
    queue = _name(template, "DialQueue", "QueueName", stage)
    dlq = _name(template, "DialDeadLetterQueue", "QueueName", stage)
    failed = _name(template, "FailedEventsQueue", "QueueName", stage)
    table = _name(template, "CallsTable", "TableName", stage)
    sqs, ddb = f"arn:aws:sqs:{REGION}:{ACCOUNT}", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}"

    assert _allowed(policy, "sqs:SendMessage", f"{sqs}:{queue}")
    assert _allowed(policy, "sqs:SendMessage", f"{sqs}:{failed}")
    assert not _allowed(policy, "sqs:SendMessage", f"{sqs}:{dlq}")
    item_actions = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem", "Query")
    for action in (f"dynamodb:{name}" for name in item_actions):
        assert _allowed(policy, action, f"{ddb}:table/{table}")
    for index in ("meeting-index", "state-index"):
        assert _allowed(policy, "dynamodb:Query", f"{ddb}:table/{table}/index/{index}")
        assert not _allowed(policy, "dynamodb:UpdateItem", f"{ddb}:table/{table}/index/{index}")
    assert not _allowed(policy, "dynamodb:GetItem", f"{ddb}:table/{table}-other")
    for logical_id in FUNCTIONS:
        function = _name(template, logical_id, "FunctionName", stage)
        log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{function}"
        assert _allowed(policy, "logs:CreateLogStream", f"{log_group}:*")
        assert _allowed(policy, "logs:PutLogEvents", f"{log_group}:log-stream:2024/05/01/[$LATEST]abc")
    # The service authorisation reference has listed meeting ARNs both with and without a region.
    for meeting in (
        f"arn:aws:chime:{REGION}:{ACCOUNT}:meeting/{MEETING_ID}",
        f"arn:aws:chime::{ACCOUNT}:meeting/{MEETING_ID}",
    ):
        for action in ("chime:CreateAttendee", "chime:DeleteAttendee", "chime:GetMeeting"):
            assert _allowed(policy, action, meeting)
    other_stage = "prod" if stage == "dev" else "dev"
    assert not _allowed(policy, "sqs:SendMessage", f"{sqs}:{queue.replace(stage, other_stage)}")
    assert not _allowed(policy, "dynamodb:PutItem", f"{ddb}:table/{table.replace(stage, other_stage)}")


# --- .chalice/config.json ----------------------------------------------------------------------------------


def test_config_turns_autogen_off_and_points_at_existing_policy_files() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    assert (config["version"], config["app_name"]) == ("2.0", "chime-dialout")
    assert set(config["stages"]) == set(STAGES)
    for stage, settings in config["stages"].items():
        assert settings.get("autogen_policy", config.get("autogen_policy")) is False
        assert settings["iam_policy_file"] == f"policy-{stage}.json"
        assert (ROOT / ".chalice" / settings["iam_policy_file"]).is_file()
        variables = {**config["environment_variables"], **settings["environment_variables"]}
        # Supplied by the template, never by hand.
        assert "CALLS_TABLE" not in variables
        assert "DIAL_QUEUE_URL" not in variables
        assert {
            "DIAL_PLAN",
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_METRICS_NAMESPACE",
            "POWERTOOLS_LOG_LEVEL",
        } <= set(variables)


@pytest.mark.parametrize("stage", STAGES)
def test_configured_dial_plans_are_valid(stage: str) -> None:
    from chalicelib.dial_plan import DialPlan

    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    DialPlan.from_json(config["stages"][stage]["environment_variables"]["DIAL_PLAN"])
