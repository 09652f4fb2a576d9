"""Service-task handlers that run as jobs, in-process or on Celery workers, one module per topic
family. The job machinery they plug into is described in ../shared/DESIGN.md (Service work)."""
