# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_canary_peer_global_optspecs
    string join \n h/help V/version
end

function __fish_canary_peer_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_canary_peer_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_canary_peer_using_subcommand
    set -l cmd (__fish_canary_peer_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c canary-peer -n "__fish_canary_peer_needs_command" -s h -l help -d 'Print help'
complete -c canary-peer -n "__fish_canary_peer_needs_command" -s V -l version -d 'Print version'
complete -c canary-peer -n "__fish_canary_peer_needs_command" -f -a "serve" -d 'The endpoint on each canary: /health, /health/detailed, /metrics, /connectivity, /echo, /bulk and a UDP echo port'
complete -c canary-peer -n "__fish_canary_peer_needs_command" -f -a "probe" -d 'Measure every peer in three layers (UDP echo, TCP handshake, HTTP) with thresholds'
complete -c canary-peer -n "__fish_canary_peer_needs_command" -f -a "matrix" -d 'The zone x zone (or peer x peer) matrix and blame of records on stdin'
complete -c canary-peer -n "__fish_canary_peer_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l listen -d 'Address to serve HTTP on' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l udp -d 'UDP echo address [default: the HTTP address and port]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l traffic-interval -d 'Time between two probe cycles of the peers' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l monitoring-interval -d 'Time between two readings of this machine (CPU, memory, disk, load)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -s t -l timeout -d 'Deadline of one probe cycle, and of one /connectivity probe' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l cpu -d 'CPU use limits, % WARN,CRIT (Nagios ranges)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l memory -d 'Memory use limits, % WARN,CRIT' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l disk -d 'Disk use limits, % WARN,CRIT' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l load -d 'One-minute load limits WARN,CRIT' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l disk-path -d 'The file system whose use is reported' -r -F
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l max-connections -d 'Connections held at once (the memory bound): a new one takes the place of the oldest idle one, and is closed when every one is in a request' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l workers -d 'Threads that probe (cycles and /connectivity)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l bulk-max -d 'Largest /bulk answer' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l worst -d 'Peer pairs kept in /metrics beside the per-zone series' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l peers -d 'Peers to measure: http://HOST:PORT, comma-separated or repeated' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l peers-file -d 'File of peers: one URL per line, or TOML ([[peer]] with url, id, az, datacenter, udp_port)' -r -F
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-peers -d 'Peers are also the ACTIVE Nova servers with this metadata key (asked at every cycle; the value is the canary\'s port, its URL, or anything else for --os-peers-port)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-peers-network -d 'With --os-peers: only addresses on this network' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-peers-address -d 'With --os-peers: the server\'s fixed or floating address' -r -f -a "fixed\t'The server\'s fixed address on its network'
floating\t'Its floating address (canaries in other clouds or regions)'"
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-peers-port -d 'With --os-peers: the canary\'s port when the metadata value names none' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-cloud -d 'The cloud in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/; secure.yaml merged) [default: OS_CLOUD, else the OS_* variables]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-interface -d 'Endpoint interface: public, internal or admin [default: the cloud\'s, else public]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-region -d 'Region for the catalog [default: the cloud\'s, or OS_REGION_NAME]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-endpoint-override -d 'Use this URL for a service type instead of the catalog\'s: TYPE=URL, e.g. compute=https://nova.internal:8774/v2.1 (repeatable)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l max-peers -d 'At most K peers per canary: a stable choice (rendezvous hashing on this canary\'s id) that keeps one peer of every zone' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l id -d 'This canary\'s id [default: the host name]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l datacenter -d 'This canary\'s data centre' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l az -d 'This canary\'s availability zone' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -s n -l requests -d 'HTTP requests (and TCP handshakes) per peer' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l packets -d 'UDP echo packets per peer' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l packet-interval -d 'Time between two UDP packets to one peer' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l packet-wait -d 'How long a UDP echo may take after the last packet went out; later is lost' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l packet-size -d 'Bytes per UDP packet (16-1472)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l bulk -d 'Fetch SIZE from each peer\'s /bulk and report the throughput (e.g. 1MiB; 0: off)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -s w -l latency-warning -d 'HTTP latency p95 warning, seconds (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -s c -l latency-critical -d 'HTTP latency p95 critical, seconds (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l loss-warning -d 'UDP loss warning, % (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l loss-critical -d 'UDP loss critical, % (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l success-warning -d 'HTTP success warning, % (Nagios range: alert below 70)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l success-critical -d 'HTTP success critical, % (Nagios range: alert below 50)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l concurrency -d 'Peers measured at once' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l no-udp -d 'No UDP echo port'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l no-targets -d '/connectivity?target= is refused (this canary probes only its peers)'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l os-peers-all-projects -d 'With --os-peers: the servers of every project (an admin\'s right), not only the token\'s project'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -l no-token-cache -d 'Do not cache the token (by default it is kept, readable only by this user, until shortly before it expires)'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand serve" -s V -l version -d 'Print version'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l peers -d 'Peers to measure: http://HOST:PORT, comma-separated or repeated' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l peers-file -d 'File of peers: one URL per line, or TOML ([[peer]] with url, id, az, datacenter, udp_port)' -r -F
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-peers -d 'Peers are also the ACTIVE Nova servers with this metadata key (asked at every cycle; the value is the canary\'s port, its URL, or anything else for --os-peers-port)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-peers-network -d 'With --os-peers: only addresses on this network' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-peers-address -d 'With --os-peers: the server\'s fixed or floating address' -r -f -a "fixed\t'The server\'s fixed address on its network'
floating\t'Its floating address (canaries in other clouds or regions)'"
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-peers-port -d 'With --os-peers: the canary\'s port when the metadata value names none' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-cloud -d 'The cloud in clouds.yaml (./, ~/.config/openstack/, /etc/openstack/; secure.yaml merged) [default: OS_CLOUD, else the OS_* variables]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-interface -d 'Endpoint interface: public, internal or admin [default: the cloud\'s, else public]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-region -d 'Region for the catalog [default: the cloud\'s, or OS_REGION_NAME]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-endpoint-override -d 'Use this URL for a service type instead of the catalog\'s: TYPE=URL, e.g. compute=https://nova.internal:8774/v2.1 (repeatable)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l max-peers -d 'At most K peers per canary: a stable choice (rendezvous hashing on this canary\'s id) that keeps one peer of every zone' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l id -d 'This canary\'s id [default: the host name]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l datacenter -d 'This canary\'s data centre' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l az -d 'This canary\'s availability zone' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -s n -l requests -d 'HTTP requests (and TCP handshakes) per peer' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l packets -d 'UDP echo packets per peer' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l packet-interval -d 'Time between two UDP packets to one peer' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l packet-wait -d 'How long a UDP echo may take after the last packet went out; later is lost' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l packet-size -d 'Bytes per UDP packet (16-1472)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l bulk -d 'Fetch SIZE from each peer\'s /bulk and report the throughput (e.g. 1MiB; 0: off)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -s w -l latency-warning -d 'HTTP latency p95 warning, seconds (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -s c -l latency-critical -d 'HTTP latency p95 critical, seconds (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l loss-warning -d 'UDP loss warning, % (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l loss-critical -d 'UDP loss critical, % (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l success-warning -d 'HTTP success warning, % (Nagios range: alert below 70)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l success-critical -d 'HTTP success critical, % (Nagios range: alert below 50)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l concurrency -d 'Peers measured at once' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l blame-share -d 'With --mesh: the share of sources (or peers) that must fail for a canary to be blamed, %' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l connectivity-warning -d 'Share of peers answering well: warning, % (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l connectivity-critical -d 'Share of peers answering well: critical, % (Nagios range)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l dogstatsd -d 'Also send the figures as DogStatsD gauges to this address (the Datadog agent)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -s t -l timeout -d 'Deadline for the whole run: a number of seconds or a duration (500ms, 1m). Work not finished by then is reported in the --timeout-state [default: 10 s; watch-procs with --config: 60 s]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l timeout-state -d 'State reported for work cut off by the deadline' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l label -d 'Add a label to every record (repeatable), e.g. --label az=zone-a' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l format -d 'Output format [default: table on a terminal, jsonl otherwise]' -r -f -a "jsonl\t'One JSON record per line (the default in a pipe)'
nagios\t'Nagios plugin output: status line, long output, performance data'
nagios-line\t'The Nagios status line and its perfdata only, no long output: for Sensu Go\'s nagios_perfdata, which reads every word after the first | of the whole output as a metric'
table\t'A table for people (the default on a terminal)'
csv\t'CSV with a header row'
prometheus\t'Prometheus text exposition (for node_exporter\'s textfile collector)'"
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l output -d 'Write the output to FILE atomically (temporary file + rename) instead of stdout; rewritten whole each round, fit for node_exporter\'s textfile collector' -r -F
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l every -d 'Repeat the run every DURATION and keep streaming records (default: run once)' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l count -d 'With --every: stop after N rounds' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l hostname -d 'Name of this machine in records [default: the system host name]' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l os-peers-all-projects -d 'With --os-peers: the servers of every project (an admin\'s right), not only the token\'s project'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l no-token-cache -d 'Do not cache the token (by default it is kept, readable only by this user, until shortly before it expires)'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -l mesh -d 'Also collect every peer\'s own last cycle and judge the whole mesh (blame, matrix)'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -s v -l verbose -d 'Print each record\'s trace to stderr (-vv adds its details)'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand probe" -s V -l version -d 'Print version'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand matrix" -l by -d 'Rows and columns: zones or single canaries' -r -f -a "zone\t'Availability zones (data centre/zone when data centres are named)'
peer\t'Single canaries'"
complete -c canary-peer -n "__fish_canary_peer_using_subcommand matrix" -l as -d 'Output: a table, JSON (matrix and blame) or an SVG heat map' -r -f -a "table\t''
json\t''
svg\t''"
complete -c canary-peer -n "__fish_canary_peer_using_subcommand matrix" -l blame-share -d 'The share of sources (or peers) that must fail for a canary to be blamed, %' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand matrix" -l title -d 'Title of the SVG picture' -r
complete -c canary-peer -n "__fish_canary_peer_using_subcommand matrix" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand matrix" -s V -l version -d 'Print version'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand help; and not __fish_seen_subcommand_from serve probe matrix help" -f -a "serve" -d 'The endpoint on each canary: /health, /health/detailed, /metrics, /connectivity, /echo, /bulk and a UDP echo port'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand help; and not __fish_seen_subcommand_from serve probe matrix help" -f -a "probe" -d 'Measure every peer in three layers (UDP echo, TCP handshake, HTTP) with thresholds'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand help; and not __fish_seen_subcommand_from serve probe matrix help" -f -a "matrix" -d 'The zone x zone (or peer x peer) matrix and blame of records on stdin'
complete -c canary-peer -n "__fish_canary_peer_using_subcommand help; and not __fish_seen_subcommand_from serve probe matrix help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
