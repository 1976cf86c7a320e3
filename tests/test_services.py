"""The servers the suite runs against are real, reached over real connections."""

import uuid

import pytest
from confluent_kafka import Consumer, Producer
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


def test_it_round_trips_through_kafka():
    # A topic of its own: the actions topic holds every other test's events.
    topic = f"round-trip-{uuid.uuid4()}"
    marker = str(uuid.uuid4())
    producer = Producer(
        {"bootstrap.servers": settings.KAFKA_BROKER, "enable.idempotence": True}
    )
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BROKER,
            "group.id": f"round-trip-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )

    producer.produce(topic, key="round-trip", value=marker)
    assert producer.flush(15) == 0

    consumer.subscribe([topic])
    seen = []
    for _ in range(60):
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            seen.append(message.value().decode())
            break
    consumer.close()
    assert seen == [marker]
