"""What every resource of /api/v1/ shares: bearer-token authentication with scopes, the
owner's permissions and a rate limit (auth), errors as RFC 9457 problem details (problems),
and cursor pagination (pages). The NinjaAPI itself is put together in config.api."""
