"""The media worker's part of the packaged stack: ECS, networking, IAM, scaling, alarms and the dashboard.

The template is checked against the code it deploys, so the two cannot drift: environment variable names come
from ``media_worker.settings.ENV``, metric names from ``chalicelib.observability.KNOWN_METRICS`` and the
constants of ``media_worker.metrics``, and the task role against the SQS calls the worker makes. cfn-lint of
the whole packaged template (worker included) runs in test_deployment.py.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.observability import KNOWN_METRICS
from media_worker import metrics as worker_metrics
from media_worker.settings import ENV, WorkerSettings
from tests.app.test_deployment import ROOT, package_stages

Template = dict[str, Any]

NAMESPACE = "ChimeDialout"
WORKER_METRICS = frozenset(
    getattr(worker_metrics, name)
    for name in worker_metrics.__all__
    if name.isupper() and not name.startswith("DEFAULT_")
)
EMITTED = {"control-plane": KNOWN_METRICS, "media-worker": WORKER_METRICS}
# Read by Powertools itself, not by WorkerSettings.
POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}
OPTIONAL = ("HasSipDigestSecret", "HasRecordingsBucket", "HasMediaPublicIp")
# After the drain the worker still sends its last BYEs' retransmissions, writes final records and flushes
# metrics; ECS sends SIGKILL at stopTimeout.
DRAIN_MARGIN_S = 15
FARGATE_MAX_STOP_TIMEOUT_S = 120
# boto3 SQS client methods the worker calls, and the IAM action each needs.
SQS_CALL_ACTIONS = {
    "receive_message": "sqs:ReceiveMessage",
    "delete_message": "sqs:DeleteMessage",
    "change_message_visibility": "sqs:ChangeMessageVisibility",
    "get_queue_attributes": "sqs:GetQueueAttributes",
}
TASK_ROLE_GRANTS = {
    "sqs:ReceiveMessage": [{"Fn::GetAtt": ["DialQueue", "Arn"]}],
    "sqs:DeleteMessage": [{"Fn::GetAtt": ["DialQueue", "Arn"]}],
    "sqs:ChangeMessageVisibility": [{"Fn::GetAtt": ["DialQueue", "Arn"]}],
    "dynamodb:GetItem": [{"Fn::GetAtt": ["CallsTable", "Arn"]}],
    "dynamodb:UpdateItem": [{"Fn::GetAtt": ["CallsTable", "Arn"]}],
}
RECORDINGS_GRANT = {
    "s3:PutObject": [{"Fn::Sub": "arn:${AWS::Partition}:s3:::${RecordingsBucket}/${RecordingsPrefix}*"}],
    "s3:GetObject": [{"Fn::Sub": "arn:${AWS::Partition}:s3:::${RecordingsBucket}/announcements/*"}],
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    (path,) = package_stages(tmp_path_factory, ("prod",)).values()
    packaged: Template = json.loads(path.read_text(encoding="utf-8"))
    return packaged


def _resolve(value: Any, conditions: dict[str, bool]) -> Any:
    """``value`` with every ``Fn::If`` decided by ``conditions`` and ``AWS::NoValue`` removed."""
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return _resolve(when_true if conditions[name] else when_false, conditions)
        resolved = {k: _resolve(v, conditions) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v != {"Ref": "AWS::NoValue"}}
    if isinstance(value, list):
        items = [_resolve(v, conditions) for v in value]
        return [v for v in items if v != {"Ref": "AWS::NoValue"}]
    return value


def _all(value: bool) -> dict[str, bool]:
    return {"IsProd": True, **dict.fromkeys(OPTIONAL, value)}


def _properties(template: Template, logical_id: str, conditions: dict[str, bool] | None = None) -> Any:
    return _resolve(template["Resources"][logical_id]["Properties"], conditions or _all(True))


def _container(template: Template, conditions: dict[str, bool] | None = None) -> dict[str, Any]:
    (container,) = _properties(template, "WorkerTaskDefinition", conditions)["ContainerDefinitions"]
    assert isinstance(container, dict)
    return container


def _environment(template: Template, conditions: dict[str, bool] | None = None) -> dict[str, Any]:
    return {item["Name"]: item["Value"] for item in _container(template, conditions)["Environment"]}


def _grants(statements: list[dict[str, Any]]) -> dict[str, list[Any]]:
    granted: dict[str, list[Any]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "Condition" not in statement
        resources = (
            statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        )
        for action in statement["Action"]:
            assert action not in granted, f"{action} granted twice"
            granted[action] = resources
    return granted


def _role_statements(
    template: Template, logical_id: str, conditions: dict[str, bool]
) -> list[dict[str, Any]]:
    (policy,) = _properties(template, logical_id, conditions)["Policies"]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


# --- cluster, service, task --------------------------------------------------------------------------------


def test_cluster_has_container_insights(template: Template) -> None:
    cluster = _properties(template, "WorkerCluster")
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["ClusterSettings"]


def test_service_runs_the_task_on_fargate_in_the_given_network(template: Template) -> None:
    service = _properties(template, "WorkerService")
    assert service["LaunchType"] == "FARGATE"
    assert service["Cluster"] == {"Ref": "WorkerCluster"}
    assert service["TaskDefinition"] == {"Ref": "WorkerTaskDefinition"}
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"] == {
        "Subnets": {"Ref": "WorkerSubnets"},
        "SecurityGroups": [{"Ref": "WorkerSecurityGroup"}],
        "AssignPublicIp": {"Ref": "WorkerAssignPublicIp"},
    }
    # A DesiredCount here would reset the scaled task count (and drain live calls) on every stack update.
    assert "DesiredCount" not in service
    assert service["DeploymentConfiguration"]["MinimumHealthyPercent"] == 100
    parameters = template["Parameters"]
    assert parameters["WorkerSubnets"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["WorkerAssignPublicIp"]["Default"] == "DISABLED"


def test_task_definition_runs_the_worker_image_on_fargate(template: Template) -> None:
    task = _properties(template, "WorkerTaskDefinition")
    assert task["RequiresCompatibilities"] == ["FARGATE"]
    assert task["NetworkMode"] == "awsvpc"
    assert task["ExecutionRoleArn"] == {"Fn::GetAtt": ["WorkerExecutionRole", "Arn"]}
    assert task["TaskRoleArn"] == {"Fn::GetAtt": ["WorkerTaskRole", "Arn"]}
    container = _container(template)
    assert container["Image"] == {"Ref": "WorkerImage"}
    assert container["Essential"] is True
    assert "WorkerImage" in template["Parameters"]


def test_stop_timeout_leaves_room_after_the_drain(template: Template) -> None:
    container = _container(template)
    drain_s = float(_environment(template)["DRAIN_TIMEOUT_SECONDS"])
    assert container["StopTimeout"] == FARGATE_MAX_STOP_TIMEOUT_S
    assert container["StopTimeout"] >= drain_s + DRAIN_MARGIN_S
    # Above the worker's own default, below the ceiling WorkerSettings accepts.
    assert WorkerSettings.model_fields["drain_timeout_s"].default <= drain_s


def test_health_check_probes_healthz_on_the_health_port(template: Template) -> None:
    container = _container(template)
    port = _environment(template)["HEALTH_PORT"]
    command = container["HealthCheck"]["Command"]
    assert command[0] == "CMD"
    assert any(f"http://127.0.0.1:{port}/healthz" in part for part in command)
    assert {"ContainerPort": int(port), "Protocol": "tcp", "Name": "health"} in container["PortMappings"]


def test_logs_go_to_a_retained_log_group_via_awslogs(template: Template) -> None:
    logging = _container(template)["LogConfiguration"]
    assert logging["LogDriver"] == "awslogs"
    assert logging["Options"]["awslogs-group"] == {"Ref": "WorkerLogGroup"}
    group = template["Resources"]["WorkerLogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Fn::If": ["IsProd", 90, 14]}


# --- environment and secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize("optional", [True, False])
def test_environment_names_are_worker_settings_names(template: Template, optional: bool) -> None:
    names = list(_environment(template, _all(optional)))
    assert len(names) == len(set(names))
    settings_names = set(ENV.values())
    assert set(names) - POWERTOOLS_VARIABLES <= settings_names
    assert set(names) & POWERTOOLS_VARIABLES == POWERTOOLS_VARIABLES
    secret_names = [s["Name"] for s in _container(template, _all(optional)).get("Secrets", [])]
    assert set(secret_names) <= settings_names
    assert not set(secret_names) & set(names)


def test_environment_from_parameter_defaults_is_valid_worker_settings(template: Template) -> None:
    parameters = template["Parameters"]
    placeholders = {
        "DialQueue": "https://sqs.us-east-1.amazonaws.com/123456789012/chime-dialout-prod-dial",
        "CallsTable": "chime-dialout-prod-calls",
    }

    def value_of(value: Any) -> str:
        if isinstance(value, dict):
            name = value["Ref"]
            return placeholders[name] if name in placeholders else str(parameters[name]["Default"])
        return str(value)

    environment = {name: value_of(v) for name, v in _environment(template, _all(False)).items()}
    assert environment["DIAL_QUEUE_URL"] == placeholders["DialQueue"]
    assert environment["POWERTOOLS_SERVICE_NAME"] == worker_metrics.DEFAULT_SERVICE
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == worker_metrics.DEFAULT_NAMESPACE
    settings = WorkerSettings.from_env(environment)
    settings.require_service()
    # Unset by default: the task's own address is advertised (see docs/deployment.md on NAT).
    assert settings.media_public_ip is None
    assert settings.sip_ca_file is None


def test_media_public_ip_and_recordings_bucket_are_optional(template: Template) -> None:
    assert "MEDIA_PUBLIC_IP" not in _environment(template, _all(False))
    assert "RECORDINGS_BUCKET" not in _environment(template, _all(False))
    enabled = _environment(template, _all(True))
    assert enabled["MEDIA_PUBLIC_IP"] == {"Ref": "MediaPublicIp"}
    assert enabled["RECORDINGS_BUCKET"] == {"Ref": "RecordingsBucket"}


def test_digest_credentials_come_from_secrets_manager_when_configured(template: Template) -> None:
    assert "Secrets" not in _container(template, _all(False))
    secrets = {s["Name"]: s["ValueFrom"] for s in _container(template, _all(True))["Secrets"]}
    assert secrets == {
        ENV["sip_username"]: {"Fn::Sub": "${SipDigestSecretArn}:username::"},
        ENV["sip_password"]: {"Fn::Sub": "${SipDigestSecretArn}:password::"},
    }
    assert template["Parameters"]["SipDigestSecretArn"]["Default"] == ""


# --- IAM ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("optional", [True, False])
def test_task_role_grants_only_the_listed_actions_on_the_listed_resources(
    template: Template, optional: bool
) -> None:
    granted = _grants(_role_statements(template, "WorkerTaskRole", _all(optional)))
    assert granted == {**TASK_ROLE_GRANTS, **(RECORDINGS_GRANT if optional else {})}
    # Metrics travel as EMF log lines: no cloudwatch:PutMetricData.
    assert not [a for a in granted if a.startswith("cloudwatch:")]


def _sqs_calls_in_worker() -> set[str]:
    called: set[str] = set()
    for path in sorted((ROOT / "media_worker").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr in SQS_CALL_ACTIONS:
                called.add(SQS_CALL_ACTIONS[node.attr])
    return called


def test_task_role_covers_the_queue_calls_the_worker_makes(template: Template) -> None:
    granted = _grants(_role_statements(template, "WorkerTaskRole", _all(False)))
    needed = _sqs_calls_in_worker()
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= needed
    assert needed <= set(granted)


@pytest.mark.parametrize("optional", [True, False])
def test_execution_role_pulls_one_repository_writes_one_log_group_reads_one_secret(
    template: Template, optional: bool
) -> None:
    granted = _grants(_role_statements(template, "WorkerExecutionRole", _all(optional)))
    repository = {
        "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}"
        ":repository/${WorkerRepositoryName}"
    }
    expected = {
        # GetAuthorizationToken has no resource-level permissions.
        "ecr:GetAuthorizationToken": ["*"],
        "ecr:BatchCheckLayerAvailability": [repository],
        "ecr:BatchGetImage": [repository],
        "ecr:GetDownloadUrlForLayer": [repository],
        "logs:CreateLogStream": [{"Fn::Sub": "${WorkerLogGroup.Arn}"}],
        "logs:PutLogEvents": [{"Fn::Sub": "${WorkerLogGroup.Arn}"}],
    }
    if optional:
        expected["secretsmanager:GetSecretValue"] = [{"Ref": "SipDigestSecretArn"}]
    assert granted == expected


def test_roles_are_assumable_by_ecs_tasks_of_this_account_only(template: Template) -> None:
    for logical_id in ("WorkerExecutionRole", "WorkerTaskRole"):
        role = _properties(template, logical_id)
        assert "ManagedPolicyArns" not in role
        (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


# --- network ------------------------------------------------------------------------------------------------


def test_voice_connector_cidrs_by_region(template: Template) -> None:
    network = template["Mappings"]["VoiceConnectorNetwork"]
    assert network["us-east-1"] == {"Cidr": "3.80.16.0/23"}
    assert network["us-west-2"] == {"Cidr": "99.77.253.0/24"}
    assert set(template["Parameters"]["VoiceConnectorRegion"]["AllowedValues"]) == set(network)


def test_security_group_allows_sip_tls_and_srtp_with_the_voice_connector_only(template: Template) -> None:
    group = _properties(template, "WorkerSecurityGroup")
    cidr = {"Fn::FindInMap": ["VoiceConnectorNetwork", {"Ref": "VoiceConnectorRegion"}, "Cidr"]}
    egress = {
        (r["IpProtocol"], r["FromPort"], r["ToPort"]): r["CidrIp"] for r in group["SecurityGroupEgress"]
    }
    assert egress[("tcp", 5061, 5061)] == cidr
    assert egress[("udp", 5000, 65000)] == cidr
    # AWS APIs (SQS, DynamoDB, ECR, logs, secrets): HTTPS only.
    assert egress[("tcp", 443, 443)] == "0.0.0.0/0"
    assert len(egress) == 3
    (ingress,) = group["SecurityGroupIngress"]
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"], ingress["CidrIp"]) == (
        "udp",
        {"Ref": "RtpPortMin"},
        {"Ref": "RtpPortMax"},
        cidr,
    )
    environment = _environment(template)
    assert environment["RTP_PORT_MIN"] == {"Ref": "RtpPortMin"}
    assert environment["RTP_PORT_MAX"] == {"Ref": "RtpPortMax"}


# --- scaling ------------------------------------------------------------------------------------------------


def test_service_scales_on_backlog_per_task_and_active_calls(template: Template) -> None:
    target = _properties(template, "WorkerScalableTarget")
    assert (target["ServiceNamespace"], target["ScalableDimension"]) == ("ecs", "ecs:service:DesiredCount")
    assert target["ResourceId"] == {"Fn::Sub": "service/${WorkerCluster}/${WorkerService.Name}"}

    backlog = _properties(template, "WorkerBacklogScalingPolicy")["TargetTrackingScalingPolicyConfiguration"]
    queries = {q["Id"]: q for q in backlog["CustomizedMetricSpecification"]["Metrics"]}
    visible = queries["backlog"]["MetricStat"]["Metric"]
    assert (visible["Namespace"], visible["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert visible["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DialQueue", "QueueName"]}}
    ]
    tasks = queries["tasks"]["MetricStat"]["Metric"]
    assert (tasks["Namespace"], tasks["MetricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    (returned,) = [q for q in queries.values() if q["ReturnData"]]
    assert "backlog / tasks" in returned["Expression"]
    # Scale-in drains live calls: only the ActiveCalls policy may take tasks away.
    assert backlog["DisableScaleIn"] is True

    active = _properties(template, "WorkerActiveCallsScalingPolicy")[
        "TargetTrackingScalingPolicyConfiguration"
    ]
    spec = active["CustomizedMetricSpecification"]
    assert (spec["Namespace"], spec["MetricName"], spec["Statistic"]) == (NAMESPACE, "ActiveCalls", "Average")
    assert spec["Dimensions"] == [{"Name": "service", "Value": "media-worker"}]


# --- alarms and dashboard -----------------------------------------------------------------------------------


def _metric_stats(properties: dict[str, Any]) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(namespace, metric name, dimensions) of a plain or metric-math alarm or scaling metric."""
    if "MetricName" in properties:
        yield properties["Namespace"], properties["MetricName"], properties.get("Dimensions", [])
    for query in properties.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            yield metric["Namespace"], metric["MetricName"], metric.get("Dimensions", [])


