"""Load for clima: clients reporting the weather, as Locust users.

Two kinds of client, each a FastHttpUser:

* CloudEventsUser posts clima.weather.reported CloudEvents in binary mode
  (ce-* headers, the report as JSON data) to the Broker: single reports and,
  if CLIMA_BATCH_WEIGHT > 0, arrays of CLIMA_BATCH_SIZE reports.
* LegacyUser posts plain JSON to ingest's /input as the course's clients did:
  a single object with their key spellings and, if CLIMA_LEGACY_BATCH_WEIGHT
  > 0, arrays of CLIMA_LEGACY_BATCH_SIZE (10,000) objects.

Settings, all from the environment (`clima load` sets them):

  CLIMA_BROKER_URL           where CloudEventsUser posts (the Broker's URL)
  CLIMA_INGEST_URL           ingest's base URL; LegacyUser posts to <it>/input
  CLIMA_INGEST_HOST          the Host header LegacyUser sends ("": the URL's); a cluster's
                             Kourier gateway routes by it (ingest.clima.<domain>)
  CLIMA_REQUESTS             stop after this many requests in all (0: no limit)
  CLIMA_SINGLE_WEIGHT        weight of single-report requests (default 1)
  CLIMA_BATCH_WEIGHT         weight of CloudEvents batches (default 0)
  CLIMA_BATCH_SIZE           reports per CloudEvents batch (default 100)
  CLIMA_LEGACY_BATCH_WEIGHT  weight of legacy arrays (default 0)
  CLIMA_LEGACY_BATCH_SIZE    reports per legacy array (default 10000)
  CLIMA_SUMMARY              file to write what was accepted to, as JSON

Runs with Debian's Locust 2.12: /usr/bin/python3 /usr/bin/locust -f loadtest/locustfile.py
"""

import json
import os
import random
import uuid

import gevent
from locust import FastHttpUser, constant, events
from locust.exception import StopUser

BROKER_URL = os.environ.get("CLIMA_BROKER_URL", "http://127.0.0.1:8080/clima/default")
INGEST_URL = os.environ.get("CLIMA_INGEST_URL", "")
INGEST_HOST = os.environ.get("CLIMA_INGEST_HOST", "")
REQUESTS = int(os.environ.get("CLIMA_REQUESTS", "0"))
SINGLE_WEIGHT = int(os.environ.get("CLIMA_SINGLE_WEIGHT", "1"))
BATCH_WEIGHT = int(os.environ.get("CLIMA_BATCH_WEIGHT", "0"))
BATCH_SIZE = int(os.environ.get("CLIMA_BATCH_SIZE", "100"))
LEGACY_BATCH_WEIGHT = int(os.environ.get("CLIMA_LEGACY_BATCH_WEIGHT", "0"))
LEGACY_BATCH_SIZE = int(os.environ.get("CLIMA_LEGACY_BATCH_SIZE", "10000"))
SUMMARY = os.environ.get("CLIMA_SUMMARY", "")

# Central America, where the course's clients reported from, and a few more.
COUNTRIES = ["Guatemala", "GT", "México", "MX", "El Salvador", "Honduras", "Nicaragua", "Costa Rica",
             "Panamá", "Belice", "Colombia", "España"]
# Canonical values and the synonyms clients send; clima stores them canonical.
WEATHERS = ["Lluvioso", "Nubloso", "Soleado", "lluvioso", "Nublado", "Lluvia", "soleado", "rainy", "cloudy",
            "sunny", "Sol", "Despejado"]
DESCRIPTIONS = [
    "Lluvia fuerte por la tarde en la capital",
    "Cielo cubierto desde temprano",
    "Sol radiante en la costa",
    "Llovizna ligera, calles mojadas",
    "Nubes altas y algo de viento",
    "Despejado después de la tormenta",
    "Aguacero con granizo en la zona 1",
    "Mañana fresca y soleada",
    "Neblina en la montaña",
    "Calor húmedo, amenaza de lluvia",
]
# The key spellings of the course's clients: the contract's, capitalised, Spanish.
LEGACY_KEYS = [("description", "country", "weather"), ("Description", "Country", "Weather"),
               ("descripcion", "pais", "clima")]


