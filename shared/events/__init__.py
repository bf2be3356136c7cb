"""CloudEvents envelope, the event catalogue and the payload models."""

from shared.events.catalogue import CATALOGUE, EventSpec, Topics, spec_for
from shared.events.envelope import Envelope, EnvelopeError

__all__ = ["CATALOGUE", "Envelope", "EnvelopeError", "EventSpec", "Topics", "spec_for"]
