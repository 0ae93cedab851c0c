"""The rank side: ``RankMonitorClient`` (heartbeats and sections API), calibration, the agreed stop."""
