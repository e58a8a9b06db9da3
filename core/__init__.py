"""The ground floor: money, the money column, keyset paging and bulk inserts.

Every app may import core; core imports no app (checked by .importlinter). Audit and roles are
the other ground-floor part: the staff app, which imports only core.
"""
