"""The crm API's columnar copy of ``sla_fact`` (PostgreSQL): what the summary reads at 1 M facts.

An exact percentile needs every value of its group: PostgreSQL sorts about 4 M values a second
here, so a year of 1 M leads (16 duration columns) cannot be summarised in 0.5 s from the table.
NumPy does the same work 10-20x faster on arrays held in memory, so each API process keeps the
facts as arrays (about 150 bytes a lead: 170 MB at 1 M) and follows the table's changes:

- every row has a number for life (``fact_no``, its slot in the arrays) and the transaction that
  last wrote it (``changed_xid``; migration ``sla fact changes``);
- a refresh, before each summary, opens a REPEATABLE READ transaction, notes its snapshot's
  ``xmin`` and reads, by index, the rows written by transactions from the previous ``xmin`` on.
  Every transaction that committed after the previous snapshot has an id at least that ``xmin``,
  so nothing is missed; a row read twice is written twice (idempotent);
- the rows come as a binary ``COPY`` of fixed-width integers (dimensions as codes of this copy's
  dictionaries), parsed by NumPy without a Python object per value, so the first load of 1 M facts
  takes seconds, not minutes;
- facts are never deleted by the services; a DELETE or TRUNCATE (by hand, by tests) moves
  ``sla_fact_generation``, and the copy reloads.

Durations are kept as the whole minutes the summary reads (-1: none). Other values missing in the
table are sentinels: ``NULL_INT`` for a price, ``NO_INSTANT`` for an instant that is absent
(``-infinity``), ``NEVER`` for a deadline that is absent (``infinity``).

``columns.py`` holds the arrays, ``repository.py`` the SQL (the layout of the COPY, the snapshot,
the changed rows), ``copy.py`` the process's copy that brings them together.
"""
