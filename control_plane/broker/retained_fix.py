"""amqtt's broker, with retained messages replayed only to the subscriptions that match.

When a client with a persistent session (``clean_session=False``) reconnects, amqtt
0.11-0.12 replays the retained messages of *every* topic filter any client of the
broker subscribed to, not only the reconnecting client's own (``Broker.client_connected``
loops over ``self._subscriptions``). An agent then received the control plane's
``devices/+/status`` and ``devices/+/reported`` matches, its own retained status and
reported state, as if they came on its ``desired`` topic, and warned twice about an
invalid desired state on every restart (it would receive other devices' too). Mosquitto
replays only the client's own subscriptions; so does this broker.
"""

from __future__ import annotations

from typing import Any

from amqtt.broker import Broker


class OwnRetainedBroker(Broker):  # type: ignore[misc]  # amqtt ships no types
    """amqtt's ``Broker``; retained messages go only to a session subscribed to the filter."""

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Any
    ) -> None:
        subscribers = self._subscriptions.get(subscription[0], [])
        if not any(target.client_id == session.client_id for target, _qos in subscribers):
            return
        await super()._publish_retained_messages_for_subscription(subscription, session)


__all__ = ["OwnRetainedBroker"]
