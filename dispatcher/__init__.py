"""The producers' API: validate, commit to PostgreSQL, then publish to Redis."""
