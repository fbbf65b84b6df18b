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
