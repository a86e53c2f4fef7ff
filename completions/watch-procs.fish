complete -c watch-procs -l config -d 'Process list to supervise: skyprobe TOML, or masakari\'s process_list.yaml (.yaml/.yml). With --every, it is read again when it changes (a broken edit keeps the last good one and is reported UNKNOWN)' -r -F
complete -c watch-procs -l state -d 'Keep restart counters and back-off here between runs (locked, written atomically)' -r -F
complete -c watch-procs -l restart-retries -d 'Restart attempts per run for entries that do not say (masakari restart_retries)' -r
complete -c watch-procs -l restart-interval -d 'Pause between attempts for entries that do not say (masakari restart_interval)' -r
complete -c watch-procs -l command-timeout -d 'Kill a pre/restart/post command that runs longer than this' -r
complete -c watch-procs -l verify-delay -d 'After a restart, wait this long and check the process is still running' -r
complete -c watch-procs -l backoff -d 'After a run whose repair failed, wait this long before trying again (doubling per failed run)' -r
complete -c watch-procs -l backoff-max -d 'The longest back-off' -r
complete -c watch-procs -s C -l command -d 'Count processes with exactly this command name (as pgrep -x)' -r
complete -c watch-procs -s a -l argument-array -d 'Count processes whose command line contains ARGS' -r
complete -c watch-procs -l ereg-argument-array -d 'Count processes whose command line matches REGEX' -r
complete -c watch-procs -s u -l user -d 'Count processes owned by USER (name or uid)' -r
complete -c watch-procs -s s -l state-flags -d 'Count processes in any of these states, e.g. Z (zombie), D, R, S, T' -r
complete -c watch-procs -s p -l ppid -d 'Count children of this parent pid' -r
complete -c watch-procs -s m -l metric -d 'What -w/-c judge: PROCS (count), or per process VSZ/RSS (KiB), CPU (%), ELAPSED (s)' -r -f -a "PROCS\t'Number of matching processes'
VSZ\t'Virtual size of each process, KiB (as ps VSZ)'
RSS\t'Resident size of each process, KiB (as ps RSS)'
CPU\t'CPU percent of each process over its life (as ps %CPU)'
ELAPSED\t'Seconds since each process started'"
complete -c watch-procs -s w -l warning -d 'Warning range (Nagios syntax)' -r
complete -c watch-procs -s c -l critical -d 'Critical range (Nagios syntax)' -r
complete -c watch-procs -s X -l exclude-process -d 'Leave out processes with these command names (comma-separated)' -r
complete -c watch-procs -s t -l timeout -d 'Deadline for the whole run: a number of seconds or a duration (500ms, 1m). Work not finished by then is reported in the --timeout-state [default: 10 s; watch-procs with --config: 60 s]' -r
complete -c watch-procs -l timeout-state -d 'State reported for work cut off by the deadline' -r
complete -c watch-procs -l label -d 'Add a label to every record (repeatable), e.g. --label az=zone-a' -r
complete -c watch-procs -l format -d 'Output format [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t'One JSON record per line (the default in a pipe)'
nagios\t'Nagios plugin output: status line, long output, performance data'
nagios-line\t'The Nagios status line and its perfdata only, no long output: for Sensu Go\'s nagios_perfdata, which reads every word after the first | of the whole output as a metric'
table\t'A table for people (the default on a terminal)'
csv\t'CSV with a header row'
prometheus\t'Prometheus text exposition (for node_exporter\'s textfile collector)'"
complete -c watch-procs -l output -d 'Write the output to FILE atomically (temporary file + rename) instead of stdout; rewritten whole each round, fit for node_exporter\'s textfile collector' -r -F
complete -c watch-procs -l every -d 'Repeat the run every DURATION and keep streaming records (default: run once)' -r
complete -c watch-procs -l count -d 'With --every: stop after N rounds' -r
complete -c watch-procs -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c watch-procs -l dry-run -d 'Report what is down and what would run; run nothing'
complete -c watch-procs -s k -l no-kthreads -d 'Leave kernel threads out'
complete -c watch-procs -s v -l verbose -d 'Print each record\'s trace to stderr (-vv adds its details)'
complete -c watch-procs -s h -l help -d 'Print help (see more with \'--help\')'
complete -c watch-procs -s V -l version -d 'Print version'
