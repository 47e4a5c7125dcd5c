"""How ingest takes telemetry from the broker: the keys of ``parkwatch serve`` that size its
batches and queue, share its subscription between workers and give statuses and reported
states a connection of their own. Top-level keys like the rest of the server's;
``ControlPlaneSettings`` inherits them.
"""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, SecretStr, model_validator


class IngestKeys(BaseModel):
    """Ingest's keys; validated with the rest of the control plane's settings."""

    ingest_share_group: str | None = Field(
        None,
        description="MQTT shared-subscription group for ingest workers ($share/<group>/...); "
        "unset: one plain subscription.",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
    )
    ingest_batch_size: int = Field(
        20,
        ge=1,
        le=5000,
        description="Most MQTT messages the ingest writer takes at once: their telemetry "
        "windows are written in one transaction and acknowledged after the commit. The broker "
        "sends its in-flight limit (Mosquitto max_inflight_messages, default 20) before the "
        "first acknowledgement, so set it to at least this (deploy/ ships 400 and 400); it "
        "bounds no memory, ingest_max_queued does.",
    )
    ingest_linger_seconds: float = Field(
        0.02,
        ge=0,
        le=5,
        description="How long the ingest writer waits for a batch to fill after its first "
        "message, in seconds (adds at most this much latency at a low message rate).",
    )
    ingest_max_queued: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Most MQTT messages ingest holds received but not yet stored and "
        "acknowledged (about 4.4 KB each, decoded); beyond it ingest stops reading from the "
        "broker, which keeps the backlog (its max_queued_messages). At least "
        "ingest_batch_size.",
    )
    ingest_control_lane: bool = Field(
        True,
        description="Ingest statuses, reported states and events on a second broker "
        "connection (client id <mqtt_client_id>-control), so that a telemetry backlog cannot "
        "delay a rollout's bookkeeping. Where the control plane logs in to the broker, only "
        "with an account of its own (mqtt_control_username).",
    )
    mqtt_control_username: str | None = Field(
        None, description="Broker account of the control lane (ingest_control_lane); unset "
        "where mqtt_username is set: no control lane.",
    )
    mqtt_control_password: SecretStr | None = Field(
        None, description="Broker password of mqtt_control_username.",
    )

    @model_validator(mode="after")
    def _queue_holds_a_batch(self) -> Self:
        if self.ingest_max_queued < self.ingest_batch_size:
            raise ValueError(
                f"ingest_max_queued ({self.ingest_max_queued}) must be at least "
                f"ingest_batch_size ({self.ingest_batch_size}): raise ingest_max_queued"
            )
        return self
