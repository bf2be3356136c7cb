"""What every source adapter produces: a lead draft, an ignore decision or a quarantine reason."""

from ingest.canonical.drafts import (
    Contact,
    Ignore,
    LeadDraft,
    Outcome,
    Quarantine,
    Vehicle,
)

__all__ = ["Contact", "Ignore", "LeadDraft", "Outcome", "Quarantine", "Vehicle"]
