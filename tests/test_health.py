import pytest


def test_it_reports_liveness_without_touching_anything(client):
    response = client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


@pytest.mark.django_db
def test_it_reports_every_dependency_ready(client):
    response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "kafka": "ok"}


@pytest.mark.django_db
def test_it_serves_prometheus_metrics(client):
    client.get("/health")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert "django_http_requests_total_by_view_transport_method_total" in (
        response.content.decode()
    )


def test_it_serves_an_openapi_schema(client):
    response = client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


def test_it_answers_unknown_api_paths_with_json(client):
    response = client.get("/api/no-such-thing")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_it_returns_the_request_id_it_was_given(client):
    response = client.get("/health", HTTP_X_REQUEST_ID="abc-123")

    assert response["X-Request-ID"] == "abc-123"


def test_it_rejects_an_oversized_body_with_413(client, settings):
    settings.MAX_REQUEST_BODY_BYTES = 100

    response = client.post(
        "/api/actions", data="x" * 200, content_type="application/json"
    )

    assert response.status_code == 413
