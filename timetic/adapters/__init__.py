"""Model adapters (one module per family). Only this package imports model libraries, and a
family's module is imported only when one of its adapters is asked for (:func:`get_adapter`)."""

from timetic.adapters.base import (
    FAMILIES,
    QUANTILE_LEVELS,
    Adapter,
    adapter_sample_paths_kwarg,
    adapter_sizes,
    available_adapters,
    get_adapter,
    load_model,
)

__all__ = ["FAMILIES", "QUANTILE_LEVELS", "Adapter", "adapter_sample_paths_kwarg", "adapter_sizes", "available_adapters", "get_adapter", "load_model"]
