"""The service catalog: typed models, loading and validation."""

from basisit.catalog.load import load_catalog, validate_catalog
from basisit.catalog.models import Catalog, Plan, Price, Service

__all__ = ["Catalog", "Plan", "Price", "Service", "load_catalog", "validate_catalog"]
