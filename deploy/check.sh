#!/usr/bin/env bash
# Checks the monitoring files that ship in deploy/: the Prometheus alerting
# rules (syntax, and their unit tests), and the Grafana dashboard (valid JSON,
# every query valid PromQL). Installs Debian's prometheus package for
# `promtool` when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
    echo "promtool missing: installing Debian's prometheus package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

promtool check rules deploy/prometheus/alerts.yml
promtool test rules deploy/prometheus/alerts_test.yml
python3 -m json.tool deploy/grafana/dashboard.json >/dev/null

# The dashboard's queries, as recording rules, so that promtool parses each.
queries="$(mktemp --suffix=.yml)"
trap 'rm -f "$queries"' EXIT
python3 - deploy/grafana/dashboard.json >"$queries" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
print("groups:\n  - name: dashboard-queries\n    rules:")
for panel in dashboard["panels"]:
    for target in panel.get("targets", []):
        expr = target["expr"].replace("$job", ".*")
        print(f"      - record: dashboard:panel{panel['id']}:{target['refId']}")
        print(f"        expr: {json.dumps(expr)}")
PY
promtool check rules "$queries" >/dev/null
echo "dashboard: $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["panels"]))' deploy/grafana/dashboard.json) panels, every query parses"
