"""The ``[retention]`` section: how long telemetry windows (and reports, snapshots, dead
letters) are kept, and when windows are merged."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class RetentionSettings(BaseModel):
    """How long telemetry windows are kept, and when old ones are merged into coarser ones.

    Downsampling adds up a device's windows per bucket (the histograms are mergeable, so
    drift over old ranges stays exact at the coarser time resolution); latency
    percentiles cannot be merged and are dropped from merged windows.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True, description="Run retention from `parkwatch serve`'s analysis loop."
    )
    interval_s: float = Field(3600.0, gt=0, description="How often retention runs.")
    downsample_after_hours: float = Field(
        48.0,
        gt=0,
        description="Windows received longer ago are merged per device, release and bucket; "
        "a re-send of a merged window is refused as expired.",
    )
    bucket_minutes: int = Field(
        60, ge=2, le=24 * 60, description="Length of one merged (downsampled) window."
    )
    delete_after_days: float = Field(
        30.0, gt=0, description="Windows received longer ago are deleted."
    )
    rollup_hours_keep_days: float = Field(
        35.0,
        gt=0,
        description="Hourly rollup rows received longer ago are deleted (whole days, once "
        "folded into their daily rows); daily rows stay (reports and camera history over "
        "older days read those).",
    )
    rollup_days_keep_days: float = Field(
        800.0, gt=0, description="Daily rollup rows older than this are deleted."
    )
    reports_keep_days: float = Field(
        7.0,
        gt=0,
        description="Drift reports older than this are deleted, except those an alert "
        "points at (the analysis writes one per device and release every interval).",
    )

    snapshots_keep_days: float = Field(
        7.0,
        gt=0,
        description="Snapshots requested longer ago are deleted with their JPEGs, except "
        "each camera's newest answered one (the park view shows it).",
    )

    dead_letters_keep_days: float = Field(
        30.0,
        gt=0,
        description="Dead letters (messages ingest could not store) received longer ago are "
        "deleted, replayed or not: replay them before (`parkwatch dead-letters replay`); a "
        "window that old is past delete_after_days anyway.",
    )

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.delete_after_days * 24 <= self.downsample_after_hours:
            raise ValueError("delete_after_days must be later than downsample_after_hours")
        if self.rollup_days_keep_days < self.rollup_hours_keep_days:
            raise ValueError("rollup_days_keep_days must be at least rollup_hours_keep_days")
        return self
