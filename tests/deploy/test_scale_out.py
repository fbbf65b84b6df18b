"""Issue 14 on the rendered chart: the Inference Extension (InferencePool, its endpoint picker,
the HTTPRoute, the network policies between them) and the Redis response store. Asserted on the
parsed objects, never on template text."""

from __future__ import annotations

import copy

import helm_python as helm
import pytest
import yaml

from conftest import CHART_DIR, SCALE_OUT, SCENARIOS

SEVERITY_WARNING = 2


def _labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def _container_port(container, port):
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return number


def _service_port(service, name):
    (port,) = [p for p in service["spec"]["ports"] if p["name"] == name]
    return port


def _arg(args, flag):
    (value,) = [args[i + 1] for i, arg in enumerate(args) if arg == flag]
    return value


def _pod_labels(deployment):
    return deployment["spec"]["template"]["metadata"]["labels"]


def _picker_objects(rendered):
    """The picker's Deployment, Service, ConfigMap and its one container."""
    deployment = rendered.picker_deployment
    (service,) = rendered.component("Service", "endpoint-picker")
    configmap = rendered.one("ConfigMap")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return deployment, service, configmap, container


# Off by default -----------------------------------------------------------------------------


def test_default_release_keeps_the_plain_service_only(rendered_scenarios):
    rendered = rendered_scenarios["defaults"]
    assert rendered.of_kind("InferencePool") == rendered.of_kind("HTTPRoute") == []
    assert rendered.picker_deployment is None
    assert rendered.flag_values("--response-store") == []
    assert "GPT_OSS_RESPONSE_STORE_PASSWORD" not in rendered.env()


def test_the_plain_service_stays_beside_the_pool(rendered_scenarios):
    """helm test, ServiceMonitor and in-cluster clients keep using it."""
    rendered = rendered_scenarios["inference-pool"]
    (service,) = rendered.component("Service", "server")
    assert _labels_match(service["spec"]["selector"], _pod_labels(rendered.deployment))


