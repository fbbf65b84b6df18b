"""Every manifest of every scenario is a valid Kubernetes object.

Built-in kinds are validated with kubernetes-validate (the Kubernetes OpenAPI schemas, strict: an
unknown or misplaced field fails) for the oldest Kubernetes the chart supports and a current one.
The CRD kinds (ServiceMonitor, ScaledObject) have no schema there; they are checked against the
minimal schemas below, which pin the fields their operators need. The Inference Extension's
InferencePool and the Gateway API's HTTPRoute are checked against fuller schemas kept as test
data in schemas/ (written from their API references: required fields, types, enums, limits).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from conftest import MATRIX, SCENARIOS

SCHEMA_DIR = Path(__file__).parent / "schemas"


def _schema_file(name: str) -> dict:
    schema = json.loads((SCHEMA_DIR / name).read_text())
    jsonschema.validators.validator_for(schema).check_schema(schema)
    return schema

KUBE_VERSIONS = ["1.25.0", "1.33.0"]

_META = {
    "type": "object",
    "required": ["name", "namespace"],
    "properties": {"name": {"type": "string", "minLength": 1}, "namespace": {"type": "string"}},
}
_SELECTOR = {
    "type": "object",
    "required": ["matchLabels"],
    "properties": {"matchLabels": {"type": "object", "minProperties": 1}},
}

# Minimal schemas for the CRD kinds: the fields Prometheus Operator and KEDA act on.
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["selector", "endpoints"],
                "additionalProperties": False,
                "properties": {
                    "selector": _SELECTOR,
                    "namespaceSelector": {"type": "object"},
                    "endpoints": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["port", "path"],
                            "additionalProperties": False,
                            "properties": {
                                "port": {"type": "string"},
                                "path": {"type": "string"},
                                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                                "authorization": {
                                    "type": "object",
                                    "required": ["credentials"],
                                    "properties": {
                                        "type": {"const": "Bearer"},
                                        "credentials": {
                                            "type": "object",
                                            "required": ["name", "key"],
                                            "properties": {
                                                "name": {"type": "string", "minLength": 1},
                                                "key": {"type": "string", "minLength": 1},
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    ("keda.sh/v1alpha1", "ScaledObject"): {
        "type": "object",
        "required": ["metadata", "spec"],
        "properties": {
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string"},
                        },
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "advanced": {"type": "object"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": {"const": "prometheus"},
                                "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                                # KEDA trigger metadata values are strings.
                                "metadata": {
                                    "type": "object",
                                    "required": ["serverAddress", "query", "threshold"],
                                    "additionalProperties": {"type": "string"},
                                },
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


CRD_SCHEMAS[("inference.networking.k8s.io/v1", "InferencePool")] = _schema_file("inferencepool-v1.json")
CRD_SCHEMAS[("gateway.networking.k8s.io/v1", "HTTPRoute")] = _schema_file("httproute-v1.json")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_manifest_validates(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    assert rendered.manifests, "nothing rendered"
    for manifest in rendered.manifests:
        obj = manifest.obj
        crd_schema = CRD_SCHEMAS.get((obj["apiVersion"], obj["kind"]))
        if crd_schema is not None:
            jsonschema.validate(obj, crd_schema)
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{manifest.template} ({manifest.kind}) invalid for {version}: {error.message}")


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_object_is_namespaced_and_labelled(rendered_scenarios, scenario):
    for manifest in rendered_scenarios[scenario].manifests:
        meta = manifest.obj["metadata"]
        assert meta["namespace"] == "gpt-oss", manifest.template
        assert meta["labels"]["app.kubernetes.io/instance"] == "demo", manifest.template
        assert len(meta["name"]) <= 63


def test_matrix_renders_the_expected_kinds(rendered_scenarios):
    kinds = {name: sorted({m.kind for m in rendered_scenarios[name].manifests}) for name in MATRIX}
    always = {"Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy", "Pod"}
    for name, found in kinds.items():
        assert always <= set(found), (name, found)
    assert "ScaledObject" in kinds["autoscaling"]
    assert "ServiceMonitor" in kinds["servicemonitor"]
    assert "Ingress" in kinds["ingress"]
    assert "Ingress" not in kinds["defaults"]
    assert "ScaledObject" not in kinds["defaults"]
    assert "ServiceMonitor" not in kinds["defaults"]
    assert "PersistentVolumeClaim" not in kinds["defaults"]
    assert "PersistentVolumeClaim" in kinds["autoscaling"]  # persistence on, no existing claim
    assert "PersistentVolumeClaim" not in kinds["120b-pvc-existing-secrets"]  # existing claim


def test_scale_out_scenarios_render_their_kinds(rendered_scenarios):
    def count(name):
        found: dict[str, int] = {}
        for manifest in rendered_scenarios[name].manifests:
            found[manifest.kind] = found.get(manifest.kind, 0) + 1
        return found

    pool = count("inference-pool")
    assert pool["InferencePool"] == pool["HTTPRoute"] == 1
    # the endpoint picker beside the server: its Deployment, Service, account, policy, RBAC, config
    for kind in ("Deployment", "Service", "ServiceAccount", "NetworkPolicy"):
        assert pool[kind] == 2, (kind, pool)
    assert pool["Role"] == pool["RoleBinding"] == pool["ConfigMap"] == 1
    existing = count("inference-pool-existing-picker")
    assert existing["InferencePool"] == existing["HTTPRoute"] == 1
    assert existing["Deployment"] == existing["Service"] == existing["NetworkPolicy"] == 1
    assert not {"Role", "RoleBinding", "ConfigMap"} & set(existing)
    # Off by default: today's plain Service is all there is.
    for name in ("defaults", "redis-response-store"):
        assert not {"InferencePool", "HTTPRoute", "Role", "RoleBinding", "ConfigMap"} & set(count(name))


def _pool_and_route(rendered_scenarios):
    rendered = rendered_scenarios["inference-pool"]
    return rendered.one("InferencePool"), rendered.one("HTTPRoute")


def _without(obj: dict, *path: str) -> dict:
    node = obj
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return obj


POOL_BREAKAGES = {
    "no-target-ports": lambda p: _without(p, "spec", "targetPorts"),
    "empty-target-ports": lambda p: p["spec"].update(targetPorts=[]) or p,
    "port-as-string": lambda p: p["spec"].update(targetPorts=[{"number": "8000"}]) or p,
    "port-out-of-range": lambda p: p["spec"].update(targetPorts=[{"number": 70000}]) or p,
    "no-selector": lambda p: _without(p, "spec", "selector"),
    "empty-selector": lambda p: p["spec"].update(selector={"matchLabels": {}}) or p,
    "selector-expressions": lambda p: p["spec"]["selector"].update(matchExpressions=[]) or p,
    "no-picker": lambda p: _without(p, "spec", "endpointPickerRef"),
    "service-picker-without-port": lambda p: _without(p, "spec", "endpointPickerRef", "port"),
    "unknown-failure-mode": lambda p: p["spec"]["endpointPickerRef"].update(failureMode="Retry") or p,
    "unknown-field": lambda p: p["spec"].update(extensionRef={"name": "old-alpha-field"}) or p,
    "alpha-api-version": lambda p: p.update(apiVersion="inference.networking.x-k8s.io/v1alpha2") or p,
}

ROUTE_BREAKAGES = {
    "parent-without-name": lambda r: r["spec"].update(parentRefs=[{"kind": "Gateway"}]) or r,
    "service-backend-without-port": lambda r: r["spec"]["rules"][0].update(
        backendRefs=[{"name": "demo-gpt-oss-server"}]) or r,
    "relative-prefix": lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update(value="v1") or r,
    "unknown-path-type": lambda r: r["spec"]["rules"][0]["matches"][0]["path"].update(type="Prefix") or r,
    "bad-timeout": lambda r: r["spec"]["rules"][0].update(timeouts={"request": "1 hour"}) or r,
    "bad-hostname": lambda r: r["spec"].update(hostnames=["LLM.example.com:443"]) or r,
    "weight-too-big": lambda r: r["spec"]["rules"][0]["backendRefs"][0].update(weight=10**7) or r,
    "unknown-field": lambda r: r["spec"].update(backendRefs=[]) or r,
}


@pytest.mark.parametrize("breakage", list(POOL_BREAKAGES))
def test_inference_pool_schema_is_not_a_rubber_stamp(rendered_scenarios, breakage):
    pool, _ = _pool_and_route(rendered_scenarios)
    schema = CRD_SCHEMAS[("inference.networking.k8s.io/v1", "InferencePool")]
    jsonschema.validate(pool, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(POOL_BREAKAGES[breakage](copy.deepcopy(pool)), schema)


@pytest.mark.parametrize("breakage", list(ROUTE_BREAKAGES))
def test_http_route_schema_is_not_a_rubber_stamp(rendered_scenarios, breakage):
    _, route = _pool_and_route(rendered_scenarios)
    schema = CRD_SCHEMAS[("gateway.networking.k8s.io/v1", "HTTPRoute")]
    jsonschema.validate(route, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(ROUTE_BREAKAGES[breakage](copy.deepcopy(route)), schema)


def test_external_picker_reference_validates(rendered_scenarios):
    rendered = rendered_scenarios["inference-pool-existing-picker"]
    jsonschema.validate(rendered.one("InferencePool"),
                        CRD_SCHEMAS[("inference.networking.k8s.io/v1", "InferencePool")])
    jsonschema.validate(rendered.one("HTTPRoute"), CRD_SCHEMAS[("gateway.networking.k8s.io/v1", "HTTPRoute")])
