complete -c watch-domains -l connect -d 'libvirt connection URI; opened read-only, except with --heartbeat (libvirt allows guest-agent commands only on read-write connections)' -r
complete -c watch-domains -l name -d 'Only domains whose name or UUID matches REGEX (repeatable: any of them)' -r
complete -c watch-domains -l exclude -d 'Leave out domains whose name or UUID matches REGEX (repeatable)' -r
complete -c watch-domains -l expect -d 'Selected domains must be in this state (repeatable: any of them); anything else is critical' -r
complete -c watch-domains -l state-status -d 'Judge a state (or a state with one reason) as STATUS, e.g. paused:user=ok, shutoff=warning' -r
complete -c watch-domains -l state -d 'Keep the last states and agent heartbeats here (locked, written atomically): changes since the last run are reported as events' -r -F
complete -c watch-domains -l follow -d 'Stay connected this long and report domain events as they arrive (lifecycle, reboot, watchdog, I/O error, control error); reconnect and report what changed in the gap if the connection drops' -r
complete -c watch-domains -l keepalive -d 'With --follow: keepalive interval; a daemon silent for about four of these is taken as gone' -r
complete -c watch-domains -l agent-timeout -d 'Wait this long for each guest agent (libvirt counts whole seconds)' -r
complete -c watch-domains -l agent-every -d 'With --follow: ping the agents this often (masakari\'s guest_monitoring_interval)' -r
complete -c watch-domains -l agent-failures -d 'Missed pings in a row before an agent is critical (counted across runs with --state)' -r
complete -c watch-domains -s t -l timeout -d 'Deadline for the whole run: a number of seconds or a duration (500ms, 1m). Work not finished by then is reported in the --timeout-state [default: 10 s; watch-procs with --config: 60 s]' -r
complete -c watch-domains -l timeout-state -d 'State reported for work cut off by the deadline' -r
complete -c watch-domains -l label -d 'Add a label to every record (repeatable), e.g. --label az=zone-a' -r
complete -c watch-domains -l format -d 'Output format [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t'One JSON record per line (the default in a pipe)'
nagios\t'Nagios plugin output: status line, long output, performance data'
nagios-line\t'The Nagios status line and its perfdata only, no long output: for Sensu Go\'s nagios_perfdata, which reads every word after the first | of the whole output as a metric'
table\t'A table for people (the default on a terminal)'
csv\t'CSV with a header row'
prometheus\t'Prometheus text exposition (for node_exporter\'s textfile collector)'"
complete -c watch-domains -l output -d 'Write the output to FILE atomically (temporary file + rename) instead of stdout; rewritten whole each round, fit for node_exporter\'s textfile collector' -r -F
complete -c watch-domains -l every -d 'Repeat the run every DURATION and keep streaming records (default: run once)' -r
complete -c watch-domains -l count -d 'With --every: stop after N rounds' -r
complete -c watch-domains -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c watch-domains -l heartbeat -d 'Ping the QEMU guest agent of each running domain that has an agent channel'
complete -c watch-domains -s v -l verbose -d 'Print each record\'s trace to stderr (-vv adds its details)'
complete -c watch-domains -s h -l help -d 'Print help (see more with \'--help\')'
complete -c watch-domains -s V -l version -d 'Print version'
