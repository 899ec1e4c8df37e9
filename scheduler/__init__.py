"""The scheduler process: APScheduler running prombot's timed work, outside the web server."""
