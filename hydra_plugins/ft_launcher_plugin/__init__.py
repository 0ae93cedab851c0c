"""``hydra/launcher=ft``: every sweep point of a Hydra app runs as a fault-tolerant job under ft_launcher."""
