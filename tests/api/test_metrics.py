from __future__ import annotations

from flask.testing import FlaskClient

from compute.models import Instance


def test_metrics__counts_come_from_the_store(client: FlaskClient, active_server: Instance,
                                            build_server: Instance) -> None:
    response = client.get("/metrics", headers={"X-Auth-Token": "admin:admin"})  # [metrics] access = "admin"
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert 'compute_actions_servers{status="ACTIVE"} 1.0' in text
    assert 'compute_actions_servers{status="BUILD"} 1.0' in text
    assert "compute_actions_active_actions 2.0" in text  # both create flows are still queued here
    assert 'compute_actions_host_memory_mb_used{host="compute-kvm-1"} 512.0' in text
