"""Bad values fail the render (values.schema.json, then the chart's own checks); lint is clean;
the schema travels in the packaged chart."""

from __future__ import annotations

import json

import helm_python as helm
import pytest

from conftest import CHART_DIR, MATRIX, SCENARIOS

SEVERITY_WARNING = 2


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        pytest.param({"gpu": {"count": 3}}, "/gpu/count", id="unknown-gpu-count"),
        pytest.param({"gpu": {"count": 16}}, "/gpu/count", id="too-many-gpus"),
        pytest.param({"gpu": {"count": "2"}}, "/gpu/count", id="gpu-count-as-string"),
        pytest.param({"replicaCount": "two"}, "/replicaCount", id="replicas-wrong-type"),
        pytest.param({"engineArgs": "--max-num-seqs 8"}, "/engineArgs", id="engine-args-not-a-list"),
        pytest.param({"auth": {"enabled": "yes"}}, "/auth/enabled", id="bool-as-string"),
        pytest.param({"probes": {"startup": {"failureThreshold": 0}}}, "/probes/startup", id="zero-threshold"),
        pytest.param({"image": {"tag": "latest"}}, "/image/tag", id="latest-tag"),
        pytest.param({"image": {"tag": ""}}, "/image/tag", id="empty-tag"),
        pytest.param({"model": {"path": "models/gpt-oss"}}, "/model/path", id="relative-model-path"),
        pytest.param({"gpuCount": 2}, "gpuCount", id="unknown-top-level-key"),
        pytest.param({"gpu": {"count": 1, "type": "h100"}}, "type", id="unknown-nested-key"),
        pytest.param({"autoscaling": {"minReplicas": 0}}, "/autoscaling/minReplicas", id="scale-to-zero"),
        pytest.param({"termination": {"marginSeconds": 0}}, "/termination/marginSeconds", id="no-margin"),
        pytest.param({"server": {"logLevel": "verbose"}}, "/server/logLevel", id="unknown-log-level"),
    ],
)
def test_schema_rejects_bad_values(chart, values, complaint):
    with pytest.raises(helm.HelmValuesError) as caught:
        chart.render(values, name="demo", namespace="gpt-oss")
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        pytest.param(
            {"autoscaling": {"enabled": True}},
            "autoscaling.prometheus.serverAddress",
            id="autoscaling-without-prometheus",
        ),
        pytest.param(
            {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2,
                             "prometheus": {"serverAddress": "http://p:9090"}}},
            "minReplicas",
            id="autoscaling-min-above-max",
        ),
        pytest.param(
            {"metrics": {"protect": True, "serviceMonitor": {"enabled": True}}},
            "authorization",
            id="protected-metrics-without-scrape-credentials",
        ),
        pytest.param(
            {"helmTest": {"image": {"repository": "python"}}},
            "helmTest.image.tag",
            id="test-image-without-tag",
        ),
        pytest.param(
            {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}},
            "rollingUpdate",
            id="rollout-that-cannot-progress",
        ),
    ],
)
def test_chart_checks_reject_inconsistent_values(chart, values, complaint):
    with pytest.raises(helm.HelmRenderError) as caught:
        chart.render(values, name="demo", namespace="gpt-oss")
    assert complaint in str(caught.value)


@pytest.mark.parametrize("gpus", [1, 2, 4, 8])
def test_schema_accepts_every_supported_gpu_count(chart, gpus):
    chart.validate_schema({"gpu": {"count": gpus}})


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_scenario_passes_the_schema(chart, scenario):
    chart.validate_schema(SCENARIOS[scenario])


def test_every_default_value_is_described_by_the_schema(chart):
    """additionalProperties is false at the top: each default key must be declared."""
    schema = chart.schema
    assert schema["additionalProperties"] is False
    assert set(chart.values) <= set(schema["properties"])


def _lint_findings(values=None):
    report = helm.lint(CHART_DIR, values, strict=True, namespace="gpt-oss")
    findings = [m for m in report["messages"] if m["severity"] >= SEVERITY_WARNING]
    return report, findings


@pytest.mark.parametrize("scenario", MATRIX)
def test_lint_is_clean(scenario):
    report, findings = _lint_findings(SCENARIOS[scenario])
    assert report["total_charts_linted"] == 1
    assert findings == [] and report["errors"] == [], report


def test_lint_reports_schema_violations():
    report, findings = _lint_findings({"gpu": {"count": 3}})
    assert findings and report["errors"]


def test_packaged_chart_carries_schema_notes_and_test(tmp_path):
    archive = helm.package(CHART_DIR, destination=tmp_path)
    with helm.Chart.load(archive) as packaged:
        assert packaged.schema == json.loads((CHART_DIR / "values.schema.json").read_text())
        names = {t["name"] for t in packaged.templates}
        assert "templates/NOTES.txt" in names
        assert "templates/tests/test-models.yaml" in names
        assert "files/check_models.py" in {f["name"] for f in packaged.files}
        with pytest.raises(helm.HelmValuesError):
            packaged.render({"gpu": {"count": 3}}, name="demo", namespace="gpt-oss")
