"""One fault-tolerant job: rendezvous, rank monitor, the elastic agent, and how the job ended."""
