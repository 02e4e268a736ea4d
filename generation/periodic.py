"""Generation's periodic job, sent by the scheduler (`manage.py crontab`, dramatiq-crontab) and
registered when the app is ready. On the default queue, so a long generation queue never
holds it back."""

import dramatiq
from dramatiq_crontab import interval

from generation import services


@interval(seconds=30)
@dramatiq.actor(max_retries=0)
def requeue_lost_assets() -> None:
    """Send again the assets whose message was lost (see services.assets_requeue_lost), and
    dispatch waiting bulk assets in case no finishing message did (a crash, a broker outage)."""
    services.assets_requeue_lost()
    services.assets_dispatch()
