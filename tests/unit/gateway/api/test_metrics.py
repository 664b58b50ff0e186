"""/metrics: Prometheus text with requests by protocol and status, issuance count and
latency, signing latency; and the figures of sibling worker processes summed in."""

from __future__ import annotations

import base64
import re
from pathlib import Path

from ca_core.issuance import IssuanceOutcome
from gateway.api.metrics import GatewayMetrics, WorkerShare, clear_shared
from tests.support.pki import make_csr
from tests.unit.gateway.api.conftest import Api


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in exposition text (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)$"
    for line in text.splitlines():
        match = re.match(pattern, line)
        if match:
            return float(match.group(1))
    return 0.0


async def test_metrics_count_requests_issuances_and_signing(sqlite_api: Api) -> None:
    api = sqlite_api
    body = {"profileId": "privatessl-tls-server", "csr": base64.b64encode(make_csr()).decode()}
    for _ in range(3):
        status, _ = await api.call(
            "POST", "/cagw/v1/certificate-authorities/issuing/enrollments", "officer", body
        )
        assert status == 200
    status, _ = await api.call(
        "POST",
        "/cagw/v1/certificate-authorities/issuing/enrollments",
        "officer",
        {**body, "profileId": "nope"},
    )
    assert status == 404
    await api.call("GET", "/api/v1/cas", role=None)
    async with api.client.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    assert sample(text, "ceg_http_requests_total", protocol="cagw", status="200") == 3
    assert sample(text, "ceg_http_requests_total", protocol="cagw", status="404") == 1
    assert sample(text, "ceg_http_requests_total", protocol="api", status="401") == 1
    assert (
        sample(text, "ceg_issuances_total", ca="issuing", profile="privatessl-tls-server", outcome="issued")
        == 3
    )
    assert sample(text, "ceg_issuances_total", ca="issuing", profile="nope", outcome="not_found") == 1
    assert sample(text, "ceg_issuance_seconds_count", outcome="issued") == 3
    assert sample(text, "ceg_issuance_seconds_bucket", outcome="issued", le="+Inf") == 3
    assert sample(text, "ceg_signing_seconds_count", algorithm="ec-p256") == 3
    assert (
        0
        < sample(text, "ceg_signing_seconds_sum", algorithm="ec-p256")
        < sample(text, "ceg_issuance_seconds_sum", outcome="issued")
    )
    assert (
        "# TYPE ceg_issuance_seconds histogram" in text and "# TYPE ceg_http_requests_total counter" in text
    )


def test_histogram_buckets_are_cumulative_and_labels_escaped() -> None:
    metrics = GatewayMetrics()
    for seconds in (0.0004, 0.003, 0.003, 20.0):
        metrics.observe(IssuanceOutcome('c"a', "p\\1", None, seconds, seconds / 2, "ec-p256"))
    text = metrics.render()
    assert sample(text, "ceg_issuance_seconds_bucket", outcome="issued", le="0.0005") == 1
    assert sample(text, "ceg_issuance_seconds_bucket", outcome="issued", le="0.005") == 3
    assert sample(text, "ceg_issuance_seconds_bucket", outcome="issued", le="10") == 3
    assert sample(text, "ceg_issuance_seconds_bucket", outcome="issued", le="+Inf") == 4
    assert sample(text, "ceg_issuance_seconds_count", outcome="issued") == 4
    assert 'ca="c\\"a",profile="p\\\\1"' in text


def test_workers_figures_are_summed(tmp_path: Path) -> None:
    first, second = GatewayMetrics(), GatewayMetrics()
    share_a, share_b = WorkerShare(tmp_path, "a"), WorkerShare(tmp_path, "b")
    first.requests.inc(("cagw", "200"), 5)
    second.requests.inc(("cagw", "200"), 7)
    second.requests.inc(("acme", "201"), 1)
    second.observe(IssuanceOutcome("issuing", "p", None, 0.01, 0.001, "ec-p256"))
    share_b.write(second)
    share_a.write(first)  # a worker's own file is never counted twice
    text = first.render(share_a.others())
    assert sample(text, "ceg_http_requests_total", protocol="cagw", status="200") == 12
    assert sample(text, "ceg_http_requests_total", protocol="acme", status="201") == 1
    assert sample(text, "ceg_signing_seconds_count", algorithm="ec-p256") == 1
    assert sample(text, "ceg_metrics_workers") == 2
    (tmp_path / "worker-c.json").write_text("{not json")  # a torn or foreign file is skipped
    assert sample(first.render(share_a.others()), "ceg_metrics_workers") == 2
    clear_shared(tmp_path)
    assert list(tmp_path.iterdir()) == []
