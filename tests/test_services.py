"""The servers the suite runs against are real, reached over real connections."""

import uuid

import pytest
from confluent_kafka import Producer
from django.conf import settings
from django.db import connection


@pytest.mark.django_db
def test_it_round_trips_through_postgresql():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text || version()", ["echo "])
        (answer,) = cursor.fetchone()

    assert connection.vendor == "postgresql"
    assert answer.startswith("echo PostgreSQL")


def test_it_round_trips_through_redis(redis_client):
    key = f"test:{uuid.uuid4()}"

    redis_client.set(key, "value", ex=10)

    assert redis_client.get(key) == "value"


def test_it_round_trips_through_kafka(kafka_consumer, kafka_topic):
    marker = str(uuid.uuid4())
    producer = Producer(
        {"bootstrap.servers": settings.KAFKA_BROKER, "enable.idempotence": True}
    )

    producer.produce(kafka_topic, key="round-trip", value=marker)
    assert producer.flush(15) == 0

    seen = []
    for _ in range(60):
        message = kafka_consumer.poll(0.5)
        if message is None or message.error():
            continue
        seen.append(message.value().decode())
        if marker in seen:
            break
    assert marker in seen
