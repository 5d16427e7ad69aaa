"""The Director's jobs: status letters, the queue (RunJob → SetupJob → JobqAdd → jobq_server), job types."""