def _assert_emitted(namespace: str, name: str, dimensions: list[dict[str, Any]]) -> None:
    if namespace != NAMESPACE:
        return
    service = {d["Name"]: d["Value"] for d in dimensions}["service"]
    assert name in EMITTED[service], f"{name} is not a metric the {service} emits"


def test_alarms_and_scaling_use_metrics_the_code_emits(template: Template) -> None:
    resources = template["Resources"]
    checked = 0
    for resource in resources.values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            properties = resource["Properties"]
        elif resource["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy":
            properties = resource["Properties"]["TargetTrackingScalingPolicyConfiguration"][
                "CustomizedMetricSpecification"
            ]
        else:
            continue
        for namespace, name, dimensions in _metric_stats(properties):
            _assert_emitted(namespace, name, dimensions)
            checked += namespace == NAMESPACE
    assert checked >= 7


def test_worker_alarms_exist(template: Template) -> None:
    alarms = {
        name: r["Properties"]
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }

    def math(alarm: str) -> tuple[set[str], str]:
        properties = alarms[alarm]
        names = {name for _, name, _ in _metric_stats(properties)}
        (expression,) = [q["Expression"] for q in properties["Metrics"] if q.get("ReturnData")]
        return names, expression

    assert math("FailedCallRateAlarm")[0] == {"CallsAttempted", "CallsFailed"}
    assert math("NoCallConnectedAlarm")[0] == {"JobsEnqueued", "CallsConnected"}
    assert all(
        q["MetricStat"]["Period"] == 900
        for q in alarms["NoCallConnectedAlarm"]["Metrics"]
        if "MetricStat" in q
    )
    assert math("NoWorkerWithBacklogAlarm")[0] == {"ApproximateNumberOfMessagesVisible", "RunningTaskCount"}
    lease = alarms["LeaseExpirationsAlarm"]
    assert (lease["MetricName"], lease["Dimensions"]) == (
        "Redials",
        [{"Name": "service", "Value": "control-plane"}],
    )
    assert {"DialDeadLetterQueueNotEmptyAlarm", "DialQueueStaleAlarm"} <= set(alarms)
    for properties in alarms.values():
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_every_alarm_has_a_runbook_entry(template: Template) -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            name = resource["Properties"]["AlarmName"]["Fn::Sub"].replace("chime-dialout-${Stage}-", "")
            assert f"`{name}`" in runbook, f"docs/operations.md does not cover the {name} alarm"


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z]+))?\}")