class Counts:
    """What this Locust process sent and what clima accepted."""

    sent = 0  # requests started
    answered = 0  # requests answered (or failed)
    accepted_reports = 0  # reports in requests answered 2xx
    refused_requests = 0
    # Requests whose answer was never read: Locust stopped the user (or the
    # connection broke) with the request in flight. clima may have accepted
    # them: they bound how far the stores can hold more than was accepted.
    unanswered_requests = 0
    unanswered_reports = 0
    no_answer_requests = 0  # of those, the ones whose connection broke (Locust counts them as failures)


def report():
    return {
        "description": random.choice(DESCRIPTIONS),
        "country": random.choice(COUNTRIES),
        "weather": random.choice(WEATHERS),
    }


def legacy_report():
    d, c, w = random.choice(LEGACY_KEYS)
    r = report()
    return {d: r["description"], c: r["country"], w: r["weather"]}


def weighted(*pairs):
    """A Locust task mapping without the tasks of weight 0."""
    return {task: weight for task, weight in pairs if weight > 0}


class ClimaUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def post(self, name, url, body, headers, reports):
        """Posts once, unless the request budget is spent, and counts."""
        if REQUESTS and Counts.sent >= REQUESTS:
            raise StopUser()  # the last request to be answered ends the run
        Counts.sent += 1
        Counts.unanswered_requests += 1
        Counts.unanswered_reports += reports
        try:
            with self.client.post(url, data=body, headers=headers, name=name, catch_response=True) as resp:
                Counts.unanswered_requests -= 1
                Counts.unanswered_reports -= reports
                if resp.status_code == 0:
                    # No answer: a connection error, the request may have been taken.
                    Counts.unanswered_requests += 1
                    Counts.unanswered_reports += reports
                    Counts.no_answer_requests += 1
                    resp.failure(f"no answer: {resp.error}")
                elif 200 <= resp.status_code < 300:
                    Counts.accepted_reports += reports
                    resp.success()
                else:
                    Counts.refused_requests += 1
                    resp.failure(f"{resp.status_code}: {(resp.text or '')[:200]}")
        finally:
            Counts.answered += 1
            self.stop_when_done()

    def stop_when_done(self):
        if REQUESTS and Counts.answered >= REQUESTS:
            # From a greenlet of its own: quit stops every user, this one too.
            gevent.spawn(self.environment.runner.quit)


class CloudEventsUser(ClimaUser):
    """A client of the Broker: binary-mode CloudEvents."""

    host = BROKER_URL

    def event(self, name, data, reports):
        headers = {
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": "/locust/cloudevents-user",
            "ce-type": "clima.weather.reported",
            "Content-Type": "application/json",
        }
        self.post(name, BROKER_URL, json.dumps(data), headers, reports)

    def single(self):
        self.event("CloudEvent: 1 report", report(), 1)

    def batch(self):
        self.event(f"CloudEvent: {BATCH_SIZE} reports", [report() for _ in range(BATCH_SIZE)], BATCH_SIZE)

    tasks = weighted((single, SINGLE_WEIGHT), (batch, BATCH_WEIGHT))


class LegacyUser(ClimaUser):
    """A course client: plain JSON to /input, a fresh Idempotency-Key per request."""

    host = INGEST_URL or "http://127.0.0.1"

    def send(self, name, data, reports):
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
        if INGEST_HOST:
            headers["Host"] = INGEST_HOST
        self.post(name, INGEST_URL.rstrip("/") + "/input", json.dumps(data), headers, reports)

    def single(self):
        self.send("/input: 1 report", legacy_report(), 1)

    def batch(self):
        self.send(f"/input: {LEGACY_BATCH_SIZE} reports", [legacy_report() for _ in range(LEGACY_BATCH_SIZE)],
                  LEGACY_BATCH_SIZE)

    tasks = weighted((single, SINGLE_WEIGHT), (batch, LEGACY_BATCH_WEIGHT))


@events.quitting.add_listener
def write_summary(environment, **_kwargs):
    stats = environment.stats.total
    summary = {
        "requests": stats.num_requests,
        "failures": stats.num_failures,
        "accepted_reports": Counts.accepted_reports,
        "refused_requests": Counts.refused_requests,
        "unanswered_requests": Counts.unanswered_requests,
        "unanswered_reports": Counts.unanswered_reports,
        "no_answer_requests": Counts.no_answer_requests,
        "requests_per_second": stats.total_rps,
        "p50_ms": stats.get_response_time_percentile(0.5),
        "p95_ms": stats.get_response_time_percentile(0.95),
        "p99_ms": stats.get_response_time_percentile(0.99),
    }
    if SUMMARY:
        with open(SUMMARY, "w") as f:
            json.dump(summary, f)
