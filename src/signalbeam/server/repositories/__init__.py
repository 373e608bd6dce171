"""Repositories: the only code that touches the database session.

Every repository except `tenants` is bound to one tenant when it is built and adds
`tenant_id = :tenant` to every query it runs, so no caller can cross tenants by mistake.
"""
