"""Billing: a month of the usage ledger (contract 3) priced and allocated to the cent.

Pure: takes the usage document, the catalog, the Kommunen registry and the billing settings,
returns typed results (`model`); reading the ledger and writing reports is done above it.
"""
