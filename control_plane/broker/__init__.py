"""The MQTT broker's side of things (the broker itself is Mosquitto in production).

- ``embedded``: an in-process amqtt broker for one-machine set-ups (no ``mqtt_url``);
- ``acl``: Mosquitto password file and ACL derived from the device registry;
- ``devcerts``: a throw-away CA and certificates for TLS tests and development.
"""
