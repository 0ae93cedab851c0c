"""What the launcher tells people and leaves behind: logs and tables, hung ranks' stacks, ``ft_launches.jsonl``."""
