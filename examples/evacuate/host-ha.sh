#!/bin/sh
# Compute host HA from cron (every minute), as root on a control node:
#   * * * * * root /usr/local/sbin/host-ha.sh >> /var/log/skyprobe/host-ha.jsonl 2>&1
# probe-host judges every compute; the ones it calls dead go to evacuate,
# which asks probe-host again itself (the same flags and samples file: that
# run counts as one more sample), checks Nova, its brakes and the fence,
# and only then acts. Its journal finishes a run that was cut off.
set -eu
state=/var/lib/skyprobe
probe="--hosts /etc/skyprobe/computes.toml --openstack --hypervisors --state $state/verdict.json"
# The BMC's password in a file readable by root only (never on a command line).
ipmi="ipmitool -I lanplus -H {host}-ipmi.mgmt -U fence -f /etc/skyprobe/ipmi.pass"

# shellcheck disable=SC2086 # $probe is a list of flags
/usr/local/bin/probe-host --verdict $probe --format jsonl \
  | /usr/local/bin/evacuate --execute --state "$state/evacuate.json" --probe "$probe" \
      --fence "$ipmi chassis power off" --fence-status "$ipmi chassis power status" \
      --max-hosts 1 --window 1h --cooldown 30m --max-down-percent 34 \
      --tagged HA_Enabled=True --concurrency 4 --format jsonl
