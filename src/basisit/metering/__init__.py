"""Metering: billable time and measured usage per instance and UTC hour (contract 3's input).

Pure computations and one Prometheus client; no request database. `basisit.app.ledger` reads
the audit log, turns it into the plain records of `intervals`, calls `measure` and writes the
rows.

- `intervals`: billable time from request transitions;
- `integrate`: the time-weighted integral of a gauge with the hold and boundary rules;
- `prometheus`: the query API client (aggregates per hour, raw samples where needed);
- `measure`: hourly quantities per instance and unit, with the gap rule.

The base units and their conversion into the catalog's are `basisit.units`, and UTC hours,
Berlin months and the ISO 8601 input of `basisit ledger import` are `basisit.hours` (billing
and the ledger's month sums use both too).
"""
