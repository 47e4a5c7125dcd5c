"""The one error type of the wire contract."""


class ProtocolError(ValueError):
    """A payload, topic, manifest or signature that does not meet the contract.

    The message is meant for a log line: it names what was wrong and where.
    """


class SignatureError(ProtocolError):
    """A signed manifest or desired state whose signature, key id or payload does not
    verify."""
