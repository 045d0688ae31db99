"""revml: missing-data imputation by reverse training through a frozen autoencoder."""

from . import masks, metrics
from .imputer import ImputationDetails, ReverseImputer
from .model import MLPAutoencoder, default_architecture
from .reference import ReverseConfig

__all__ = [
    "ImputationDetails",
    "MLPAutoencoder",
    "ReverseConfig",
    "ReverseImputer",
    "default_architecture",
    "masks",
    "metrics",
]
__version__ = "0.1.0"
