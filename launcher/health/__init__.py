"""Health checks a node passes before each attempt joins the rendezvous; a failure means exit 69 (run elsewhere)."""

from launcher.health.gate import HealthChecksUnusable, NodeHealth, NodeUnhealthy, for_plan

__all__ = ["HealthChecksUnusable", "NodeHealth", "NodeUnhealthy", "for_plan"]
