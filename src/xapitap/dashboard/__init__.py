"""The live dashboard: the store's read model as a web page and a small JSON API, served by
the addon on the proxy's own event loop (`xapi_dashboard`) or by `xapitap dashboard` over a
store with no proxy running.

- address.py: where it listens, and which destinations are it (the proxy refuses those);
- auth.py: the token, its cookie, the same-origin check for the one action;
- reads.py: what the API answers, read off the event loop;
- videos.py: per-video aggregates (views across the video, timelines), pure;
- server.py: the tornado application;
- static/: the page (no CDN, no network: everything ships here).
"""
