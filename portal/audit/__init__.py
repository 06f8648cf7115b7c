"""The audit log: append-only, one hash chain per tenant plus one for the platform (DESIGN section 6)."""
