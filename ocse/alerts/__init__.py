"""SLA breach and pipeline-health alerts: rules over the published marts, an outbox in the
warehouse that deduplicates, and delivery to webhooks and e-mail that loses nothing."""
