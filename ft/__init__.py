"""pulsetrain fault tolerance: heartbeats from ranks to a per-node monitor that finds hung ranks.

Importable without Hydra, ``launcher`` or ``train``.
"""

from ft.client import RankMonitorClient
from ft.config import FaultToleranceConfig, FaultToleranceConfigError, register_configs
from ft.errors import RankMonitorClientError, RankMonitorError, RankMonitorStateError
from ft.events import RankEvent
from ft.monitor import RankMonitor
from ft.preemption import PreemptionGuard
from ft.timeouts import HeartbeatTimeouts
from ft.wire import ENDPOINT_ENV

__all__ = [
    "ENDPOINT_ENV",
    "FaultToleranceConfig",
    "FaultToleranceConfigError",
    "HeartbeatTimeouts",
    "PreemptionGuard",
    "RankEvent",
    "RankMonitor",
    "RankMonitorClient",
    "RankMonitorClientError",
    "RankMonitorError",
    "RankMonitorStateError",
    "register_configs",
]
