"""Webhook rules, by subject: ``operations`` (create, update, rotate the secret, delete), ``receiving`` (verifying
and storing inbound deliveries) and ``processing`` (turning a stored delivery into a flow run)."""
