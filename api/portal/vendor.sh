#!/bin/sh
# Refreshes the vendored front-end files in static/ from the npm registry:
# htmx (2.0.x: 4.x has breaking changes) and uPlot. Run by `make
# portal-assets` or `go generate ./api/portal`; commit the result. The
# versions are pinned here and nowhere else; nothing is fetched at build or
# run time.
set -eu
HTMX=2.0.11
UPLOT=1.6.32
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "htmx.org@$HTMX" "uplot@$UPLOT"
cp node_modules/htmx.org/dist/htmx.min.js "$here/static/htmx.min.js"
cp node_modules/htmx.org/LICENSE "$here/static/htmx.LICENSE.txt"
cp node_modules/uplot/dist/uPlot.iife.min.js "$here/static/uPlot.iife.min.js"
cp node_modules/uplot/dist/uPlot.min.css "$here/static/uPlot.min.css"
cp node_modules/uplot/LICENSE "$here/static/uPlot.LICENSE.txt"
printf 'htmx.org %s\nuplot %s\n' "$HTMX" "$UPLOT" >"$here/static/VERSIONS.txt"
echo "vendored htmx $HTMX and uPlot $UPLOT into $here/static"
