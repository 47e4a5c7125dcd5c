"""An embedded MQTT broker (amqtt) for laptops: used when no ``mqtt_url`` is configured.

It runs in its own thread with its own event loop, so it works the same under
uvicorn, under a test client, or from a plain script. Anonymous clients are
allowed and there are no ACLs: production uses Mosquitto (deploy/).
Retained messages live in memory only; the control plane re-publishes desired
states on connect, so a restart loses nothing that matters. The broker is amqtt's with
one fix (``retained_fix.py``): a reconnecting client gets the retained messages of its
own subscriptions only.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Any

from ..errors import ConfigError
from ..lifecycle import Health

log = logging.getLogger(__name__)


class EmbeddedBroker:
    """An amqtt broker on its own thread and event loop (a ``lifecycle.Service``)."""

    name = "embedded-broker"

    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def health(self) -> Health:
        if self._thread is not None and self._thread.is_alive():
            return Health(True, f"listening on {self.host}:{self.port}")
        return Health(False, "not running")

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {
                "default": {
                    "type": "tcp",
                    "bind": f"{self.host}:{self.port}",
                    "max_connections": 10_000,
                },
            },
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    def start(self, timeout: float = 15.0) -> None:
        """Start listening; raise ConfigError if the port cannot be bound."""
        if self._thread is not None:
            raise RuntimeError("embedded broker already started")
        started: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="embedded-mqtt-broker", daemon=True
        )
        self._thread.start()
        try:
            started.result(timeout=timeout)
        except Exception as exc:
            self._thread.join(timeout=5)
            self._thread = None
            raise ConfigError(
                f"cannot start the embedded MQTT broker on {self.host}:{self.port} ({exc}): "
                "free the port, set embedded_broker_port, or set mqtt_url to an external broker"
            ) from exc
        log.info("embedded MQTT broker listening", extra={"broker": self.url})

    def _run(self, started: Future[None]) -> None:
        from .retained_fix import OwnRetainedBroker as Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._broker = Broker(self._config(), loop=loop)
            await self._broker.start()

        try:
            loop.run_until_complete(boot())
        except Exception as exc:  # surfaced to start()
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._broker is not None:
            fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
            try:
                fut.result(timeout=timeout)
            except Exception:
                log.exception("embedded broker did not shut down cleanly")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=timeout)
        self._thread = None
        self._loop = None
        self._broker = None
        log.info("embedded MQTT broker stopped")
