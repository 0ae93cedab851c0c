"""Worker processes: elastic process contexts, the fork server and its zygote, and what runs inside a forked worker."""
