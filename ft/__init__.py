"""pulsetrain fault tolerance: heartbeats from ranks to a per-node monitor that finds hung ranks.

Importable without Hydra, ``launcher`` or ``train``.
"""

from ft import exit_codes, final_metrics
from ft.client import RankMonitorClient
from ft.config import FaultToleranceConfig, FaultToleranceConfigError, register_configs
from ft.distributed import all_reduce_max, process_group_active
from ft.errors import RankMonitorClientError, RankMonitorError, RankMonitorStateError
from ft.events import RankEvent
from ft.final_metrics import MetricNotFoundError
from ft.monitor import RankMonitor
from ft.preemption import PreemptionGuard, stop_signals_from_env
from ft.timeouts import HeartbeatTimeouts
from ft.timeouts import from_state_dict as timeouts_from_state_dict
from ft.wire import ENDPOINT_ENV

__all__ = [
    "ENDPOINT_ENV",
    "FaultToleranceConfig",
    "FaultToleranceConfigError",
    "HeartbeatTimeouts",
    "MetricNotFoundError",
    "PreemptionGuard",
    "RankEvent",
    "RankMonitor",
    "RankMonitorClient",
    "RankMonitorClientError",
    "RankMonitorError",
    "RankMonitorStateError",
    "all_reduce_max",
    "exit_codes",
    "final_metrics",
    "process_group_active",
    "register_configs",
    "stop_signals_from_env",
    "timeouts_from_state_dict",
]
