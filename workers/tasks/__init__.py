"""Everything a worker process loads, found by `autodiscover_tasks` in `workers/celery_app.py`.

Each task module registers its task with `shared_task`; the reconciler connects
itself to the worker's start and stop signals. Add a new task module here.
"""

from workers import reconciler  # noqa: F401
from workers.tasks import chunks, live, system, transcode, webhooks  # noqa: F401
