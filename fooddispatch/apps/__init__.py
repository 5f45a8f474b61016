"""The apps people hold (customer tracking page, restaurant tablet, courier web app) and the reads they
need that join several packages. Wired by `fooddispatch/components/apps.py`."""
