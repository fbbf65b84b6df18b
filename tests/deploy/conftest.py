"""Shared fixtures for the deployment tests.

The chart is rendered by Helm itself (the Helm v4 Go SDK, through helm-python-sdk), offline: no
cluster and no helm binary. Run with the deploy tools' own environment:

    python3 -m venv .venv-deploy
    .venv-deploy/bin/pip install -r scripts/deploy-tools-requirements.txt
    .venv-deploy/bin/python -m pytest tests/deploy
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import helm_python as helm
except ImportError as error:  # pragma: no cover - a setup mistake, explained
    raise ImportError(
        "tests/deploy needs the deploy tools: python3 -m venv .venv-deploy && "
        ".venv-deploy/bin/pip install -r scripts/deploy-tools-requirements.txt, then "
        ".venv-deploy/bin/python -m pytest tests/deploy"
    ) from error

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "gpt-oss-server"
DOCKERFILE = REPO / "Dockerfile.cuda"
CHECKOV_CONFIG = REPO / ".checkov.yaml"
HADOLINT_CONFIG = REPO / ".hadolint.yaml"
RELEASE = "demo"
NAMESPACE = "gpt-oss"

H100_AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {
                            "key": "nvidia.com/gpu.product",
                            "operator": "In",
                            "values": ["NVIDIA-H100-80GB-HBM3"],
                        }
                    ]
                }
            ]
        }
    }
}

# The acceptance matrix (issue 4), plus a few variants that exercise other branches.
SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "120b-pvc-existing-secrets": {
        "model": {
            "name": "openai/gpt-oss-120b",
            "path": "/models/gpt-oss-120b",
            "offline": True,
            "volume": {"existingClaim": "gpt-oss-weights"},
        },
        "engineArgs": ["--gpu-memory-utilization", "0.95", "--max-num-batched-tokens", 1024],
        "cache": {"persistence": {"enabled": True, "existingClaim": "gpt-oss-cache"}},
        "auth": {"existingSecret": "gpt-oss-api-keys", "existingSecretKey": "keys"},
        "huggingface": {"existingSecret": "hf-credentials", "existingSecretKey": "HF_TOKEN"},
        "resources": {"requests": {"cpu": "8", "memory": "64Gi"}, "limits": {"memory": "128Gi"}},
        "affinity": H100_AFFINITY,
        "runtimeClassName": "nvidia",
    },
    "autoscaling": {
        "autoscaling": {
            "enabled": True,
            "maxReplicas": 6,
            "targetWaitingPerReplica": 8,
            "prometheus": {"serverAddress": "http://prometheus-operated.monitoring.svc:9090"},
        },
        "metrics": {"serviceMonitor": {"enabled": True}},
        "cache": {"persistence": {"enabled": True, "storageClassName": "shared-nfs"}},
    },
    "servicemonitor": {
        "metrics": {
            "protect": True,
            "serviceMonitor": {
                "enabled": True,
                "labels": {"release": "kube-prometheus-stack"},
                "authorization": {"secretName": "gpt-oss-scrape", "secretKey": "token"},
            },
        },
    },
    "ingress": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": "3600"},
            "hosts": [{"host": "llm.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
            "tls": [{"secretName": "llm-tls", "hosts": ["llm.example.com"]}],
        },
    },
    "2-gpus-tensor-parallel": {
        "model": {"name": "openai/gpt-oss-120b"},
        "gpu": {"count": 2},
        "shm": {"sizeLimit": "16Gi"},
        "replicaCount": 2,
    },
    # Variants.
    "auth-off-hf-token-created": {"auth": {"enabled": False}, "huggingface": {"token": "hf_created"}},
    "created-api-keys": {"auth": {"apiKeys": ["sk-one", "sk-two"]}},
    "own-parallelism-args": {
        "gpu": {"count": 4},
        "engineArgs": ["--tensor-parallel-size", "2", "--data-parallel-size", "2"],
    },
    # Issue 14: the Gateway API Inference Extension and the shared response store.
    "inference-pool": {
        "replicaCount": 3,
        "inferencePool": {
            "enabled": True,
            "gatewayFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway-system"}}}
            ],
            "httpRoute": {
                "enabled": True,
                "gateway": {"name": "inference-gateway", "namespace": "gateway-system", "sectionName": "https"},
                "hostnames": ["llm.example.com"],
                "requestTimeout": "3600s",
            },
        },
        "networkPolicy": {"ingressFrom": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]},
    },
    "inference-pool-existing-picker": {
        "replicaCount": 2,
        "inferencePool": {
            "enabled": True,
            "endpointPicker": {"create": False, "name": "shared-epp", "port": 9102, "failureMode": "FailOpen"},
            "httpRoute": {
                "enabled": True,
                "parentRefs": [{"name": "inference-gateway", "namespace": "gateway-system"}],
                "path": {"type": "PathPrefix", "value": "/"},
            },
        },
    },
    "redis-response-store": {
        "replicaCount": 2,
        "responseStore": {
            "redis": {"url": "redis://redis-master.gpt-oss.svc:6379/0", "existingSecret": "redis-auth"}
        },
    },
    "pinned-digest-new-cache-pvc": {
        "image": {"repository": "registry.example.com/gpt-oss-server", "digest": "sha256:" + "a" * 64},
        "cache": {"persistence": {"enabled": True, "storageClassName": "-"}},
        "podDisruptionBudget": {"minAvailable": 1},
        "networkPolicy": {
            "ingressFrom": [{"namespaceSelector": {"matchLabels": {"name": "gateway"}}}]
        },
    },
}

MATRIX = [
    "defaults",
    "120b-pvc-existing-secrets",
    "autoscaling",
    "servicemonitor",
    "ingress",
    "2-gpus-tensor-parallel",
]

# Issue 14's scenarios (multi-replica routing and the shared response store).
SCALE_OUT = ["inference-pool", "inference-pool-existing-picker", "redis-response-store"]


@dataclass
class Manifest:
    """One rendered Kubernetes object and the template it came from."""

    template: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.obj["kind"]

    @property
    def name(self) -> str:
        return self.obj["metadata"]["name"]


class Rendered:
    """A rendered release: its objects, with accessors for the ones tests look at."""

    def __init__(self, values: dict[str, Any], templates: dict[str, str]):
        self.values = values
        self.templates = templates
        self.manifests: list[Manifest] = []
        for path, text in templates.items():
            if not path.endswith((".yaml", ".yml")):
                continue
            for obj in yaml.safe_load_all(text):
                if obj:
                    self.manifests.append(Manifest(path, obj))

    @property
    def text(self) -> str:
        return "\n".join(self.templates.values())

    @property
    def notes(self) -> str:
        return next(text for path, text in self.templates.items() if path.endswith("NOTES.txt"))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m.obj for m in self.manifests if m.kind == kind]

    def one(self, kind: str) -> dict[str, Any]:
        objs = self.of_kind(kind)
        assert len(objs) == 1, f"expected one {kind}, got {len(objs)}"
        return objs[0]

    def component(self, kind: str, component: str) -> list[dict[str, Any]]:
        """The objects of `kind` labelled app.kubernetes.io/component=`component`."""
        return [
            obj for obj in self.of_kind(kind)
            if obj["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]

    @property
    def deployment(self) -> dict[str, Any]:
        """The server's Deployment (the endpoint picker, when rendered, has its own)."""
        (deployment,) = self.component("Deployment", "server")
        return deployment

    @property
    def picker_deployment(self) -> dict[str, Any] | None:
        """The endpoint picker's Deployment, or None when the release runs none."""
        pickers = self.component("Deployment", "endpoint-picker")
        assert len(pickers) <= 1
        return pickers[0] if pickers else None

    @property
    def pod_spec(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def server(self) -> dict[str, Any]:
        (container,) = [c for c in self.pod_spec["containers"] if c["name"] == "server"]
        return container

    @property
    def args(self) -> list[str]:
        return self.server["args"]

    def flag_values(self, flag: str) -> list[str]:
        """Every value given to `flag` in the server's arguments."""
        args = self.args
        return [args[i + 1] for i, arg in enumerate(args) if arg == flag]

    def env(self, container: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        return {e["name"]: e for e in (container or self.server).get("env", [])}

    def volume(self, name: str, pod_spec: dict[str, Any] | None = None) -> dict[str, Any]:
        (vol,) = [v for v in (pod_spec or self.pod_spec)["volumes"] if v["name"] == name]
        return vol

    @property
    def test_pod(self) -> dict[str, Any]:
        (pod,) = [
            obj
            for obj in self.of_kind("Pod")
            if obj["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"
        ]
        return pod

    def pod_specs(self) -> list[dict[str, Any]]:
        """Every pod spec the release creates: the server's template, the endpoint picker's
        (when rendered) and the test pod."""
        picker = self.picker_deployment
        pickers = [picker["spec"]["template"]["spec"]] if picker else []
        return [self.pod_spec, *pickers] + [pod["spec"] for pod in self.of_kind("Pod")]


@pytest.fixture(scope="session")
def chart():
    loaded = helm.Chart.load(CHART_DIR)
    yield loaded
    loaded.close()


@pytest.fixture(scope="session")
def render(chart):
    """render(values) -> Rendered, through Helm's own engine (schema validation included)."""

    def _render(values: dict[str, Any] | None = None) -> Rendered:
        values = copy.deepcopy(values or {})
        templates = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        return Rendered(values, templates)

    return _render


@pytest.fixture(scope="session")
def rendered_scenarios(render) -> dict[str, Rendered]:
    return {name: render(values) for name, values in SCENARIOS.items()}


@pytest.fixture(scope="session")
def defaults(chart) -> dict[str, Any]:
    return chart.values
