"""A Hydra worker: its config has a fault_tolerance group; it records what cfg.fault_tolerance says."""

import os
import sys
from pathlib import Path

import behaviour
import hydra
import hydra.core.hydra_config
from omegaconf import OmegaConf

from ft import register_configs

register_configs()


@hydra.main(version_base="1.3", config_path="conf", config_name="worker")
def main(cfg) -> None:
    options = {k: str(v) for k, v in cfg.fault.items()}
    run_dir = Path(os.environ["PULSETRAIN_RUN_DIR"])
    if Path(hydra.core.hydra_config.HydraConfig.get().runtime.output_dir) != run_dir:
        sys.exit(f"hydra.run.dir {hydra.core.hydra_config.HydraConfig.get().runtime.output_dir} != {run_dir}")
    ft_seen = OmegaConf.to_container(cfg.fault_tolerance, resolve=True)
    sys.exit(behaviour.run(options, run_dir / "ranks", ft_seen))


if __name__ == "__main__":
    main()