def _dashboard(template: Template) -> dict[str, Any]:
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    names = {match.group(1) for match in _PLACEHOLDER.finditer(body)}
    known = set(template["Resources"]) | set(template["Parameters"]) | {"AWS::Region"}
    assert names <= known, f"unknown placeholders {names - known}"
    # Substituted values are names and ARNs: plain strings without quotes or backslashes.
    dashboard: dict[str, Any] = json.loads(_PLACEHOLDER.sub("placeholder-value", body))
    return dashboard


def test_dashboard_body_is_json_and_uses_metrics_the_code_emits(template: Template) -> None:
    widgets = _dashboard(template)["widgets"]
    shown: set[str] = set()
    for widget in widgets:
        if widget["type"] != "metric":
            continue
        for row in widget["properties"]["metrics"]:
            fields = [part for part in row if isinstance(part, str)]
            if fields and fields[0] == NAMESPACE:
                dims = dict(zip(fields[2::2], fields[3::2], strict=True))
                _assert_emitted(NAMESPACE, fields[1], [{"Name": k, "Value": v} for k, v in dims.items()])
                shown.add(fields[1])
            for part in row:
                if isinstance(part, dict) and "expression" in part:
                    for name in re.findall(r'MetricName="([A-Za-z]+)"', part["expression"]):
                        assert name in KNOWN_METRICS | WORKER_METRICS
                        shown.add(name)
    wanted = {
        "ActiveCalls",
        "CallsConnected",
        "CallsFailed",
        "SetupLatencyMs",
        "Mos",
        "JitterMs",
        "PacketLossPct",
    }
    assert wanted <= shown
    assert any(w["type"] == "log" for w in widgets)


def test_outputs_name_the_worker_resources(template: Template) -> None:
    outputs = template["Outputs"]
    assert outputs["WorkerClusterName"]["Value"] == {"Ref": "WorkerCluster"}
    assert outputs["WorkerLogGroupName"]["Value"] == {"Ref": "WorkerLogGroup"}


def test_worker_log_group_matches_the_documented_name(template: Template) -> None:
    group = template["Resources"]["WorkerLogGroup"]["Properties"]["LogGroupName"]["Fn::Sub"]
    assert group == "/ecs/chime-dialout-${Stage}/media-worker"
    assert group.replace("${Stage}", "prod") in (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
