complete -c evacuate -l state -d 'The journal and the brakes\' history (locked: one run at a time). Needed with --execute' -r -F
complete -c evacuate -l probe -d 'probe-host flags for the fresh verdict (--verdict is added; the host must come out dead), e.g. \'--hosts computes.toml --openstack --state verdict.json\'. Needed with --execute' -r
complete -c evacuate -l service-down-time -d 'A nova-compute with no report for this long counts as down' -r
complete -c evacuate -l fence -d 'The command that powers the host off ({host} is replaced; no shell)' -r
complete -c evacuate -l fence-status -d 'The command that reads the host\'s power state back ({host} is replaced)' -r
complete -c evacuate -l fence-off -d 'What --fence-status must print for power off (a regex)' -r
complete -c evacuate -l fence-timeout -d 'How long each fence command may run' -r
complete -c evacuate -l max-hosts -d 'At most N hosts begun per --window' -r
complete -c evacuate -l max-hosts-per-zone -d 'At most N hosts of one availability zone begun per --window (a zone lost at once is more likely the network than its hosts)' -r
complete -c evacuate -l max-hosts-per-aggregate -d 'At most N hosts of one host aggregate (a rack, a power feed) begun per --window' -r
complete -c evacuate -l window -d 'The window --max-hosts counts in' -r
complete -c evacuate -l cooldown -d 'A host evacuated less than this long ago is not evacuated again' -r
complete -c evacuate -l max-down-percent -d 'Refuse when more than this share of all nova-compute services is down at once, % (a partition looks like many dead hosts)' -r
complete -c evacuate -l tagged -d 'Only servers tagged with this key (KEY or KEY=VALUE, e.g. HA_Enabled=True or evacuable=true), looked for in --tag-sources' -r
complete -c evacuate -l tag-sources -d 'Where --tagged looks, most specific first; the first that has the key decides (a server\'s metadata can opt out what its image opts in)' -r -f -a "metadata\t'The server\'s own metadata (masakari\'s way)'
flavor\t'Its flavor\'s extra specs'
image\t'Its image\'s properties (Glance)'"
complete -c evacuate -l error-instances -d 'Instances in ERROR: evacuate (Nova rebuilds them) or skip' -r -f -a "evacuate\t''
skip\t''"
complete -c evacuate -l target-host -d 'Send them to this host (an exact, up nova-compute) instead of the scheduler\'s choice' -r
complete -c evacuate -l reserved -d 'A reserved host (repeatable): a nova-compute kept disabled for failures, enabled when this evacuation first sends it an instance' -r
complete -c evacuate -l recovery -d 'Where instances go: auto (the scheduler), reserved-host (only --reserved), auto-priority (the scheduler, then a reserved host for a failed one), rh-priority (a reserved host, then the scheduler) [default: reserved-host with --reserved, else auto]' -r -f -a "auto\t'The scheduler places them'
reserved-host\t'Only the reserved hosts'
auto-priority\t'The scheduler, then a reserved host for one that failed'
rh-priority\t'A reserved host, then the scheduler for one that failed'"
complete -c evacuate -l priority-key -d 'Move instances group by group by this integer metadata key, the highest first (none: group 0)' -r
complete -c evacuate -l concurrency -d 'Evacuations in flight at once' -r
complete -c evacuate -l stagger -d 'Time between two submissions' -r
complete -c evacuate -l instance-timeout -d 'How long one instance may take to arrive' -r
complete -c evacuate -l retries -d 'Evacuate calls per instance before it is failed' -r
complete -c evacuate -l reenable -d 'Unset force-down and enable HOST, once nothing of it is in flight and its nova-compute reports again' -r
complete -c evacuate -l os-cloud -d 'The cloud in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/; secure.yaml merged) [default: OS_CLOUD, else the OS_* variables]' -r
complete -c evacuate -l os-interface -d 'Endpoint interface: public, internal or admin [default: the cloud\'s, else public]' -r
complete -c evacuate -l os-region -d 'Region for the catalog [default: the cloud\'s, or OS_REGION_NAME]' -r
complete -c evacuate -l os-endpoint-override -d 'Use this URL for a service type instead of the catalog\'s: TYPE=URL, e.g. compute=https://nova.internal:8774/v2.1 (repeatable)' -r
complete -c evacuate -s t -l timeout -d 'Deadline for the whole run: a number of seconds or a duration (500ms, 1m). Work not finished by then is reported in the --timeout-state [default: 10 s; watch-procs with --config: 60 s]' -r
complete -c evacuate -l timeout-state -d 'State reported for work cut off by the deadline' -r
complete -c evacuate -l label -d 'Add a label to every record (repeatable), e.g. --label az=zone-a' -r
complete -c evacuate -l format -d 'Output format [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t'One JSON record per line (the default in a pipe)'
nagios\t'Nagios plugin output: status line, long output, performance data'
nagios-line\t'The Nagios status line and its perfdata only, no long output: for Sensu Go\'s nagios_perfdata, which reads every word after the first | of the whole output as a metric'
table\t'A table for people (the default on a terminal)'
csv\t'CSV with a header row'
prometheus\t'Prometheus text exposition (for node_exporter\'s textfile collector)'"
complete -c evacuate -l output -d 'Write the output to FILE atomically (temporary file + rename) instead of stdout; rewritten whole each round, fit for node_exporter\'s textfile collector' -r -F
complete -c evacuate -l every -d 'Repeat the run every DURATION and keep streaming records (default: run once)' -r
complete -c evacuate -l count -d 'With --every: stop after N rounds' -r
complete -c evacuate -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c evacuate -l execute -d 'Act: fence, force down, evacuate, verify. Without it, print the plan and change nothing'
complete -c evacuate -l no-fence -d 'Evacuate without fencing (its VMs may run twice and corrupt their disks)'
complete -c evacuate -l i-understand-unfenced -d 'Confirms --no-fence'
complete -c evacuate -l stop-evacuated -d 'Evacuate at microversion 2.95, so instances arrive stopped (checked before they are started again); a Nova without 2.95 keeps their power state, and the record says so'
complete -c evacuate -l no-token-cache -d 'Do not cache the token (by default it is kept, readable only by this user, until shortly before it expires)'
complete -c evacuate -s v -l verbose -d 'Print each record\'s trace to stderr (-vv adds its details)'
complete -c evacuate -s h -l help -d 'Print help (see more with \'--help\')'
complete -c evacuate -s V -l version -d 'Print version'
