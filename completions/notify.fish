complete -c notify -l config -d 'Rules, sinks and routes (TOML; see the man page and examples/notify/)' -r -F
complete -c notify -l state -d 'Alarm states and delivery counters (locked, written atomically). Without it nothing survives the process: use it for anything but a one-off' -r -F
complete -c notify -l spool -d 'Spool directory [default: STATE.spool next to --state; in memory without --state]' -r -F
complete -c notify -l history -d 'Transition history, JSON lines, append-only [default: STATE.history.jsonl]' -r -F
complete -c notify -l key -d 'What an alarm is per: check, name, target, host or labels.NAME (repeatable) [default: check and name]' -r
complete -c notify -l fire-after -d 'Fire after N non-ok records in a row' -r
complete -c notify -l m-of-n -d 'Fire when M of the last N records are non-ok (CloudWatch\'s datapoints to alarm)' -r
complete -c notify -l resolve-after -d 'Resolve after K ok records in a row' -r
complete -c notify -l repeat-every -d 'Remind while still failing, this often' -r
complete -c notify -l stale-after -d 'A key with no record for this long goes to insufficient data (and alerts)' -r
complete -c notify -l webhook -d 'POST Alertmanager-style JSON to URL (repeatable)' -r
complete -c notify -l slack -d 'Slack incoming webhook URL (a secret: prefer the environment)' -r
complete -c notify -l teams -d 'Microsoft Teams Workflows webhook URL (a secret: prefer the environment)' -r
complete -c notify -l pagerduty -d 'PagerDuty Events v2 routing key (a secret: prefer the environment)' -r
complete -c notify -l pagerduty-url -d 'PagerDuty Events API URL' -r
complete -c notify -l command -d 'Run CMD (through /bin/sh) with the alert as JSON on its stdin (repeatable)' -r
complete -c notify -l email -d 'Mail alerts to ADDR (repeatable; needs --smtp and --smtp-from)' -r
complete -c notify -l smtp -d 'SMTP server HOST[:PORT]' -r
complete -c notify -l smtp-from -d 'Sender address' -r
complete -c notify -l smtp-security -d 'starttls, tls or none' -r
complete -c notify -l smtp-ca-file -d 'Trust these CA certificates (PEM) for the SMTP server\'s TLS instead of the public roots' -r
complete -c notify -l smtp-user -d 'SMTP AUTH user; the password is read from SKYPROBE_SMTP_PASSWORD' -r
complete -c notify -l masakari-url -d 'Masakari API URL instead of the catalog\'s instance-ha endpoint' -r
complete -c notify -l os-cloud -d 'The cloud in clouds.yaml for Masakari [default: OS_CLOUD, else the OS_* variables]' -r
complete -c notify -l sink-timeout -d 'Give each delivery attempt this long' -r
complete -c notify -l retry-base -d 'First wait before a retry (doubling each time)' -r
complete -c notify -l retry-max -d 'Longest wait between retries' -r
complete -c notify -l give-up-after -d 'Drop an alert a sink still has not taken this long after it was spooled' -r
complete -c notify -s t -l timeout -d 'Deadline for the whole run: a number of seconds or a duration (500ms, 1m). Work not finished by then is reported in the --timeout-state [default: 10 s; watch-procs with --config: 60 s]' -r
complete -c notify -l timeout-state -d 'State reported for work cut off by the deadline' -r
complete -c notify -l label -d 'Add a label to every record (repeatable), e.g. --label az=zone-a' -r
complete -c notify -l format -d 'Output format [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t'One JSON record per line (the default in a pipe)'
nagios\t'Nagios plugin output: status line, long output, performance data'
table\t'A table for people (the default on a terminal)'
csv\t'CSV with a header row'
prometheus\t'Prometheus text exposition (for node_exporter\'s textfile collector)'"
complete -c notify -l output -d 'Write the output to FILE atomically (temporary file + rename) instead of stdout; rewritten whole each round, fit for node_exporter\'s textfile collector' -r -F
complete -c notify -l every -d 'Repeat the run every DURATION and keep streaming records (default: run once)' -r
complete -c notify -l count -d 'With --every: stop after N rounds' -r
complete -c notify -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c notify -l no-flap-detection -d 'Turn flap detection off (Nagios\' percent state change, 21 results, 5%/20%)'
complete -c notify -l masakari -d 'Send Masakari notifications (PROCESS, VM, COMPUTE_HOST) to the cloud\'s instance-ha API'
complete -c notify -l retry-only -d 'Deliver what is in the spool and exit; read nothing from stdin'
complete -c notify -l dry-run -d 'Print what would be sent (one record per alert and sink, payload in details); send nothing, save nothing'
complete -c notify -s v -l verbose -d 'Print each record\'s trace to stderr (-vv adds its details)'
complete -c notify -s h -l help -d 'Print help (see more with \'--help\')'
complete -c notify -s V -l version -d 'Print version'
