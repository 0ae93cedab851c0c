"""pulsetrain fault tolerance: heartbeats from ranks to a per-node monitor that finds hung ranks.

Three parts: ``ft.client`` (what runs in a rank), ``ft.monitor`` (what runs beside the ranks, in the
launcher), ``ft.shared`` (the config, the wire and the contracts both sides agree on). Importable
without Hydra, ``launcher`` or ``train``, and without importing torch.
"""

from ft.client.collectives import all_reduce_max, process_group_active
from ft.client.monitor_client import RankMonitorClient
from ft.client.preemption import PreemptionGuard, stop_signals_from_env
from ft.monitor.events import RankEvent
from ft.monitor.rank_monitor import RankMonitor
from ft.shared import contracts, final_metrics
from ft.shared.config import FaultToleranceConfig, FaultToleranceConfigError, register_configs
from ft.shared.contracts import (
    ENDPOINT_ENV,
    ExitCode,
    MetricEvent,
    Section,
    local_rank_from_env,
    rank_from_env,
    world_size_from_env,
)
from ft.shared.devices import device_fit_problem, visible_gpus
from ft.shared.errors import RankMonitorClientError, RankMonitorError, RankMonitorStateError
from ft.shared.files import fsync_dir, json_safe, write_json_atomic
from ft.shared.final_metrics import MetricNotFoundError
from ft.shared.processes import set_parent_death_signal
from ft.shared.timeouts import HeartbeatTimeouts
from ft.shared.timeouts import from_state_dict as timeouts_from_state_dict

__all__ = [
    "ENDPOINT_ENV",
    "ExitCode",
    "FaultToleranceConfig",
    "FaultToleranceConfigError",
    "HeartbeatTimeouts",
    "MetricEvent",
    "MetricNotFoundError",
    "PreemptionGuard",
    "RankEvent",
    "RankMonitor",
    "RankMonitorClient",
    "RankMonitorClientError",
    "RankMonitorError",
    "RankMonitorStateError",
    "Section",
    "all_reduce_max",
    "contracts",
    "device_fit_problem",
    "final_metrics",
    "fsync_dir",
    "json_safe",
    "local_rank_from_env",
    "process_group_active",
    "rank_from_env",
    "register_configs",
    "set_parent_death_signal",
    "stop_signals_from_env",
    "timeouts_from_state_dict",
    "visible_gpus",
    "world_size_from_env",
    "write_json_atomic",
]
