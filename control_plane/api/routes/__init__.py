"""Thin route handlers: parse, authorise, call a service, shape the answer."""
