# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_notify_global_optspecs
    string join \n config= state= spool= history= key= fire-after= m-of-n= resolve-after= repeat-every= stale-after= no-flap-detection webhook= slack= teams= pagerduty= pagerduty-url= command= email= smtp= smtp-from= smtp-security= smtp-ca-file= smtp-user= masakari masakari-url= os-cloud= os-interface= os-region= os-endpoint-override= no-token-cache sink-timeout= retry-base= retry-max= give-up-after= retry-only dry-run t/timeout= timeout-state= v/verbose label= format= output= every= count= hostname= h/help V/version
end

function __fish_notify_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_notify_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_notify_using_subcommand
    set -l cmd (__fish_notify_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c notify -n "__fish_notify_needs_command" -l config -d 'Rules, sinks and routes (TOML; see the man page and examples/notify/)' -r -F
complete -c notify -n "__fish_notify_needs_command" -l state -d 'Alarm states and delivery counters (locked, written atomically). Without it nothing survives the process: use it for anything but a one-off' -r -F
complete -c notify -n "__fish_notify_needs_command" -l spool -d 'Spool directory [default: STATE.spool next to --state; in memory without --state]' -r -F
complete -c notify -n "__fish_notify_needs_command" -l history -d 'Transition history, JSON lines, append-only [default: STATE.history.jsonl]' -r -F
complete -c notify -n "__fish_notify_needs_command" -l key -d 'What an alarm is per: check, name, target, host or labels.NAME (repeatable) [default: check, host and name: the same check on two machines is two alarms; a record without a host leaves the host out]' -r
complete -c notify -n "__fish_notify_needs_command" -l fire-after -d 'Fire after N non-ok records in a row' -r
complete -c notify -n "__fish_notify_needs_command" -l m-of-n -d 'Fire when M of the last N records are non-ok (CloudWatch\'s datapoints to alarm)' -r
complete -c notify -n "__fish_notify_needs_command" -l resolve-after -d 'Resolve after K ok records in a row' -r
complete -c notify -n "__fish_notify_needs_command" -l repeat-every -d 'Remind while still failing, this often' -r
complete -c notify -n "__fish_notify_needs_command" -l stale-after -d 'A key with no record for this long goes to insufficient data (and alerts)' -r
complete -c notify -n "__fish_notify_needs_command" -l webhook -d 'POST Alertmanager-style JSON to URL (repeatable)' -r
complete -c notify -n "__fish_notify_needs_command" -l slack -d 'Slack incoming webhook URL (a secret: prefer the environment)' -r
complete -c notify -n "__fish_notify_needs_command" -l teams -d 'Microsoft Teams Workflows webhook URL (a secret: prefer the environment)' -r
complete -c notify -n "__fish_notify_needs_command" -l pagerduty -d 'PagerDuty Events v2 routing key (a secret: prefer the environment)' -r
complete -c notify -n "__fish_notify_needs_command" -l pagerduty-url -d 'PagerDuty Events API URL' -r
complete -c notify -n "__fish_notify_needs_command" -l command -d 'Run CMD (through /bin/sh) with the alert as JSON on its stdin (repeatable)' -r
complete -c notify -n "__fish_notify_needs_command" -l email -d 'Mail alerts to ADDR (repeatable; needs --smtp and --smtp-from)' -r
complete -c notify -n "__fish_notify_needs_command" -l smtp -d 'SMTP server HOST[:PORT]' -r
complete -c notify -n "__fish_notify_needs_command" -l smtp-from -d 'Sender address' -r
complete -c notify -n "__fish_notify_needs_command" -l smtp-security -d 'starttls, tls or none' -r
complete -c notify -n "__fish_notify_needs_command" -l smtp-ca-file -d 'Trust these CA certificates (PEM) for the SMTP server\'s TLS instead of the public roots' -r
complete -c notify -n "__fish_notify_needs_command" -l smtp-user -d 'SMTP AUTH user; the password is read from SKYPROBE_SMTP_PASSWORD' -r
complete -c notify -n "__fish_notify_needs_command" -l masakari-url -d 'Masakari API URL instead of the catalog\'s instance-ha endpoint' -r
complete -c notify -n "__fish_notify_needs_command" -l os-cloud -d 'The cloud in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/; secure.yaml merged) [default: OS_CLOUD, else the OS_* variables]' -r
complete -c notify -n "__fish_notify_needs_command" -l os-interface -d 'Endpoint interface: public, internal or admin [default: the cloud\'s, else public]' -r
complete -c notify -n "__fish_notify_needs_command" -l os-region -d 'Region for the catalog [default: the cloud\'s, or OS_REGION_NAME]' -r
complete -c notify -n "__fish_notify_needs_command" -l os-endpoint-override -d 'Use this URL for a service type instead of the catalog\'s: TYPE=URL, e.g. compute=https://nova.internal:8774/v2.1 (repeatable)' -r
complete -c notify -n "__fish_notify_needs_command" -l sink-timeout -d 'Give each delivery attempt this long' -r
complete -c notify -n "__fish_notify_needs_command" -l retry-base -d 'First wait before a retry (doubling each time)' -r
complete -c notify -n "__fish_notify_needs_command" -l retry-max -d 'Longest wait between retries' -r
complete -c notify -n "__fish_notify_needs_command" -l give-up-after -d 'Drop an alert a sink still has not taken this long after it was spooled' -r
complete -c notify -n "__fish_notify_needs_command" -s t -l timeout -d 'Deadline for the whole run: a number of seconds or a duration (500ms, 1m). Work not finished by then is reported in the --timeout-state [default: 10 s; watch-procs with --config: 60 s]' -r
complete -c notify -n "__fish_notify_needs_command" -l timeout-state -d 'State reported for work cut off by the deadline' -r
complete -c notify -n "__fish_notify_needs_command" -l label -d 'Add a label to every record (repeatable), e.g. --label az=zone-a' -r
complete -c notify -n "__fish_notify_needs_command" -l format -d 'Output format [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t'One JSON record per line (the default in a pipe)'
nagios\t'Nagios plugin output: status line, long output, performance data'
nagios-line\t'The Nagios status line and its perfdata only, no long output: for Sensu Go\'s nagios_perfdata, which reads every word after the first | of the whole output as a metric'
table\t'A table for people (the default on a terminal)'
csv\t'CSV with a header row'
prometheus\t'Prometheus text exposition (for node_exporter\'s textfile collector)'"
complete -c notify -n "__fish_notify_needs_command" -l output -d 'Write the output to FILE atomically (temporary file + rename) instead of stdout; rewritten whole each round, fit for node_exporter\'s textfile collector' -r -F
complete -c notify -n "__fish_notify_needs_command" -l every -d 'Repeat the run every DURATION and keep streaming records (default: run once)' -r
complete -c notify -n "__fish_notify_needs_command" -l count -d 'With --every: stop after N rounds' -r
complete -c notify -n "__fish_notify_needs_command" -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c notify -n "__fish_notify_needs_command" -l no-flap-detection -d 'Turn flap detection off (Nagios\' percent state change, 21 results, 5%/20%)'
complete -c notify -n "__fish_notify_needs_command" -l masakari -d 'Send Masakari notifications (PROCESS, VM, COMPUTE_HOST) to the cloud\'s instance-ha API'
complete -c notify -n "__fish_notify_needs_command" -l no-token-cache -d 'Do not cache the token (by default it is kept, readable only by this user, until shortly before it expires)'
complete -c notify -n "__fish_notify_needs_command" -l retry-only -d 'Deliver what is in the spool and exit; read nothing from stdin'
complete -c notify -n "__fish_notify_needs_command" -l dry-run -d 'Print what would be sent (one record per alert and sink, payload in details); send nothing, save nothing'
complete -c notify -n "__fish_notify_needs_command" -s v -l verbose -d 'Print each record\'s trace to stderr (-vv adds its details)'
complete -c notify -n "__fish_notify_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c notify -n "__fish_notify_needs_command" -s V -l version -d 'Print version'
complete -c notify -n "__fish_notify_needs_command" -f -a "history" -d '`notify history [KEY]`: the transitions, oldest first'
complete -c notify -n "__fish_notify_using_subcommand history" -l state -d 'notify\'s state file: the history is STATE.history.jsonl' -r -F
complete -c notify -n "__fish_notify_using_subcommand history" -l history -d 'The history file itself' -r -F
complete -c notify -n "__fish_notify_using_subcommand history" -l last -d 'Only the last N transitions' -r
complete -c notify -n "__fish_notify_using_subcommand history" -l format -d 'jsonl or table [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t''
table\t''"
complete -c notify -n "__fish_notify_using_subcommand history" -s h -l help -d 'Print help'
complete -c notify -n "__fish_notify_using_subcommand history" -s V -l version -d 'Print version'
