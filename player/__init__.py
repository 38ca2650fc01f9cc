"""The embeddable player and the dashboard: static files served by the API (see `player.site`).

`web/` holds our own HTML, JS and CSS (no build step); `vendor/` the pinned
hls.js, dash.js and Shaka Player files, checked against `vendor.lock.json`.
"""
