"""harvest: getting programs from the outside world (dump importers now, polite crawlers next)."""
