"""Model adapters (one module per family). Only this package imports model libraries."""

from timetic.adapters.base import (
    QUANTILE_LEVELS,
    Adapter,
    available_adapters,
    get_adapter,
    load_model,
)

__all__ = ["QUANTILE_LEVELS", "Adapter", "available_adapters", "get_adapter", "load_model"]
