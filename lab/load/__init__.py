"""Load testing ragd: the Locust scenarios (:mod:`lab.load.locustfile`, run inside Locust's own
virtualenv) and the bounded headless run that ``make load`` starts (:mod:`lab.load.run`)."""
