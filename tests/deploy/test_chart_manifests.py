"""Every manifest of every scenario is a valid Kubernetes object.

Built-in kinds are validated with kubernetes-validate (the Kubernetes OpenAPI schemas, strict: an
unknown or misplaced field fails) for the oldest Kubernetes the chart supports and a current one.
The CRD kinds (ServiceMonitor, ScaledObject) have no schema there; they are checked against the
minimal schemas below, which pin the fields their operators need.
"""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest

from conftest import MATRIX, SCENARIOS

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
