"""docs/deploy.md stays accurate to the chart and the image: its values table covers every value
with the right default, its values files render, and its flags name real values."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
import yaml

from conftest import CHART_DIR, REPO

DOC = REPO / "docs" / "deploy.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text()


def _schema_leaves(schema, defaults, prefix=""):
    """Value paths as documented: nested objects with a closed schema are expanded."""
    for key, sub in schema.get("properties", {}).items():
        path = prefix + key
        if path == "global":
            continue
        closed = sub.get("type") == "object" and sub.get("additionalProperties") is False
        if closed and sub.get("properties"):
            yield from _schema_leaves(sub, (defaults or {}).get(key), path + ".")
        else:
            yield path, (defaults or {}).get(key)


def _table(doc: str) -> dict[str, str]:
    rows = re.findall(r"^\| `([\w.]+)` \| [^|]+ \| ([^|]+) \|", doc, flags=re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_values_table_covers_every_value_with_its_default(doc, chart):
    leaves = dict(_schema_leaves(chart.schema, chart.values))
    table = {k: v for k, v in _table(doc).items() if "." in k or k in leaves}
    assert set(table) == set(leaves), (
        f"undocumented: {sorted(set(leaves) - set(table))}; stale: {sorted(set(table) - set(leaves))}"
    )
    for name, cell in table.items():
        if cell == "see values.yaml":
            continue
        assert json.loads(cell.strip("`")) == leaves[name], name


def _values_files(doc: str) -> dict[str, dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", doc, flags=re.DOTALL)
    files = {}
    for block in blocks:
        block = textwrap.dedent(block)
        first = block.splitlines()[0]
        match = re.match(r"# (values[\w-]*\.yaml)", first)
        if match:
            files[match.group(1)] = yaml.safe_load(block)
    return files


def test_documented_values_files_render(doc, render):
    files = _values_files(doc)
    assert {"values-120b.yaml", "values-airgapped.yaml"} <= set(files)
    for name, values in files.items():
        rendered = render(values)
        assert rendered.deployment, name
    big = render(files["values-120b.yaml"])
    assert big.args[-4:] == ["--gpu-memory-utilization", "0.95", "--max-num-batched-tokens", "1024"]
    offline = render(files["values-airgapped.yaml"])
    assert offline.env()["HF_HUB_OFFLINE"]["value"] == "1"
    assert offline.flag_values("--model") == ["/models/gpt-oss-120b"]
    assert offline.of_kind("Secret") == []


def test_documented_set_flags_name_real_values(doc, chart):
    leaves = {path for path, _ in _schema_leaves(chart.schema, chart.values)}
    flags = re.findall(r"--set(?:-json|-string)? '?([\w.]+)=", doc)
    assert flags
    for flag in flags:
        assert flag in leaves or any(flag.startswith(leaf + ".") for leaf in leaves), flag


def test_quick_starts_are_there(doc):
    assert "docker build -f Dockerfile.cuda -t gpt-oss-server:0.1.0 ." in doc
    joined = doc.replace("\\\n", " ")  # shell line continuations
    runs = [line for line in joined.splitlines() if line.lstrip().startswith("docker run")]
    full = [" ".join(r.split()) for r in runs if "--gpus all" in r]
    assert any("--model openai/gpt-oss-20b" in r for r in full)
    big = [r for r in full if "--model openai/gpt-oss-120b" in r]
    assert big and "--gpu-memory-utilization 0.95 --max-num-batched-tokens 1024" in big[0]
    for run in full:
        assert "--ipc=host" in run and "-e GPT_OSS_API_KEY" in run and ":/cache" in run
    assert "helm install" in doc and "helm test" in doc and "HF_HUB_OFFLINE=1" in doc


def test_documented_versions_match_the_chart(doc, chart):
    meta = chart.metadata
    assert meta["appVersion"] == chart.values["image"]["tag"] == "0.1.0"
    assert f"gpt-oss-server:{meta['appVersion']}" in doc
    assert f"gpt-oss-server-{meta['version']}.tgz" in doc
    assert (CHART_DIR / "values.schema.json").exists()


# The multi-replica section (issue 14) ---------------------------------------------------------

PICKER_METRICS = (
    "vllm:num_requests_waiting",
    "vllm:num_requests_running",
    "vllm:kv_cache_usage_perc",
    "vllm:cache_config_info",
)


def _section(doc: str, title: str) -> str:
    start = doc.index(f"\n## {title}\n")
    end = doc.find("\n## ", start + 1)
    return doc[start:end]


def test_many_replicas_section_covers_every_path(doc):
    section = _section(doc, "Many replicas")
    for heading in ("### Plain Service", "### The Inference Extension with the bundled endpoint picker",
                    "### llm-d, KServe LLMInferenceService", "### GKE Inference Gateway",
                    "### One response store for every replica"):
        assert heading in section, heading
    # the picture of the routing: gateway -> picker -> pods, and the shared store
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)
    (picture,) = [text for lang, text in blocks if not lang and "endpoint picker" in text]
    for box in ("Gateway", "HTTPRoute", "InferencePool", "/metrics", "server pod", "Redis"):
        assert box in picture, box
    # the metrics the picker reads, each in the table
    for name in PICKER_METRICS:
        assert re.search(rf"^\| `{re.escape(name)}` \|", section, flags=re.MULTILINE), name
    # KV-cache events pass through as engine flags; the shared store's flag and values
    assert "--kv-events-config" in section and "engineArgs" in section
    assert "--response-store redis://" in section and "GPT_OSS_RESPONSE_STORE_PASSWORD" in section
    assert "tests/engine/test_gateway_metrics.py" in section


def test_documented_multi_replica_values_render(doc, render):
    files = _values_files(doc)
    pool = render(files["values-inference-pool.yaml"])
    assert pool.one("InferencePool") and pool.one("HTTPRoute") and pool.picker_deployment
    assert pool.flag_values("--response-store") == ["redis://redis-master.gpt-oss.svc:6379/0"]
    assert pool.env()["GPT_OSS_RESPONSE_STORE_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "gpt-oss-redis"
    llm_d = render(files["values-llm-d.yaml"])
    assert llm_d.picker_deployment is None
    assert llm_d.one("InferencePool")["spec"]["endpointPickerRef"]["name"] == "gpt-oss-epp"
    # the KV-event flags reach vLLM unchanged, after the chart's own flags
    (config,) = llm_d.flag_values("--kv-events-config")
    assert json.loads(config)["enable_kv_cache_events"] is True
    assert "$(POD_IP)" in config and "POD_IP" in llm_d.env()


def test_chart_readme_lists_the_scale_out_values(chart):
    readme = (CHART_DIR / "README.md").read_text()
    leaves = [path for path, _ in _schema_leaves(chart.schema, chart.values)
              if path.startswith(("inferencePool.", "responseStore."))]
    assert leaves
    missing = [path for path in leaves if f"`{path}`" not in readme]
    assert not missing, f"helm/gpt-oss-server/README.md does not mention {missing}"
