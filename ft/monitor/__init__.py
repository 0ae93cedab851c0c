"""The node side: ``RankMonitor`` (run by the launcher), deadlines, hang events and the hung ranks' stacks."""
