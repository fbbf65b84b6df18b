"""What the rendered chart does, asserted on the parsed objects (never on template text)."""

from __future__ import annotations

import base64
import copy
import posixpath

import kubernetes_validate
import pytest

from conftest import MATRIX, SCENARIOS

# 30 minutes: a first start of gpt-oss-120b downloads ~65 GB and loads it.
MIN_STARTUP_BUDGET_S = 30 * 60


def _port_number(container, port):
    if isinstance(port, int):
        return port
    (match,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return match


def _labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def _mounted_writable(container, pod_spec, path):
    """The writable volume mounted at or above `path`, or None."""
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    for mount in container.get("volumeMounts", []):
        mount_path = mount["mountPath"].rstrip("/")
        if (path == mount_path or path.startswith(mount_path + "/")) and not mount.get("readOnly"):
            volume = volumes[mount["name"]]
            if "emptyDir" in volume or "persistentVolumeClaim" in volume:
                return volume
    return None


# Probes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", MATRIX)
def test_probes_hit_the_right_paths_with_the_right_budgets(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    server = rendered.server
    startup, liveness, readiness = (
        server["startupProbe"],
        server["livenessProbe"],
        server["readinessProbe"],
    )
    assert startup["httpGet"]["path"] == "/health"
    assert liveness["httpGet"]["path"] == "/health"
    assert readiness["httpGet"]["path"] == "/ready"
    for probe in (startup, liveness, readiness):
        assert _port_number(server, probe["httpGet"]["port"]) == 8000
    # The startup probe alone must cover a cold start of the biggest model.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= MIN_STARTUP_BUDGET_S
    # Liveness restarts a dead engine within about half a minute, without flapping on one miss.
    assert liveness["failureThreshold"] >= 2
    assert liveness["periodSeconds"] * liveness["failureThreshold"] <= 60
    assert readiness["timeoutSeconds"] < readiness["periodSeconds"] * readiness["failureThreshold"]


def test_startup_budget_follows_the_values(render):
    probe = render({"probes": {"startup": {"periodSeconds": 20, "failureThreshold": 135}}}).server[
        "startupProbe"
    ]
    assert probe["periodSeconds"] * probe["failureThreshold"] == 2700


def test_the_container_serves_on_port_8000(rendered_scenarios):
    rendered = rendered_scenarios["defaults"]
    assert [(p["name"], p["containerPort"]) for p in rendered.server["ports"]] == [("http", 8000)]
    assert rendered.flag_values("--port") == ["8000"]


# GPUs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_gpu_requests_equal_limits_and_match_tensor_parallel(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    values = SCENARIOS[scenario]
    count = values.get("gpu", {}).get("count", 1)
    resources = rendered.server["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] == count
    tp = rendered.flag_values("--tensor-parallel-size")
    assert len(tp) == 1, "exactly one --tensor-parallel-size"
    if "--tensor-parallel-size" not in [str(a) for a in values.get("engineArgs", [])]:
        assert tp == [str(count)]


def test_two_gpus_mean_tensor_parallel_two(rendered_scenarios):
    rendered = rendered_scenarios["2-gpus-tensor-parallel"]
    assert rendered.flag_values("--tensor-parallel-size") == ["2"]
    assert rendered.server["resources"]["limits"]["nvidia.com/gpu"] == 2
    assert rendered.deployment["spec"]["replicas"] == 2


def test_users_own_parallelism_args_win(rendered_scenarios):
    rendered = rendered_scenarios["own-parallelism-args"]
    assert rendered.flag_values("--tensor-parallel-size") == ["2"]
    assert rendered.flag_values("--data-parallel-size") == ["2"]
    assert rendered.server["resources"]["limits"]["nvidia.com/gpu"] == 4


def test_gpu_resource_name_is_a_value(render):
    resources = render({"gpu": {"resourceName": "nvidia.com/mig-3g.40gb"}}).server["resources"]
    assert resources["requests"]["nvidia.com/mig-3g.40gb"] == resources["limits"]["nvidia.com/mig-3g.40gb"] == 1
    assert "nvidia.com/gpu" not in resources["limits"]


def test_gpu_scheduling_values_reach_the_pod(rendered_scenarios):
    spec = rendered_scenarios["120b-pvc-existing-secrets"].pod_spec
    assert spec["runtimeClassName"] == "nvidia"
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] == "nvidia.com/gpu.product"
    default_spec = rendered_scenarios["defaults"].pod_spec
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in default_spec["tolerations"]
    assert "runtimeClassName" not in default_spec


# Model and engine arguments ------------------------------------------------------------------


def test_default_model_is_the_hugging_face_id(rendered_scenarios):
    rendered = rendered_scenarios["defaults"]
    assert rendered.flag_values("--model") == ["openai/gpt-oss-20b"]
    assert rendered.flag_values("--served-model-name") == []
    assert "HF_HUB_OFFLINE" not in rendered.env()


def test_model_from_a_volume_is_served_under_its_id_offline(rendered_scenarios):
    rendered = rendered_scenarios["120b-pvc-existing-secrets"]
    assert rendered.flag_values("--model") == ["/models/gpt-oss-120b"]
    assert rendered.flag_values("--served-model-name") == ["openai/gpt-oss-120b"]
    assert rendered.env()["HF_HUB_OFFLINE"]["value"] == "1"
    (mount,) = [m for m in rendered.server["volumeMounts"] if m["name"] == "model"]
    assert mount["mountPath"] == "/models" and mount["readOnly"] is True
    claim = rendered.volume("model")["persistentVolumeClaim"]
    assert claim == {"claimName": "gpt-oss-weights", "readOnly": True}


def test_engine_args_pass_through_verbatim_and_last(rendered_scenarios):
    args = rendered_scenarios["120b-pvc-existing-secrets"].args
    assert args[-4:] == ["--gpu-memory-utilization", "0.95", "--max-num-batched-tokens", "1024"]
    assert all(isinstance(a, str) for a in args)


def test_served_names_and_max_model_len(render):
    rendered = render({"model": {"servedModelNames": ["gpt-oss", "gpt-4o-mini"], "maxModelLen": 32768}})
    assert rendered.flag_values("--served-model-name") == ["gpt-oss", "gpt-4o-mini"]
    assert rendered.flag_values("--max-model-len") == ["32768"]
    assert rendered.env(rendered.test_pod["spec"]["containers"][0])["EXPECTED_MODELS"]["value"] == (
        "gpt-oss,gpt-4o-mini"
    )


def test_only_known_server_flags_are_generated(rendered_scenarios):
    """The chart writes the server's own flags; everything else comes from engineArgs."""
    known = {
        "--model", "--served-model-name", "--port", "--log-level", "--drain-timeout",
        "--max-model-len", "--api-key-file", "--protect-metrics", "--tensor-parallel-size",
        "--response-store",
    }
    for name, rendered in rendered_scenarios.items():
        user = [str(a) for a in SCENARIOS[name].get("engineArgs", [])]
        generated = rendered.args[: len(rendered.args) - len(user)] if user else rendered.args
        assert {a for a in generated if a.startswith("--")} <= known, name


# Termination ------------------------------------------------------------------------------


def _termination(rendered):
    spec = rendered.pod_spec
    grace = spec["terminationGracePeriodSeconds"]
    pre_stop = rendered.server.get("lifecycle", {}).get("preStop")
    sleep = int(pre_stop["exec"]["command"][1]) if pre_stop else 0
    if pre_stop:
        assert pre_stop["exec"]["command"][0] == "sleep"
    (drain,) = rendered.flag_values("--drain-timeout")
    return grace, sleep, int(drain)


@pytest.mark.parametrize("scenario", MATRIX)
def test_termination_arithmetic_holds(rendered_scenarios, scenario):
    grace, sleep, drain = _termination(rendered_scenarios[scenario])
    assert sleep > 0, "a preStop pause lets endpoints drop the pod before SIGTERM"
    assert grace > sleep + drain


@pytest.mark.parametrize(
    "termination",
    [
        {"preStopSleepSeconds": 0, "drainTimeoutSeconds": 30, "marginSeconds": 1},
        {"preStopSleepSeconds": 45, "drainTimeoutSeconds": 600, "marginSeconds": 30},
    ],
)
def test_termination_grace_is_computed_from_its_parts(render, termination):
    rendered = render({"termination": termination})
    grace, sleep, drain = _termination(rendered)
    assert (sleep, drain) == (termination["preStopSleepSeconds"], termination["drainTimeoutSeconds"])
    assert grace == sleep + drain + termination["marginSeconds"]
    assert grace > sleep + drain


def test_rolling_update_never_drops_below_the_desired_replicas(rendered_scenarios):
    for name in MATRIX:
        strategy = rendered_scenarios[name].deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0, name
        assert strategy["rollingUpdate"]["maxSurge"] >= 1, name


# Security ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_container_is_locked_down(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    picker = rendered.picker_deployment
    picker_spec = picker["spec"]["template"]["spec"] if picker else None
    for spec in rendered.pod_specs():
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault"
        # Only the endpoint picker holds a token: it watches its pool and the pool's pods.
        assert spec["automountServiceAccountToken"] is (spec is picker_spec)
        assert spec["enableServiceLinks"] is False
        for key in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(key)
        for container in spec["containers"] + spec.get("initContainers", []):
            ctx = container["securityContext"]
            assert ctx.get("runAsNonRoot", pod_ctx["runAsNonRoot"]) is True
            assert ctx.get("runAsUser", pod_ctx.get("runAsUser")) not in (None, 0)
            assert ctx["allowPrivilegeEscalation"] is False
            assert not ctx.get("privileged")
            assert "ALL" in ctx["capabilities"]["drop"]
            assert not ctx["capabilities"].get("add")
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx.get("seccompProfile", pod_ctx["seccompProfile"])["type"] == "RuntimeDefault"


def test_security_context_matches_the_image_user(rendered_scenarios):
    """Dockerfile.cuda creates UID/GID 10001; the chart runs as the same."""
    ctx = rendered_scenarios["defaults"].server["securityContext"]
    pod_ctx = rendered_scenarios["defaults"].pod_spec["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], pod_ctx["fsGroup"]) == (10001, 10001, 10001)


@pytest.mark.parametrize("scenario", MATRIX)
def test_read_only_root_keeps_every_write_path_on_a_volume(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    server, spec = rendered.server, rendered.pod_spec
    env = rendered.env()
    for var in ("HOME", "HF_HOME", "VLLM_CACHE_ROOT"):
        path = env[var]["value"]
        assert posixpath.isabs(path)
        assert _mounted_writable(server, spec, path) is not None, f"{var}={path} is not writable"
    assert _mounted_writable(server, spec, "/tmp") is not None


@pytest.mark.parametrize("scenario", MATRIX)
def test_dev_shm_is_memory_backed(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    (mount,) = [m for m in rendered.server["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    volume = rendered.volume(mount["name"])
    assert volume["emptyDir"]["medium"] == "Memory"
    assert volume["emptyDir"]["sizeLimit"]
    if scenario == "2-gpus-tensor-parallel":
        assert volume["emptyDir"]["sizeLimit"] == "16Gi"


def test_cache_volume_is_the_claim_when_persistence_is_on(rendered_scenarios):
    existing = rendered_scenarios["120b-pvc-existing-secrets"]
    assert existing.volume("cache")["persistentVolumeClaim"]["claimName"] == "gpt-oss-cache"
    created = rendered_scenarios["autoscaling"]
    pvc = created.one("PersistentVolumeClaim")
    assert created.volume("cache")["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["storageClassName"] == "shared-nfs"
    no_provisioning = rendered_scenarios["pinned-digest-new-cache-pvc"].one("PersistentVolumeClaim")
    assert no_provisioning["spec"]["storageClassName"] == ""


def test_default_storage_class_is_left_to_the_cluster(render):
    pvc = render({"cache": {"persistence": {"enabled": True}}}).one("PersistentVolumeClaim")
    assert "storageClassName" not in pvc["spec"]
    assert pvc["spec"]["resources"]["requests"]["storage"] == "200Gi"


# Secrets ----------------------------------------------------------------------------------


def _secret_volume_names(spec):
    return {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_no_secret_value_travels_in_an_env_var(rendered_scenarios, scenario):
    for spec in rendered_scenarios[scenario].pod_specs():
        for container in spec["containers"]:
            for var in container.get("env", []):
                if "valueFrom" in var:
                    continue
                name = var["name"].upper()
                if any(word in name for word in ("KEY", "TOKEN", "PASSWORD", "SECRET")):
                    # Only paths to mounted secret files are allowed.
                    assert name.endswith(("_PATH", "_FILE")), var
                    assert posixpath.isabs(var["value"]), var


def test_existing_secrets_are_referenced_never_inlined(render):
    sentinel_key = "sk-MUST-NOT-BE-RENDERED-1"
    sentinel_token = "hf_MUST_NOT_BE_RENDERED_2"
    values = copy.deepcopy(SCENARIOS["120b-pvc-existing-secrets"])
    values["auth"]["apiKeys"] = [sentinel_key]  # an existing Secret wins over inline keys
    values["huggingface"]["token"] = sentinel_token
    rendered = render(values)
    assert rendered.of_kind("Secret") == []
    assert sentinel_key not in rendered.text and sentinel_token not in rendered.text
    spec = rendered.pod_spec
    assert _secret_volume_names(spec) == {"gpt-oss-api-keys", "hf-credentials"}
    auth = rendered.volume("auth")["secret"]
    assert auth["items"] == [{"key": "keys", "path": "keys"}]
    (key_file,) = rendered.flag_values("--api-key-file")
    (auth_mount,) = [m for m in rendered.server["volumeMounts"] if m["name"] == "auth"]
    assert auth_mount["readOnly"] is True
    assert key_file == posixpath.join(auth_mount["mountPath"], "keys")
    hf = rendered.volume("hf-token")["secret"]
    assert (hf["secretName"], hf["items"]) == ("hf-credentials", [{"key": "HF_TOKEN", "path": "HF_TOKEN"}])
    (hf_mount,) = [m for m in rendered.server["volumeMounts"] if m["name"] == "hf-token"]
    assert rendered.env()["HF_TOKEN_PATH"]["value"] == posixpath.join(hf_mount["mountPath"], "HF_TOKEN")
    # The helm test pod reads the same existing Secret.
    assert _secret_volume_names(rendered.test_pod["spec"]) == {"gpt-oss-api-keys"}


def test_secret_files_are_not_world_readable(rendered_scenarios):
    for name, rendered in rendered_scenarios.items():
        for spec in rendered.pod_specs():
            for volume in spec.get("volumes", []):
                if "secret" in volume:
                    assert volume["secret"]["defaultMode"] & 0o007 == 0, name


def test_default_install_generates_and_mounts_an_api_key(rendered_scenarios):
    rendered = rendered_scenarios["defaults"]
    (secret,) = rendered.of_kind("Secret")
    assert set(secret["data"]) == {"api-keys"}
    assert rendered.volume("auth")["secret"]["secretName"] == secret["metadata"]["name"]
    assert rendered.flag_values("--api-key-file") == ["/etc/gpt-oss/auth/api-keys"]


def test_created_secret_holds_the_given_keys_one_per_line(rendered_scenarios):
    (secret,) = rendered_scenarios["created-api-keys"].of_kind("Secret")
    assert base64.b64decode(secret["data"]["api-keys"]).decode().splitlines() == ["sk-one", "sk-two"]


def test_auth_off_and_a_created_hf_token(rendered_scenarios):
    rendered = rendered_scenarios["auth-off-hf-token-created"]
    assert rendered.flag_values("--api-key-file") == []
    (secret,) = rendered.of_kind("Secret")
    assert base64.b64decode(secret["data"]["token"]).decode() == "hf_created"
    assert _secret_volume_names(rendered.pod_spec) == {secret["metadata"]["name"]}
    assert "API_KEY_FILE" not in rendered.env(rendered.test_pod["spec"]["containers"][0])
    assert "WARNING" in rendered.notes


# Service, PDB, network ----------------------------------------------------------------------


@pytest.mark.parametrize("scenario", MATRIX)
def test_service_pdb_and_policy_select_the_server_pods_only(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    pod_labels = rendered.deployment["spec"]["template"]["metadata"]["labels"]
    test_labels = rendered.test_pod["metadata"]["labels"]
    selector = rendered.deployment["spec"]["selector"]["matchLabels"]
    assert _labels_match(selector, pod_labels)
    service = rendered.one("Service")
    pdb = rendered.one("PodDisruptionBudget")
    policy = rendered.one("NetworkPolicy")
    for sel in (
        service["spec"]["selector"],
        pdb["spec"]["selector"]["matchLabels"],
        policy["spec"]["podSelector"]["matchLabels"],
    ):
        assert _labels_match(sel, pod_labels)
        assert not _labels_match(sel, test_labels)
    (port,) = service["spec"]["ports"]
    assert _port_number(rendered.server, port["targetPort"]) == 8000
    assert [p["port"] for p in policy["spec"]["ingress"][0]["ports"]] == ["http"]


def test_pdb_allows_one_eviction_by_default_and_min_available_wins(rendered_scenarios):
    assert rendered_scenarios["defaults"].one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    spec = rendered_scenarios["pinned-digest-new-cache-pvc"].one("PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == 1 and "maxUnavailable" not in spec


def test_network_policy_sources_keep_the_helm_test_pod_allowed(rendered_scenarios):
    rendered = rendered_scenarios["pinned-digest-new-cache-pvc"]
    sources = rendered.one("NetworkPolicy")["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"name": "gateway"}}} in sources
    test_labels = rendered.test_pod["metadata"]["labels"]
    assert any(_labels_match(s.get("podSelector", {}).get("matchLabels", {"x": "y"}), test_labels) for s in sources)
    # No sources configured: every source may connect (the port is still restricted).
    assert "from" not in rendered_scenarios["defaults"].one("NetworkPolicy")["spec"]["ingress"][0]


def test_ingress_routes_to_the_service_port(rendered_scenarios):
    rendered = rendered_scenarios["ingress"]
    ingress = rendered.one("Ingress")
    service = rendered.one("Service")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "llm-tls", "hosts": ["llm.example.com"]}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "llm.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert "https://llm.example.com/v1" in rendered.notes


def test_default_ingress_publishes_only_the_api(render):
    rules = render({"ingress": {"enabled": True}}).one("Ingress")["spec"]["rules"]
    assert [p["path"] for rule in rules for p in rule["http"]["paths"]] == ["/v1"]


# Metrics and autoscaling ----------------------------------------------------------------------


def test_service_monitor_scrapes_metrics_with_a_bearer_secret(rendered_scenarios):
    rendered = rendered_scenarios["servicemonitor"]
    monitor = rendered.one("ServiceMonitor")
    service = rendered.one("Service")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert _labels_match(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == ["gpt-oss"]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["authorization"]["credentials"] == {"name": "gpt-oss-scrape", "key": "token"}
    assert "--protect-metrics" in rendered.args
    assert "--protect-metrics" not in rendered_scenarios["defaults"].args


def test_autoscaling_scales_the_deployment_on_queue_depth(rendered_scenarios):
    rendered = rendered_scenarios["autoscaling"]
    scaled = rendered.one("ScaledObject")
    deployment = rendered.deployment
    assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert scaled["spec"]["minReplicaCount"] >= 1
    assert scaled["spec"]["maxReplicaCount"] == 6
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    assert "vllm:num_requests_waiting" in meta["query"]
    assert 'namespace="gpt-oss"' in meta["query"]
    assert f'service="{rendered.one("Service")["metadata"]["name"]}"' in meta["query"]
    assert float(meta["threshold"]) == 8
    assert meta["serverAddress"] == "http://prometheus-operated.monitoring.svc:9090"
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] >= 300


def test_custom_autoscaling_query(render):
    query = 'sum(vllm:num_requests_waiting{job="gpt"})'
    rendered = render(
        {"autoscaling": {"enabled": True, "prometheus": {"serverAddress": "http://p:9090", "query": query}}}
    )
    assert rendered.one("ScaledObject")["spec"]["triggers"][0]["metadata"]["query"] == query


# helm test ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", MATRIX)
def test_helm_test_pod_calls_v1_models_with_the_key(rendered_scenarios, scenario):
    rendered = rendered_scenarios[scenario]
    pod = rendered.test_pod
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    env = rendered.env(container)
    service = rendered.one("Service")
    url = env["MODELS_URL"]["value"]
    assert url == (
        f"http://{service['metadata']['name']}.gpt-oss.svc:{service['spec']['ports'][0]['port']}/v1/models"
    )
    assert container["image"] == rendered.server["image"]
    key_file = env["API_KEY_FILE"]["value"]
    (server_key_file,) = rendered.flag_values("--api-key-file")
    assert posixpath.basename(key_file) == posixpath.basename(server_key_file)
    (mount,) = container["volumeMounts"]
    assert key_file.startswith(mount["mountPath"] + "/")
    assert _secret_volume_names(pod["spec"]) == _secret_volume_names(rendered.pod_spec) - {
        v["secret"]["secretName"] for v in rendered.pod_spec["volumes"] if v["name"] == "hf-token"
    }
    script = container["args"][0]
    compile(script, "check_models.py", "exec")  # the embedded script is valid Python
    assert container["command"] == ["python3", "-c"]


def test_helm_test_pod_follows_the_server_onto_gpu_nodes(rendered_scenarios):
    rendered = rendered_scenarios["120b-pvc-existing-secrets"]
    test_spec = rendered.test_pod["spec"]
    assert test_spec["tolerations"] == rendered.pod_spec["tolerations"]
    assert test_spec["affinity"]["nodeAffinity"] == rendered.pod_spec["affinity"]["nodeAffinity"]
    assert "nvidia.com/gpu" not in test_spec["containers"][0]["resources"].get("limits", {})


# Images -------------------------------------------------------------------------------------


def test_image_is_pinned(rendered_scenarios):
    assert rendered_scenarios["defaults"].server["image"] == "gpt-oss-server:0.1.0"
    digest = "sha256:" + "a" * 64
    assert rendered_scenarios["pinned-digest-new-cache-pvc"].server["image"] == (
        f"registry.example.com/gpt-oss-server:0.1.0@{digest}"
    )


def test_strict_validation_is_not_a_rubber_stamp(rendered_scenarios):
    """The validator used above rejects an unknown field in a rendered Deployment."""
    broken = copy.deepcopy(rendered_scenarios["defaults"].deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["startupProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.33.0", strict=True)