# The pool -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["inference-pool", "inference-pool-existing-picker"])
def test_pool_selects_the_server_pods_only(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    selector = rendered.one("InferencePool")["spec"]["selector"]["matchLabels"]
    assert _labels_match(selector, _pod_labels(rendered.deployment))
    assert not _labels_match(selector, rendered.test_pod["metadata"]["labels"])
    if rendered.picker_deployment:
        assert not _labels_match(selector, _pod_labels(rendered.picker_deployment))
    # the same pods as the Service and the Deployment's own selector
    (service,) = rendered.component("Service", "server")
    assert selector == service["spec"]["selector"] == rendered.deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("scenario", ["inference-pool", "inference-pool-existing-picker"])
def test_pool_targets_the_server_container_port(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    (target,) = rendered.one("InferencePool")["spec"]["targetPorts"]
    assert target["number"] == _container_port(rendered.server, "http") == 8000
    assert rendered.flag_values("--port") == [str(target["number"])]
    # the readiness probe the pool's endpoints follow is on that port too
    probe = rendered.server["readinessProbe"]["httpGet"]
    assert _container_port(rendered.server, probe["port"]) == target["number"]


def test_pool_refers_to_the_created_picker(rendered_scenarios):
    rendered = rendered_scenarios["inference-pool"]
    pool = rendered.one("InferencePool")
    ref = pool["spec"]["endpointPickerRef"]
    deployment, service, _, container = _picker_objects(rendered)
    assert ref.get("kind", "Service") == "Service" and ref.get("group", "") == ""
    assert ref["name"] == service["metadata"]["name"]
    assert ref["failureMode"] == "FailClose"
    grpc = _service_port(service, "grpc-ext-proc")
    assert ref["port"]["number"] == grpc["port"] == 9002
    # the Service reaches the picker pods on the port the picker listens on
    assert _labels_match(service["spec"]["selector"], _pod_labels(deployment))
    assert not _labels_match(service["spec"]["selector"], _pod_labels(rendered.deployment))
    listening = int(_arg(container["args"], "--grpc-port"))
    assert _container_port(container, grpc["targetPort"]) == listening == ref["port"]["number"]
    # and the picker serves this pool
    assert _arg(container["args"], "--pool-name") == pool["metadata"]["name"]
    assert _arg(container["args"], "--pool-namespace") == pool["metadata"]["namespace"] == "gpt-oss"


def test_pool_refers_to_an_existing_picker_by_name_and_port(rendered_scenarios):
    rendered = rendered_scenarios["inference-pool-existing-picker"]
    ref = rendered.one("InferencePool")["spec"]["endpointPickerRef"]
    assert ref["name"] == "shared-epp"
    assert ref["port"] == {"number": 9102}
    assert ref["failureMode"] == "FailOpen"
    # nothing of a picker is rendered
    assert rendered.picker_deployment is None
    assert rendered.component("Service", "endpoint-picker") == []
    assert not rendered.of_kind("Role") and not rendered.of_kind("RoleBinding") and not rendered.of_kind("ConfigMap")


def test_picker_port_value_moves_every_side_together(render):
    rendered = render({"inferencePool": {"enabled": True, "endpointPicker": {"port": 9500}}})
    _, service, _, container = _picker_objects(rendered)
    ref = rendered.one("InferencePool")["spec"]["endpointPickerRef"]
    assert ref["port"]["number"] == _service_port(service, "grpc-ext-proc")["port"] == 9500
    assert _arg(container["args"], "--grpc-port") == "9500"
    assert _container_port(container, "grpc-ext-proc") == 9500


# The picker ---------------------------------------------------------------------------------


def _picker_config(rendered) -> dict:
    _, _, configmap, container = _picker_objects(rendered)
    path = _arg(container["args"], "--config-file")
    (mount,) = [m for m in container["volumeMounts"] if path.startswith(m["mountPath"] + "/")]
    volume = rendered.volume(mount["name"], rendered.picker_deployment["spec"]["template"]["spec"])
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    assert mount["readOnly"] is True
    return yaml.safe_load(configmap["data"][path.rsplit("/", 1)[1]])


def test_picker_scores_queue_kv_cache_and_prefix(rendered_scenarios):
    config = _picker_config(rendered_scenarios["inference-pool"])
    assert config["apiVersion"] == "inference.networking.x-k8s.io/v1alpha1"
    assert config["kind"] == "EndpointPickerConfig"
    declared = {p.get("name", p["type"]): p["type"] for p in config["plugins"]}
    (profile,) = config["schedulingProfiles"]
    weights = {ref["pluginRef"]: ref.get("weight") for ref in profile["plugins"]}
    assert set(weights) <= set(declared), "a profile may only use declared plugins"
    assert weights == {
        "queue-scorer": 2,
        "kv-cache-utilization-scorer": 2,
        "prefix-cache-scorer": 3,
        "max-score-picker": None,
    }


def test_scorer_weights_are_values_and_zero_leaves_one_out(render):
    rendered = render({"inferencePool": {"enabled": True, "endpointPicker": {
        "scorerWeights": {"queue": 5, "kvCacheUtilization": 0, "prefixCache": 1}}}})
    config = _picker_config(rendered)
    (profile,) = config["schedulingProfiles"]
    weights = {ref["pluginRef"]: ref.get("weight") for ref in profile["plugins"]}
    assert weights == {"queue-scorer": 5, "prefix-cache-scorer": 1, "max-score-picker": None}
    assert "kv-cache-utilization-scorer" not in {p["type"] for p in config["plugins"]}


def test_own_picker_config_is_used_verbatim_and_rolls_the_picker(render):
    own = (
        "apiVersion: inference.networking.x-k8s.io/v1alpha1\n"
        "kind: EndpointPickerConfig\n"
        "plugins:\n- type: queue-scorer\n- type: max-score-picker\n"
        "schedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n"
        "  - pluginRef: max-score-picker\n"
    )
    base = {"inferencePool": {"enabled": True}}
    custom = render({"inferencePool": {"enabled": True, "endpointPicker": {"config": own}}})
    assert _picker_config(custom) == yaml.safe_load(own)

    def checksum(rendered):
        return rendered.picker_deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum(custom) != checksum(render(base))


def test_picker_image_is_pinned_and_overridable(rendered_scenarios, render):
    _, _, _, container = _picker_objects(rendered_scenarios["inference-pool"])
    repository, tag = container["image"].rsplit(":", 1)
    assert repository == "registry.k8s.io/gateway-api-inference-extension/epp"
    assert tag.startswith("v") and tag not in ("latest", "main")
    digest = "sha256:" + "b" * 64
    rendered = render({"inferencePool": {"enabled": True, "endpointPicker": {
        "image": {"repository": "registry.example.com/epp", "tag": "v1.1.0", "digest": digest}}}})
    _, _, _, container = _picker_objects(rendered)
    assert container["image"] == f"registry.example.com/epp:v1.1.0@{digest}"


def test_picker_is_probed_and_sized_and_stays_off_gpus(rendered_scenarios):
    rendered = rendered_scenarios["inference-pool"]
    deployment, service, _, container = _picker_objects(rendered)
    health = int(_arg(container["args"], "--grpc-health-port"))
    for probe in (container["livenessProbe"], container["readinessProbe"]):
        assert probe["grpc"]["port"] == health
    assert _container_port(container, "grpc-health") == health
    metrics = int(_arg(container["args"], "--metrics-port"))
    assert _service_port(service, "http-metrics")["port"] == metrics
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]
    assert not any("gpu" in name for name in resources["limits"])
    spec = deployment["spec"]["template"]["spec"]
    assert "tolerations" not in spec  # the server's GPU toleration is not inherited
    assert deployment["spec"]["replicas"] == 1


def test_picker_rbac_is_read_only_and_namespaced(rendered_scenarios):
    rendered = rendered_scenarios["inference-pool"]
    deployment, _, _, _ = _picker_objects(rendered)
    role = rendered.one("Role")
    binding = rendered.one("RoleBinding")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "gpt-oss"}]
    assert account in {sa["metadata"]["name"] for sa in rendered.of_kind("ServiceAccount")}
    # not the server's account: that one never gets a token or a role
    assert account != rendered.pod_spec["serviceAccountName"]
    granted = {}
    for rule in role["rules"]:
        assert set(rule["verbs"]) == {"get", "list", "watch"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted[(group, resource)] = rule["verbs"]
    assert ("", "pods") in granted
    assert ("inference.networking.k8s.io", "inferencepools") in granted
    assert ("inference.networking.x-k8s.io", "inferenceobjectives") in granted
    assert not rendered.of_kind("ClusterRole") and not rendered.of_kind("ClusterRoleBinding")


# The route ----------------------------------------------------------------------------------


def test_route_sends_the_api_from_the_gateway_to_the_pool(rendered_scenarios):
    rendered = rendered_scenarios["inference-pool"]
    route = rendered.one("HTTPRoute")
    pool = rendered.one("InferencePool")
    assert route["spec"]["parentRefs"] == [{
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway",
        "namespace": "gateway-system", "sectionName": "https",
    }]
    assert route["spec"]["hostnames"] == ["llm.example.com"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    assert rule["timeouts"] == {"request": "3600s"}
    (backend,) = rule["backendRefs"]
    assert backend == {"group": "inference.networking.k8s.io", "kind": "InferencePool",
                       "name": pool["metadata"]["name"]}
    # same namespace: no ReferenceGrant needed
    assert backend.get("namespace", route["metadata"]["namespace"]) == pool["metadata"]["namespace"]


def test_route_takes_parent_refs_as_given(rendered_scenarios):
    route = rendered_scenarios["inference-pool-existing-picker"].one("HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "inference-gateway", "namespace": "gateway-system"}]
    assert "hostnames" not in route["spec"]
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    assert "timeouts" not in rule


def test_minimal_route_uses_the_release_namespace_gateway(render):
    rendered = render({"inferencePool": {"enabled": True, "httpRoute": {"enabled": True,
                                                                         "gateway": {"name": "gw"}}}})
    route = rendered.one("HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}]
    assert route["metadata"]["namespace"] == "gpt-oss"


def test_no_route_without_its_value(render):
    rendered = render({"inferencePool": {"enabled": True}})
    assert rendered.one("InferencePool") and rendered.of_kind("HTTPRoute") == []
    assert "InferencePool" in rendered.notes and "backendRef" in rendered.notes


# Network policies ---------------------------------------------------------------------------


def _policy_for(rendered, component):
    (policy,) = rendered.component("NetworkPolicy", component)
    return policy


def _admits(rule, labels, namespace_labels=None):
    """Whether a NetworkPolicy ingress rule admits a pod with `labels` in this namespace (or,
    for a namespaceSelector peer, in a namespace with `namespace_labels`)."""
    if "from" not in rule:
        return True
    for peer in rule["from"]:
        if "podSelector" in peer and "namespaceSelector" not in peer:
            if _labels_match(peer["podSelector"].get("matchLabels", {}), labels):
                return True
        if "namespaceSelector" in peer and namespace_labels is not None:
            if _labels_match(peer["namespaceSelector"].get("matchLabels", {}), namespace_labels):
                return True
    return False


def test_picker_may_scrape_the_server_pods(rendered_scenarios):
    """Sources are restricted in this scenario; the picker is let in on the server port."""
    rendered = rendered_scenarios["inference-pool"]
    (rule,) = _policy_for(rendered, "server")["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == ["http"]  # /metrics is on the server port
    assert _admits(rule, _pod_labels(rendered.picker_deployment))
    assert _admits(rule, rendered.test_pod["metadata"]["labels"])
    assert not _admits(rule, {"app.kubernetes.io/name": "something-else"})


def test_gateway_reaches_the_server_pods_and_the_picker(rendered_scenarios):
    rendered = rendered_scenarios["inference-pool"]
    gateway_ns = {"kubernetes.io/metadata.name": "gateway-system"}
    (server_rule,) = _policy_for(rendered, "server")["spec"]["ingress"]
    assert _admits(server_rule, {}, gateway_ns)
    assert _admits(server_rule, {}, {"name": "monitoring"})  # networkPolicy.ingressFrom kept
    picker_policy = _policy_for(rendered, "endpoint-picker")
    assert _labels_match(picker_policy["spec"]["podSelector"]["matchLabels"], _pod_labels(rendered.picker_deployment))
    rules = {r["ports"][0]["port"]: r for r in picker_policy["spec"]["ingress"]}
    assert set(rules) == {"grpc-ext-proc", "http-metrics"}
    assert _admits(rules["grpc-ext-proc"], {}, gateway_ns)
    assert not _admits(rules["grpc-ext-proc"], {}, {"name": "monitoring"})
    assert _admits(rules["http-metrics"], {}, {"name": "monitoring"})


def test_open_policies_stay_open_with_the_pool(render):
    rendered = render({"inferencePool": {"enabled": True}})
    (rule,) = _policy_for(rendered, "server")["spec"]["ingress"]
    assert "from" not in rule  # no sources configured: every source, the picker included
    for rule in _policy_for(rendered, "endpoint-picker")["spec"]["ingress"]:
        assert "from" not in rule


def test_no_picker_policy_without_policies(render):
    rendered = render({"inferencePool": {"enabled": True}, "networkPolicy": {"enabled": False}})
    assert rendered.of_kind("NetworkPolicy") == []


# Redis response store ------------------------------------------------------------------------


def test_redis_store_flag_and_password_from_the_secret(rendered_scenarios):
    rendered = rendered_scenarios["redis-response-store"]
    assert rendered.flag_values("--response-store") == ["redis://redis-master.gpt-oss.svc:6379/0"]
    password = rendered.env()["GPT_OSS_RESPONSE_STORE_PASSWORD"]
    assert "value" not in password
    assert password["valueFrom"] == {"secretKeyRef": {"name": "redis-auth", "key": "password"}}
    # the chart references the Secret, never creates it
    assert "redis-auth" not in {s["metadata"]["name"] for s in rendered.of_kind("Secret")}


def test_redis_store_without_password(render):
    rendered = render({"responseStore": {"redis": {"url": "rediss://redis.example.internal:6380"}}})
    assert rendered.flag_values("--response-store") == ["rediss://redis.example.internal:6380"]
    assert "GPT_OSS_RESPONSE_STORE_PASSWORD" not in rendered.env()
    assert "checkov.io/skip1" not in rendered.deployment["metadata"].get("annotations", {})


def test_redis_password_key_is_a_value(render):
    rendered = render({"responseStore": {"redis": {
        "url": "redis://10.0.0.5:6379/2", "existingSecret": "redis", "passwordKey": "redis-password"}}})
    ref = rendered.env()["GPT_OSS_RESPONSE_STORE_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "redis", "key": "redis-password"}


# Bad values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        pytest.param({"inferencePool": {"enabled": "yes"}}, "/inferencePool/enabled", id="enabled-as-string"),
        pytest.param({"inferencePool": {"endpointPicker": {"failureMode": "Retry"}}},
                     "/inferencePool/endpointPicker/failureMode", id="unknown-failure-mode"),
        pytest.param({"inferencePool": {"endpointPicker": {"image": {"tag": "latest"}}}},
                     "/inferencePool/endpointPicker/image/tag", id="picker-latest-tag"),
        pytest.param({"inferencePool": {"endpointPicker": {"port": 0}}},
                     "/inferencePool/endpointPicker/port", id="picker-port-zero"),
        pytest.param({"inferencePool": {"endpointPicker": {"scorerWeights": {"queue": -1}}}},
                     "/inferencePool/endpointPicker/scorerWeights/queue", id="negative-weight"),
        pytest.param({"inferencePool": {"pool": {}}}, "additional properties 'pool'", id="unknown-key"),
        pytest.param({"inferencePool": {"httpRoute": {"path": {"type": "Prefix", "value": "/v1"}}}},
                     "/inferencePool/httpRoute/path/type", id="ingress-style-path-type"),
        pytest.param({"inferencePool": {"httpRoute": {"requestTimeout": "1h30"}}},
                     "/inferencePool/httpRoute/requestTimeout", id="bad-duration"),
        pytest.param({"inferencePool": {"httpRoute": {"parentRefs": [{"kind": "Gateway"}]}}},
                     "/inferencePool/httpRoute/parentRefs/0", id="parent-ref-without-name"),
        pytest.param({"responseStore": {"redis": {"url": "redis://:hunter2@redis:6379/0"}}},
                     "/responseStore/redis/url", id="password-in-url"),
        pytest.param({"responseStore": {"redis": {"url": "redis://default:hunter2@redis:6379"}}},
                     "/responseStore/redis/url", id="user-and-password-in-url"),
        pytest.param({"responseStore": {"redis": {"url": "redis://redis:6379/0?password=hunter2"}}},
                     "/responseStore/redis/url", id="password-in-query"),
        pytest.param({"responseStore": {"redis": {"url": "http://redis:6379"}}},
                     "/responseStore/redis/url", id="not-a-redis-url"),
        pytest.param({"responseStore": {"redis": {"password": "hunter2"}}}, "additional properties 'password'",
                     id="inline-password"),
    ],
)
def test_schema_rejects_bad_scale_out_values(chart, values, complaint):
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.render(values, name="demo", namespace="gpt-oss")
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        pytest.param({"inferencePool": {"httpRoute": {"enabled": True, "gateway": {"name": "gw"}}}},
                     "inferencePool.enabled", id="route-without-pool"),
        pytest.param({"inferencePool": {"enabled": True, "httpRoute": {"enabled": True}}},
                     "gateway.name", id="route-without-gateway"),
        pytest.param({"inferencePool": {"enabled": True, "endpointPicker": {"create": False}}},
                     "endpointPicker.name", id="existing-picker-without-name"),
        pytest.param({"inferencePool": {"enabled": True}, "metrics": {"protect": True}},
                     "metrics.protect", id="picker-cannot-scrape-protected-metrics"),
        pytest.param({"inferencePool": {"enabled": True, "endpointPicker": {
            "scorerWeights": {"queue": 0, "kvCacheUtilization": 0, "prefixCache": 0}}}},
                     "scorerWeights", id="no-scorer-left"),
        pytest.param({"responseStore": {"redis": {"existingSecret": "redis-auth"}}},
                     "responseStore.redis.url", id="redis-secret-without-url"),
    ],
)
def test_chart_checks_reject_inconsistent_scale_out_values(chart, values, complaint):
    with pytest.raises(helm.HelmRenderError) as caught:
        chart.render(values, name="demo", namespace="gpt-oss")
    assert complaint in str(caught.value)


@pytest.mark.parametrize("scenario", SCALE_OUT)
def test_scale_out_scenarios_pass_the_schema_and_lint(chart, scenario):
    chart.validate_schema(SCENARIOS[scenario])
    report = helm.lint(CHART_DIR, copy.deepcopy(SCENARIOS[scenario]), strict=True, namespace="gpt-oss")
    findings = [m for m in report["messages"] if m["severity"] >= SEVERITY_WARNING]
    assert report["total_charts_linted"] == 1
    assert findings == [] and report["errors"] == [], report

