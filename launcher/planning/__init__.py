"""Planning: from the command line to job plans (composed Hydra config, fault-tolerance settings, run dirs, sweep points)."""
