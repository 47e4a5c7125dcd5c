"""MQTT in and out: the control plane's broker connections.

- ``adapter``: ``MqttAdapter`` (paho): subscribes to every device's status, reported
  state, telemetry and events, and publishes desired states (retained, QoS 1);
- ``batch``: the ingest pipeline behind it: telemetry windows written in batches and
  each message acknowledged to the broker only once committed;
- ``store``: what the pipeline's writer stores, a run of messages per transaction;
- ``client``: the paho client it uses: a wake-up reads every packet one ``recv`` got,
  and a committed batch's PUBACKs leave in one write;
- ``lanes``: statuses, reported states and events on a connection and writer of their
  own, apart from telemetry;
- ``identity``: stable client ids for ingest workers (slots), and retiring the session
  of a worker removed for good.

What a message means for the store is decided in ``services`` (devices, telemetry) and
``rollouts``; this package only moves and acknowledges messages.
"""
