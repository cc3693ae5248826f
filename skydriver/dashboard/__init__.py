"""The web dashboard, served by SkyDriver itself (README "Web dashboard"): sessions and sign-in
(`sessions`, `signin`), what a scan's summary shows (`summary`, `listing`), the skymap's levels read from the
products code without importing it (`levels`), and the pages' templates and static assets (HTML, CSS, ES
modules; no build step, no CDN). The handlers are in `skydriver.rest.dashboard` and `.summaries`."""
