"""Housekeeping tasks."""

from __future__ import annotations

import os
import socket

from celery import shared_task

from core.queues import TASK_PING


@shared_task(name=TASK_PING, ignore_result=False)
def ping(payload: str = "") -> dict:
    """Round trip check: proves a worker consumed from the broker and answered."""
    return {"pong": payload, "host": socket.gethostname(), "pid": os.getpid()}
