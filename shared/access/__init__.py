"""Who may call the services: dispatch's people directory publishes its people and their API
tokens (``vo.access``), every service applies them to its own ``access_person`` and
``api_token`` tables (``shared.access.consumer``), and each API process's token cache is
invalidated the moment they change (``shared.access.watch``). See docs/operations.md, "People
and tokens"."""
