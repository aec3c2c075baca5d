"""harvest: getting programs from the outside world: importers for dumps and folders, a polite
fetcher, the crawl frontier and raw documents, and one small module per crawl source."""
