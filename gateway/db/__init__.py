"""The PostgreSQL system of record (`state.database`): migrations, the usage ledger,
admin-created keys, budgets' totals, experiment feedback and stored responses.

Importing this package imports nothing heavy; asyncpg loads with the modules that use it.
"""
