"""The ``hydra/launcher=ft`` options (ConfigStore group ``hydra/launcher``, name ``ft``).

Each field becomes an ``ft_launcher`` flag of every point's job; ``hydra.launcher.<field>=...``
sets it from the command line.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional  # noqa: UP035  (OmegaConf reads these annotations)

from hydra.core.config_store import ConfigStore


@dataclass
class FtLauncherConf:
    _target_: str = "hydra_plugins.ft_launcher_plugin.ft_launcher.FtLauncher"
    # Ranks per point (ft_launcher --nproc-per-node): a number, or auto/cpu/gpu as torchrun takes it.
    nproc_per_node: str = "1"
    # Restarts per point after a hang or crash (--max-restarts).
    max_restarts: int = 0
    # Points run at the same time; each standalone point gets a rendezvous on a free port of its own.
    n_jobs: int = 1
    # --standalone: a one-node job with its own rendezvous. False: the rdzv_* and nnodes settings below.
    standalone: bool = True
    nnodes: str = "1"
    rdzv_backend: str = "c10d"
    rdzv_endpoint: str = ""
    # Not standalone: each point joins the rendezvous <rdzv_id>-<point number>.
    rdzv_id: Optional[str] = None  # noqa: UP045
    # --ft-cfg-path, and --ft-<key>=<value> for each entry (e.g. ft: {rank_heartbeat_timeout: 30}).
    ft_cfg_path: Optional[str] = None  # noqa: UP045
    ft: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006
    # Other ft_launcher flags, as typed (e.g. ["--term-timeout=60", "--no-fork-server"]).
    extra_args: List[str] = field(default_factory=list)  # noqa: UP006
    # The script each point runs (null: the task function's own script, or its module with -m).
    script: Optional[str] = None  # noqa: UP045
    # The config key naming the metric a point returns to the sweeper (read from final_metrics.json).
    metric_key: str = "trainer.optimized_metric"


ConfigStore.instance().store(group="hydra/launcher", name="ft", node=FtLauncherConf, provider="pulsetrain")
