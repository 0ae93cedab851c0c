"""What training reports: metric sinks, TensorBoard, the console and progress, rank-aware logging, the step log."""
