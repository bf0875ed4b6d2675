"""Everything Label Studio: interface config, tasks, client, server, credentials, exports,
gold derivation and annotator agreement."""
