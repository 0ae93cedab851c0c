"""pulsetrain fault tolerance: heartbeats from ranks to a per-node monitor that finds hung ranks.

Importable without Hydra, ``launcher`` or ``train``.
"""

from ft.config import FaultToleranceConfig, FaultToleranceConfigError, register_configs

__all__ = ["FaultToleranceConfig", "FaultToleranceConfigError", "register_configs"]
