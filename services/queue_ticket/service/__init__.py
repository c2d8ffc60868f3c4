"""Rules of the queue service, by domain (never commits; all SQL in `repository`)."""
